/**
 * Issue 9's inputs and outputs on the real engine: a pylock.toml installs like the requirements
 * lock it mirrors; SARIF from a hostile run validates against the SARIF 2.1.0 schema and its
 * fingerprints are the same on a second run; a user policy that only warns on network.dns lets a
 * DNS-only package through with the warning in the report.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import { afterEach, describe, expect, it } from 'vitest';
import { hostileCases } from '../fixtures/hostile.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { threePackages } from '../fixtures/benign.js';
import { writePylock } from '../fixtures/pylock.js';
import { FINGERPRINT_KEY, type SarifLog } from '../../src/report/sarif.js';
import { engineAvailable, expectNoContainersLeft, runCli, ROOT } from './helpers.js';

const dnsOnly = () => hostileCases('127.0.0.2').find((c) => c.expect.rule === 'network.dns' && c.expect.package === 'dns-exfil')!;

describe.runIf(engineAvailable())('lock formats, SARIF and user policies on the real engine', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('a pylock.toml in the shape uv writes installs and exports, like the requirements lock it mirrors', async () => {
    const index = await buildFixtureIndex(threePackages);
    const pylock = path.join(path.dirname(index.lockFile), 'pylock.toml');
    await writePylock(index, pylock);
    const run = await runCli(pylock, index.indexUrl);
    expect(run.report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(run.report.verdict).toBe('pass');
    expect(run.exitCode).toBe(0);
    expect(run.report.lockfile).toBe(pylock);
    // Every package the pylock names, with the line of its [[packages]] table and the file it served.
    expect(run.report.packages.map((p) => p.name).sort()).toEqual(threePackages.map((p) => p.name.toLowerCase()).sort());
    for (const pkg of run.report.packages) {
      expect(pkg.line).toBeGreaterThan(1);
      expect(pkg.files).toHaveLength(1);
    }
  });

  it('SARIF from a hostile run validates against SARIF 2.1.0, and its fingerprints are the same on a second run', async () => {
    const hostile = dnsOnly();
    const index = await buildFixtureIndex(hostile.packages);
    const schema = JSON.parse(await readFile(path.join(ROOT, 'test/fixtures/sarif-schema-2.1.0.json'), 'utf8')) as object;
    const validate = new Ajv({ strict: false, validateFormats: false, unicodeRegExp: false }).compile(schema);
    const fingerprints: string[][] = [];
    for (const attempt of [1, 2]) {
      const run = await runCli(index.lockFile, index.indexUrl, ['--format', 'sarif', '-q']);
      expect(run.exitCode, `attempt ${attempt}`).toBe(1);
      const log = JSON.parse(run.stdout) as SarifLog;
      expect(validate(log), JSON.stringify(validate.errors)).toBe(true);
      const results = log.runs[0]!.results;
      const dns = results.find((r) => r.ruleId === 'network.dns');
      expect(dns).toMatchObject({
        level: 'error',
        // The lockfile relative to where the CLI ran (the repository root), at the package's line.
        locations: [
          {
            physicalLocation: {
              artifactLocation: { uri: path.relative(ROOT, index.lockFile) },
              region: { startLine: run.report.packages.find((p) => p.name === 'dns-exfil')!.line },
            },
          },
        ],
        properties: expect.objectContaining({ package: 'dns-exfil' }),
      });
      fingerprints.push(results.map((r) => `${r.ruleId} ${r.partialFingerprints[FINGERPRINT_KEY]}`).sort());
    }
    expect(fingerprints[0]!.length).toBeGreaterThan(0);
    expect(fingerprints[1]).toEqual(fingerprints[0]);
  });

  it('a user policy with warn for network.dns lets the DNS-only fixture pass and export, with the warning in the report', async () => {
    const hostile = dnsOnly();
    const index = await buildFixtureIndex(hostile.packages);
    const policy = path.join(path.dirname(index.lockFile), 'dns-warn.json');
    await writeFile(policy, JSON.stringify({ $schema: '../policies/schema.json', extends: 'default', rules: { 'network.dns': 'warn' } }));
    const run = await runCli(index.lockFile, index.indexUrl, ['--policy', policy]);
    expect(run.report.findings.filter((f) => f.failing)).toEqual([]);
    expect(run.report.findings).toContainEqual(
      expect.objectContaining({
        rule: 'network.dns',
        package: 'dns-exfil',
        phase: 'build',
        action: 'warn',
        failing: false,
        evidence: expect.objectContaining({ name: 'c2VjcmV0LXRva2Vu.dns.exfil.invalid' }),
      }),
    );
    expect(run.report.verdict).toBe('pass');
    expect(run.exitCode).toBe(0);
    expect(run.report.exported).toBe(run.output);
    expect(run.stdout).toMatch(/PASS .* 1 findings \(1 warning\)/);
    expect(run.stdout).toContain('! network.dns [high]');
  });
});
