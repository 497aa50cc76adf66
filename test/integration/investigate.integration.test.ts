/**
 * investigate and the canaries on the real engine: payloads that wait for an import pass the main
 * job and fail investigate in phase import; what investigate installs is listed by sha256 and
 * never exported; a stolen canary is network.canary-exfil whatever the channel and encoding.
 */
import { copyFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildFixtureIndex } from '../fixtures/index.js';
import { awsKeyOverDns, importOnlyPayload, netrcOverHttp, plainSdist, selfRewriting, withDependency } from '../fixtures/investigate.js';
import { engineAvailable, expectNoContainersLeft, runCli, runInvestigate, type CliRun } from './helpers.js';

const shown = (run: CliRun) => JSON.stringify(run.report.findings.map((f) => [f.rule, f.package, f.phase, f.evidence]));
const aboveInfo = (run: CliRun) => run.report.findings.filter((f) => f.severity !== 'info').map((f) => [f.rule, f.package, f.phase]);

describe.runIf(engineAvailable())('investigate on the real engine', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  for (const [title, pkg, name] of [
    ['a wheel whose payload runs only on import', importOnlyPayload, 'import-time.exfil.invalid'],
    ['an sdist whose setup.py rewrites its own module before the build', selfRewriting, 'rewritten.exfil.invalid'],
  ] as const) {
    it(`${title}: passes install, fails investigate with network.dns in phase import`, async () => {
      const index = await buildFixtureIndex([pkg]);
      const installed = await runCli(index.lockFile, index.indexUrl);
      expect(aboveInfo(installed), shown(installed)).toEqual([]);
      expect(installed.exitCode).toBe(0);

      const run = await runInvestigate(`${pkg.name}==1.0`, index.indexUrl);
      expect(run.report.findings, shown(run)).toContainEqual(
        expect.objectContaining({ rule: 'network.dns', package: pkg.name, phase: 'import', failing: true, evidence: expect.objectContaining({ name }) }),
      );
      // Nothing in the install phase: the payload waited for the import.
      expect(
        run.report.findings.filter((f) => f.phase === 'install' && f.severity !== 'info'),
        shown(run),
      ).toEqual([]);
      expect(run.exitCode).toBe(1);
      expect(run.report.timeline).toContainEqual(expect.objectContaining({ phase: 'import', package: pkg.name, kind: 'dns', what: name }));
      expect(run.stdout).toMatch(new RegExp(`import\\n {4}${pkg.name}\\n(.*\\n)*.*dns +${name.replace(/\./g, '\\.')}`));
      expect(run.report.exported).toBeNull();
    });
  }

  it('investigate name==version of a project with one dependency: both files by sha256, nothing exported', async () => {
    const index = await buildFixtureIndex(withDependency);
    const run = await runInvestigate('parent-app==1.0', index.indexUrl);
    expect(aboveInfo(run), shown(run)).toEqual([]);
    expect(run.exitCode).toBe(0);
    const files = run.report.packages.flatMap((p) => p.files.map((f) => [p.name, f.filename, f.sha256]));
    expect(files.sort()).toEqual(index.files.map((f) => [f.name, f.filename, f.sha256]).sort());
    expect(run.report.phases?.map((p) => [p.name, p.exitCode])).toEqual([
      ['install', 0],
      ['startup', 0],
      ['import', 0],
    ]);
    expect(run.report.exported).toBeNull();
    expect(run.report.install?.output).toContain('"module": "parent_app", "distribution": "parent-app", "exitCode": 0');
  });

  it('investigate a local wheel and a local sdist: served from the host, listed by sha256', async () => {
    const index = await buildFixtureIndex([importOnlyPayload, plainSdist]);
    const dir = await mkdtemp(path.join(tmpdir(), 'sandbox-install-local-'));
    for (const file of index.files.filter((f) => f.name === importOnlyPayload.name || f.name === plainSdist.name)) {
      const local = path.join(dir, file.filename);
      await copyFile(path.join(index.dir, 'files', file.filename), local);
      const run = await runInvestigate(local, index.indexUrl);
      expect(
        run.report.packages.flatMap((p) => p.files.map((f) => f.sha256)),
        shown(run),
      ).toContain(file.sha256);
      expect(run.report.exported).toBeNull();
      if (file.name === importOnlyPayload.name) {
        expect(run.exitCode).toBe(1);
        expect(run.report.findings).toContainEqual(expect.objectContaining({ rule: 'network.dns', package: 'sneaky-import', phase: 'import' }));
      } else {
        expect(aboveInfo(run), shown(run)).toEqual([]);
        expect(run.exitCode).toBe(0);
      }
    }
  });
});

describe.runIf(engineAvailable())('canaries in every run', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('the AWS secret key sent hex-encoded in a DNS name is network.canary-exfil', async () => {
    const index = await buildFixtureIndex([awsKeyOverDns]);
    const run = await runCli(index.lockFile, index.indexUrl);
    expect(run.report.findings, shown(run)).toContainEqual(
      expect.objectContaining({
        rule: 'network.canary-exfil',
        severity: 'critical',
        package: 'aws-hex',
        phase: 'build',
        failing: true,
        evidence: expect.objectContaining({ secret: '~/.aws/credentials aws_secret_access_key', channel: 'DNS name', encoding: 'hex' }),
      }),
    );
    expect(run.exitCode).toBe(1);
  });

  it('the ~/.netrc password in an HTTP request path is network.canary-exfil', async () => {
    const index = await buildFixtureIndex([netrcOverHttp]);
    const run = await runCli(index.lockFile, index.indexUrl);
    expect(run.report.findings, shown(run)).toContainEqual(
      expect.objectContaining({
        rule: 'network.canary-exfil',
        package: 'netrc-http',
        phase: 'build',
        evidence: expect.objectContaining({ secret: '~/.netrc password', channel: 'HTTP request line', encoding: 'plain' }),
      }),
    );
    // The read of the canary file itself stays fs.sensitive-read.
    expect(run.report.findings).toContainEqual(
      expect.objectContaining({ rule: 'fs.sensitive-read', package: 'netrc-http', evidence: expect.objectContaining({ path: '/home/user/.netrc', ok: true }) }),
    );
    expect(run.exitCode).toBe(1);
  });
});
