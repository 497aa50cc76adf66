/** The walking skeleton on the real engine: install, refuse, clean up. */
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { ContainerClient } from '../../src/runtime/port.js';
import { buildFixtureIndex, type FixturePackage } from '../fixtures/index.js';
import { threePackages } from '../fixtures/benign.js';
import { engineAvailable, expectNoContainersLeft, runCli } from './helpers.js';

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

describe.runIf(engineAvailable())('install on the real engine', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('installs, exports and imports a locked set of three packages (one an sdist)', async () => {
    const index = await buildFixtureIndex(threePackages);
    const run = await runCli(index.lockFile, index.indexUrl);
    expect(run.stderr).not.toMatch(/Error:/);
    expect(run.report.verdict).toBe('pass');
    expect(run.exitCode).toBe(0);
    expect(run.report.packages.map((p) => [p.name, p.version])).toEqual([
      ['alpha-app', '1.0.0'],
      ['beta-lib', '2.0.0'],
      ['gamma-sdist', '0.3'],
    ]);
    for (const pkg of run.report.packages) {
      const locked = index.files.find((f) => f.name === pkg.name)!;
      expect(pkg.files).toEqual([expect.objectContaining({ filename: locked.filename, sha256: locked.sha256 })]);
    }
    // The exported tree imports on the host.
    const imported = await execa('python3', [
      '-I',
      '-c',
      `import sys; sys.path.insert(0, ${JSON.stringify(run.output)}); import alpha_app; print(alpha_app.run())`,
    ]);
    expect(imported.stdout).toBe('hello from beta and gamma');
    // The manifest names each file, its sha256 and its distribution.
    const manifest = JSON.parse(await readFile(path.join(run.output, '.sandbox-install-manifest.json'), 'utf8')) as {
      files: Array<{ path: string; sha256: string; distribution: string | null }>;
    };
    const init = manifest.files.find((f) => f.path === 'beta_lib/__init__.py');
    expect(init?.distribution).toBe('beta-lib==2.0.0');
    expect(init?.sha256).toMatch(/^[0-9a-f]{64}$/);
    // The proxy log shows every request.
    expect(run.report.proxy.some((r) => r.path === '/simple/alpha-app/' && r.status === 200)).toBe(true);
  });

  it('never writes an index password to stderr, from --extra-index-url or from the lockfile', async () => {
    const index = await buildFixtureIndex(threePackages);
    // A credentialed upstream that does not answer (loopback, a closed port), beside the real one.
    const secret = 's3cret-token-never-logged';
    const { writeFile } = await import('node:fs/promises');
    await writeFile(index.lockFile, `--extra-index-url https://lockuser:${secret}@127.0.0.1:9/lock/\n${await readFile(index.lockFile, 'utf8')}`);
    const run = await runCli(index.lockFile, index.indexUrl, ['--extra-index-url', `https://ciuser:${secret}@127.0.0.1:9/simple/`, '-v']);
    expect(run.report.verdict).toBe('pass');
    expect(run.stderr).toContain('installing in the sandbox');
    expect(run.stderr.split('\n').filter((line) => line.includes(secret) || line.includes('ciuser') || line.includes('lockuser'))).toEqual([]);
    expect(run.stdout).not.toContain(secret);
  });

  it('fails a tampered file with integrity.hash-mismatch and exports nothing', async () => {
    const index = await buildFixtureIndex(threePackages.slice(1, 2));
    const wheel = index.files[0]!;
    await index.tamper(wheel.filename);
    const run = await runCli(index.lockFile, index.indexUrl);
    expect(run.exitCode).toBe(1);
    expect(run.report.verdict).toBe('fail');
    const mismatch = run.report.findings.find((f) => f.rule === 'integrity.hash-mismatch');
    expect(mismatch).toMatchObject({ package: 'beta-lib', failing: true });
    expect(mismatch?.evidence).toMatchObject({ filename: wheel.filename, expectedSha256: wheel.sha256 });
    expect(run.report.exported).toBeNull();
    expect(await exists(run.output)).toBe(false);
  });

  it('calls a build that fails on its own inconclusive: exit 4, install.failed, nothing exported', async () => {
    const index = await buildFixtureIndex([
      {
        name: 'broken-build',
        version: '1.0',
        kind: 'sdist',
        files: { 'setup.py': 'raise SystemExit("this sdist cannot be built")\n' },
      },
    ]);
    const run = await runCli(index.lockFile, index.indexUrl);
    expect(run.exitCode).toBe(4);
    expect(run.report.verdict).toBe('error');
    expect(run.report.findings.filter((f) => f.severity !== 'info').map((f) => f.rule)).toEqual(['install.failed']);
    expect(run.report.install?.pipExitCode).toBe(1);
    expect(run.report.exported).toBeNull();
    expect(await exists(run.output)).toBe(false);
  });

  it('fails a lock that omits a dependency, naming it, and exports nothing', async () => {
    const index = await buildFixtureIndex(threePackages, { omitFromLock: ['beta-lib'] });
    const run = await runCli(index.lockFile, index.indexUrl);
    expect(run.exitCode).toBe(1);
    const unlocked = run.report.findings.find((f) => f.rule === 'integrity.unlocked-request');
    expect(unlocked?.evidence).toMatchObject({ path: '/simple/beta-lib/', project: 'beta-lib' });
    expect(run.stdout).toContain('integrity.unlocked-request');
    expect(run.stdout).toContain('beta-lib');
    expect(run.report.exported).toBeNull();
    expect(await exists(run.output)).toBe(false);
    expect(await exists(path.join(run.output, 'alpha_app'))).toBe(false);
  });
});

