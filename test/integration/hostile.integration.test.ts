/**
 * The hostile corpus on the real engine: each package must fail the install with its rule,
 * attributed to it, with the evidence that shows what it did; nothing is exported and no container
 * is left. Benign packages must pass with no finding above info.
 */
import { access, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import {
  buildDirWriter,
  compiledExtension,
  dataWheel,
  EXTENSION_SOURCE,
  namespaceWheels,
  pytestPlugin,
  realWorldQuirks,
  shipsPyc,
  threePackages,
} from '../fixtures/benign.js';
import { hostileCases, type ExpectedFinding, type HostileCase } from '../fixtures/hostile.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { engineAvailable, expectNoContainersLeft, runCli } from './helpers.js';

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/** An address of this machine (not loopback): the raw-IP fixture aims here, never outside. */
function hostAddress(): string {
  for (const addresses of Object.values(networkInterfaces())) {
    const v4 = addresses?.find((a) => a.family === 'IPv4' && !a.internal && !a.address.startsWith('172.17.'));
    if (v4) return v4.address;
  }
  return '127.0.0.2';
}

describe.runIf(engineAvailable())('hostile packages fail with their rule', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  for (const hostile of hostileCases(hostAddress())) {
    for (const extra of [[], ...(hostile.alsoWith ?? [])]) {
      it(`${hostile.title}${extra.length ? ` (${extra.join(' ')})` : ''}`, async () => {
        const index = await buildFixtureIndex(hostile.packages);
        const policy = hostile.policy ? ['--policy', await writePolicy(hostile.policy)] : [];
        const run = await runCli(index.lockFile, index.indexUrl, [...(hostile.options ?? []), ...policy, ...extra]);
        const shown = JSON.stringify(run.report.findings.map((f) => [f.rule, f.package, f.evidence]));
        for (const wanted of [hostile.expect, ...(hostile.alsoExpect ?? [])]) {
          const matching = run.report.findings.filter((f) => f.rule === wanted.rule && f.package === wanted.package);
          expect(matching, `findings were: ${shown}`).toContainEqual(
            expect.objectContaining({
              failing: true,
              phase: wanted.phase ?? defaultPhase(hostile, wanted),
              evidence: expect.objectContaining(wanted.evidence),
            }),
          );
        }
        // The attacker is blamed, never the package it attacked.
        if (hostile.victim) {
          expect(
            run.report.findings.filter((f) => f.package === hostile.victim && f.severity !== 'info'),
            `findings were: ${shown}`,
          ).toEqual([]);
        }
        expect(run.report.verdict).toBe('fail');
        expect(run.exitCode).toBe(1);
        expect(run.report.exported).toBeNull();
        expect(await exists(run.output)).toBe(false);
        // The terminal summary names the package and the rule on one line.
        expect(run.stdout).toMatch(new RegExp(`${hostile.expect.rule.replace('.', '\\.')} \\[`));
        expect(run.stdout).toContain(hostile.expect.package);
      });
    }
  }
});

/**
 * Where a finding lands unless the case says: what an sdist's build does happens in phase `build`
 * (each locked sdist is built there, once); what the installed tree holds is judged with `install`.
 */
function defaultPhase(hostile: HostileCase, wanted: ExpectedFinding): string {
  const judgedOnTree = wanted.rule.startsWith('static.') || wanted.rule === 'integrity.installed-mismatch';
  return hostile.packages.find((p) => p.name === wanted.package)?.kind === 'sdist' && !judgedOnTree ? 'build' : 'install';
}

async function writePolicy(policy: Record<string, unknown>): Promise<string> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'sandbox-install-policy-')), 'policy.json');
  await writeFile(file, JSON.stringify(policy));
  return file;
}

