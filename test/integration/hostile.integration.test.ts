/**
 * The hostile corpus on the real engine: each package must fail the install with its rule,
 * attributed to it, with the evidence that shows what it did; nothing is exported and no container
 * is left. Benign packages must pass with no finding above info.
 */
import { access, mkdtemp, writeFile } from 'node:fs/promises';
import { networkInterfaces, tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { buildDirWriter, compiledExtension, EXTENSION_SOURCE, threePackages } from '../fixtures/benign.js';
import { hostileCases } from '../fixtures/hostile.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { engineAvailable, expectNoContainersLeft, runCli } from './helpers.js';

const exists = (file: string) => access(file).then(() => true, () => false);

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
    it(hostile.title, async () => {
      const index = await buildFixtureIndex(hostile.packages);
      const run = await runCli(index.lockFile, index.indexUrl, hostile.options ?? []);
      const matching = run.report.findings.filter((f) => f.rule === hostile.expect.rule && f.package === hostile.expect.package);
      expect(matching, `findings were: ${JSON.stringify(run.report.findings.map((f) => [f.rule, f.package, f.evidence]))}`).toContainEqual(
        expect.objectContaining({ failing: true, evidence: expect.objectContaining(hostile.expect.evidence) }),
      );
      expect(run.report.verdict).toBe('fail');
      expect(run.exitCode).toBe(1);
      expect(run.report.exported).toBeNull();
      expect(await exists(run.output)).toBe(false);
      // The terminal summary names the package and the rule on one line.
      expect(run.stdout).toMatch(new RegExp(`${hostile.expect.rule.replace('.', '\\.')} \\[`));
      expect(run.stdout).toContain(hostile.expect.package);
    });
  }
});

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
    await writeFile(index.lockFile, `needs-setuptools==1.0 --hash=sha256:${index.files[0]!.sha256}\nsetuptools==${version} --hash=sha256:${setuptools.sha256}\n`);
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
    const imported = await execa('python3', ['-I', '-c', `import sys; sys.path.insert(0, ${JSON.stringify(run.output)}); import fastmath; print(fastmath.add(2, 40))`]);
    expect(imported.stdout).toBe('42');
  });

  it('a package whose setup.py writes only into its build dir', async () => {
    const index = await buildFixtureIndex([buildDirWriter]);
    const run = await runCli(index.lockFile, index.indexUrl);
    expectClean(run.report.findings);
    expect(run.report.verdict).toBe('pass');
    expect(await exists(path.join(run.output, 'build_dir_writer', '__init__.py'))).toBe(true);
  });
});