describe.runIf(engineAvailable())('interruption', () => {
  /** An sdist whose build sleeps for two minutes: a run to interrupt while pip builds it. */
  const slowBuild = (name: string): FixturePackage => ({
    name,
    version: '1.0',
    kind: 'sdist',
    files: { 'setup.py': `import time\ntime.sleep(120)\nfrom setuptools import setup\nsetup(name="${name}", version="1.0")\n` },
  });

  /** Wait until both containers run, then until pip has had time to start the build. */
  const untilBuilding = async (client: ContainerClient): Promise<void> => {
    const deadline = Date.now() + 60_000;
    while ((await client.listOurs()).filter((c) => c.state === 'running').length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await client.listOurs()).filter((c) => c.state === 'running')).toHaveLength(2);
    await new Promise((r) => setTimeout(r, 3000));
  };

  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)('%s in the middle of an install exits %i and leaves nothing behind', async (signal, code) => {
    const { startCli } = await import('./helpers.js');
    const { DockerClient } = await import('../../src/runtime/docker.js');
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const index = await buildFixtureIndex([slowBuild('slow-build')]);
    const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-it-'));
    const child = startCli(index.lockFile, index.indexUrl, work);
    const client = new DockerClient();
    await untilBuilding(client);
    child.kill(signal);
    const result = await child;
    expect(result.exitCode).toBe(code);
    expect(String(result.stderr)).toContain(`interrupted by ${signal}`);
    await expectNoContainersLeft();
    expect(await exists(path.join(work, 'site-packages'))).toBe(false);
  });

  it('a closed terminal (the pseudo-terminal it runs on goes away) ends the run like Ctrl-C: report written, nothing left', async () => {
    const { DockerClient } = await import('../../src/runtime/docker.js');
    const { mkdtemp } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const index = await buildFixtureIndex([slowBuild('slow-build-tty')]);
    const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-tty-'));
    const report = path.join(work, 'report.json');
    const cli = fileURLToPath(new URL('../../bin/sandbox-install.js', import.meta.url));
    const argv = [cli, index.lockFile, '--index-url', index.indexUrl, '--output', path.join(work, 'site-packages'), '--report', report];
    argv.push('--cache-dir', path.join(work, 'cache'), '--image', inject('image'));
    const command = ['node', ...argv].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
    // util-linux script(1) gives the CLI a pseudo-terminal as its controlling terminal; killing
    // script closes the terminal's master side, and the kernel hangs up the CLI (SIGHUP).
    const terminal = execa('script', ['-qfec', command, '/dev/null'], { reject: false, env: { PIP_CONFIG_FILE: '/dev/null', NO_COLOR: '1' } });
    const client = new DockerClient();
    await untilBuilding(client);
    terminal.kill('SIGKILL');
    await terminal;
    // The CLI is not our child: wait for the report its cleanup writes last, then for no container.
    const until = Date.now() + 60_000;
    let written: { verdict?: string; error?: { message?: string } } | null = null;
    while (written === null && Date.now() < until) {
      written = await readFile(report, 'utf8').then(
        (text) => JSON.parse(text) as typeof written,
        () => null,
      );
      if (written === null) await new Promise((r) => setTimeout(r, 250));
    }
    expect(written?.error?.message).toContain('interrupted by SIGHUP');
    const gone = Date.now() + 30_000;
    while ((await client.listOurs()).length > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 250));
    await expectNoContainersLeft();
    expect(await exists(path.join(work, 'site-packages'))).toBe(false);
  });
});