describe.runIf(engineAvailable())('benign packages pass with no finding above info', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  const expectClean = (findings: Array<{ rule: string; severity: string; package: string | null }>) =>
    expect(findings.filter((f) => f.severity !== 'info').map((f) => [f.rule, f.package])).toEqual([]);

  it('a clean sdist built with setuptools, with wheels depending on it', async () => {
    const index = await buildFixtureIndex(threePackages);
    const run = await runCli(index.lockFile, index.indexUrl);
    expectClean(run.report.findings);
    expect(run.report.verdict).toBe('pass');
    // Everything the install did is still listed, even though nothing was wrong.
    expect(run.report.processes.length).toBeGreaterThan(3);
    expect(run.report.filesystem.length).toBeGreaterThan(3);
  });

  it('a lock containing setuptools itself (its known .pth)', async () => {
    const index = await buildFixtureIndex(
      [{ name: 'needs-setuptools', version: '1.0', kind: 'wheel', requires: ['setuptools'], files: { 'needs_setuptools/__init__.py': '' } }],
      { buildTools: true },
    );
    // Lock setuptools too, by the hash of the wheel the index serves.
    const setuptools = index.files.find((f) => f.name === 'setuptools')!;
    const version = setuptools.filename.split('-')[1]!;
    await writeFile(
      index.lockFile,
      `needs-setuptools==1.0 --hash=sha256:${index.files[0]!.sha256}\nsetuptools==${version} --hash=sha256:${setuptools.sha256}\n`,
    );
    const run = await runCli(index.lockFile, index.indexUrl);
    expectClean(run.report.findings);
    expect(run.report.verdict).toBe('pass');
    expect(await exists(path.join(run.output, 'distutils-precedence.pth'))).toBe(true);
  });

  it('a wheel with a compiled extension', async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-ext-'));
    const include = (await execa('python3', ['-I', '-S', '-c', 'import sysconfig; print(sysconfig.get_paths()["include"])'])).stdout;
    await writeFile(path.join(work, 'fast.c'), EXTENSION_SOURCE);
    const so = path.join(work, '_fast.so');
    await execa('gcc', ['-shared', '-fPIC', '-O2', `-I${include}`, path.join(work, 'fast.c'), '-o', so]);
    const index = await buildFixtureIndex([compiledExtension(so)]);
    const run = await runCli(index.lockFile, index.indexUrl);
    expectClean(run.report.findings);
    expect(run.report.verdict).toBe('pass');
    const imported = await execa('python3', [
      '-I',
      '-c',
      `import sys; sys.path.insert(0, ${JSON.stringify(run.output)}); import fastmath; print(fastmath.add(2, 40))`,
    ]);
    expect(imported.stdout).toBe('42');
  });

  it('a package whose setup.py writes only into its build dir', async () => {
    const index = await buildFixtureIndex([buildDirWriter]);
    const run = await runCli(index.lockFile, index.indexUrl);
    expectClean(run.report.findings);
    expect(run.report.verdict).toBe('pass');
    expect(await exists(path.join(run.output, 'build_dir_writer', '__init__.py'))).toBe(true);
  });

  const importOnHost = (output: string, code: string) => execa('python3', ['-I', '-c', `import sys; sys.path.insert(0, ${JSON.stringify(output)}); ${code}`]);

  it('a wheel with console scripts and .data directories (purelib exported; scripts, data and headers not)', async () => {
    const index = await buildFixtureIndex([dataWheel]);
    const run = await runCli(index.lockFile, index.indexUrl);
    expectClean(run.report.findings);
    expect(run.report.verdict).toBe('pass');
    expect((await importOnHost(run.output, 'import data_wheel; print(data_wheel.main())')).stdout).toBe('from purelib');
    expect(await exists(path.join(run.output, 'data_wheel-1.0.data'))).toBe(false);
  });

  it('two wheels sharing a PEP 420 namespace directory', async () => {
    const index = await buildFixtureIndex(namespaceWheels);
    const run = await runCli(index.lockFile, index.indexUrl);
    expectClean(run.report.findings);
    expect(run.report.verdict).toBe('pass');
    expect((await importOnHost(run.output, 'import nsx.alpha, nsx.beta; print(nsx.alpha.NAME, nsx.beta.NAME)')).stdout).toBe('alpha beta');
  });

  it('a wheel that ships a correct .pyc: exported with bytecode the host compiled, not the shipped file', async () => {
    const index = await buildFixtureIndex([shipsPyc]);
    const run = await runCli(index.lockFile, index.indexUrl);
    expectClean(run.report.findings);
    expect(run.report.verdict).toBe('pass');
    const pyc = await readFile(path.join(run.output, 'ships_pyc', '__pycache__', '__init__.cpython-311.pyc'));
    expect(pyc.readUInt32LE(4)).toBe(3); // checked-hash: ours; the shipped one is timestamp-based
    expect((await importOnHost(run.output, 'import ships_pyc; print(ships_pyc.answer())')).stdout).toBe('42');
  });

  it("real packages' quirks pass: reviewed .pth, namespace template, a tool's own script, hex RECORD digests, a template named .py", async () => {
    const index = await buildFixtureIndex(realWorldQuirks);
    const run = await runCli(index.lockFile, index.indexUrl);
    expect(run.report.verdict).toBe('pass');
    expect(run.exitCode).toBe(0);
    // One warning: the template cannot run, and is exported as its wheel shipped it.
    expect(run.report.findings.filter((f) => f.severity !== 'info')).toEqual([
      expect.objectContaining({
        rule: 'static.inert-source',
        severity: 'low',
        failing: false,
        package: 'ships-template',
        phase: 'install',
        evidence: expect.objectContaining({ path: 'ships_template/templates/module.py', wheel: 'ships_template-1.0-py3-none-any.whl' }),
      }),
    ]);
    // The hex digests are one note, the wheel vouching for the bytes.
    expect(run.report.findings.filter((f) => f.rule === 'static.record-unhashed')).toEqual([
      expect.objectContaining({
        severity: 'info',
        package: 'hex-record',
        phase: 'install',
        evidence: expect.objectContaining({
          wheel: 'hex_record-4.15.2-py3-none-any.whl',
          paths: expect.arrayContaining(['hex_record/__init__.py', 'hex_record/data.txt']),
        }),
      }),
    ]);
    for (const file of ['a1_coverage.pth', 'quirkns_part-1.0-py3.7-nspkg.pth', 'ships_template/templates/module.py']) {
      expect(await exists(path.join(run.output, file)), file).toBe(true);
    }
  });

  it('two distributions that install the same files fail with one finding naming both and the files (opencv-python beside opencv-python-headless)', async () => {
    const shared = (flavour: string) => ({ 'cvlike/__init__.py': `FLAVOUR = "${flavour}"\n`, 'cvlike/data/cascade.xml': `<${flavour}/>\n` });
    const index = await buildFixtureIndex([
      { name: 'cvlike', version: '4.10', kind: 'wheel', files: shared('full') },
      { name: 'cvlike-headless', version: '4.10', kind: 'wheel', files: shared('headless') },
    ]);
    const run = await runCli(index.lockFile, index.indexUrl);
    expect(run.report.verdict).toBe('fail');
    expect(run.report.findings.filter((f) => f.severity !== 'info')).toEqual([
      expect.objectContaining({
        rule: 'integrity.file-conflict',
        failing: true,
        package: null,
        phase: 'install',
        evidence: { distributions: ['cvlike', 'cvlike-headless'], files: 2, paths: ['cvlike/__init__.py', 'cvlike/data/cascade.xml'], overwritten: 2 },
      }),
    ]);
    expect(run.report.exported).toBeNull();
  });

  it('a pytest plugin passes with one warning naming its entry point', async () => {
    const index = await buildFixtureIndex([pytestPlugin]);
    const run = await runCli(index.lockFile, index.indexUrl);
    expect(run.report.verdict).toBe('pass');
    expect(run.exitCode).toBe(0);
    expect(run.report.findings.filter((f) => f.severity !== 'info')).toEqual([
      expect.objectContaining({
        rule: 'static.autoload-entry-point',
        severity: 'low',
        failing: false,
        package: 'pytest-friendly',
        evidence: { group: 'pytest11', name: 'friendly', object: 'pytest_friendly' },
      }),
    ]);
  });
});
