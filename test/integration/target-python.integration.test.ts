/**
 * The target interpreter decides (issue 21, part 3), on the real engine with the image's real pip:
 * a lock made for CPython 3.11.7 leaves out a dependency whose marker is true only before 3.11.5,
 * and locks a wheel that requires 3.11.5 or newer. The image runs 3.11.2. Installed for 3.11.7 the
 * lock passes; installed for the image's own release, pip asks for the left-out project
 * (integrity.unlocked-request) or refuses the wheel, as it did before the sandbox evaluated for the
 * target. A target of another 3.x is refused before any container.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { buildFixtureIndex } from '../fixtures/index.js';
import { newerPatchLib, patchApp, patchBackport, TARGET } from '../fixtures/target-python.js';
import { CLI, engineAvailable, expectNoContainersLeft, runCli, runLock } from './helpers.js';

/** What the test image's label says its interpreter is (Debian bookworm's python3.11). */
const IMAGE_PYTHON = '3.11.2';

describe.runIf(engineAvailable())('the target Python on the real engine', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it(`a lock made for ${TARGET} installs for ${TARGET}: the marker left out, the newer Requires-Python met`, async () => {
    const index = await buildFixtureIndex([patchApp, patchBackport, newerPatchLib], { omitFromLock: ['patch-backport'] });
    const run = await runCli(index.lockFile, index.indexUrl, ['--python-version', TARGET]);
    expect(run.report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(run.report.verdict).toBe('pass');
    expect(run.exitCode).toBe(0);
    expect(run.report.python).toEqual({ image: IMAGE_PYTHON, target: TARGET });
    expect(run.report.proxy.filter((r) => r.path.includes('patch-backport'))).toEqual([]);
    const imported = await execa('python3', [
      '-I',
      '-c',
      `import sys; sys.path.insert(0, ${JSON.stringify(run.output)}); import patch_app, newer_patch_lib; print(patch_app.VALUE, newer_patch_lib.VALUE)`,
    ]);
    expect(imported.stdout).toBe('patch-app newer');
  });

  it(`the same marker evaluated for the image's ${IMAGE_PYTHON}: pip asks for the left-out project (integrity.unlocked-request)`, async () => {
    const index = await buildFixtureIndex([patchApp, patchBackport], { omitFromLock: ['patch-backport'] });
    const run = await runCli(index.lockFile, index.indexUrl, ['--python-version', IMAGE_PYTHON]);
    expect(run.exitCode).toBe(1);
    expect(run.report.python).toEqual({ image: IMAGE_PYTHON, target: IMAGE_PYTHON });
    const unlocked = run.report.findings.filter((f) => f.rule === 'integrity.unlocked-request');
    expect(unlocked.map((f) => [f.phase, f.evidence.path, f.evidence.project])).toEqual([['install', '/simple/patch-backport/', 'patch-backport']]);
    expect(run.report.exported).toBeNull();
  });

  it(`a locked wheel that requires Python >=3.11.5: pip refuses it for the image's ${IMAGE_PYTHON}`, async () => {
    const index = await buildFixtureIndex([newerPatchLib]);
    const run = await runCli(index.lockFile, index.indexUrl, ['--python-version', IMAGE_PYTHON]);
    // pip failed: the install could not be judged (exit 4).
    expect(run.exitCode).toBe(4);
    expect(run.report.findings.filter((f) => f.rule === 'install.failed').map((f) => f.phase)).toEqual(['install']);
    expect(run.report.install?.output).toContain(`requires a different Python: ${IMAGE_PYTHON} not in '>=3.11.5'`);
  });

  it(`lock --python-version ${TARGET} resolves for ${TARGET}, and that lock installs`, async () => {
    const index = await buildFixtureIndex([patchApp, patchBackport, newerPatchLib]);
    const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-target-'));
    const requirementsIn = path.join(work, 'requirements.in');
    await writeFile(requirementsIn, 'patch-app\nnewer-patch-lib\n');
    const output = path.join(work, 'requirements.lock');
    const locked = await runLock(requirementsIn, index.indexUrl, output, ['--python-version', TARGET]);
    expect(locked.report.verdict).toBe('pass');
    expect(locked.exitCode).toBe(0);
    expect(locked.report.python).toEqual({ image: IMAGE_PYTHON, target: TARGET });
    const text = await readFile(output, 'utf8');
    expect(text).toContain(`CPython ${TARGET}, linux`);
    expect(text).toContain(`environment markers were evaluated for CPython ${TARGET},`);
    expect(text.split('\n').filter((line) => /^[a-z]/.test(line))).toEqual(['newer-patch-lib==2.0 \\', 'patch-app==1.0 \\']);

    const installed = await runCli(output, index.indexUrl, ['--python-version', TARGET]);
    expect(installed.report.verdict).toBe('pass');
    expect(installed.exitCode).toBe(0);
  });

  it('--python-version 3.12.1 is refused before any container, naming both versions', async () => {
    const index = await buildFixtureIndex([patchApp]);
    const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-target-'));
    const since = Math.floor(Date.now() / 1000) - 1;
    const child = execa(
      'node',
      [
        CLI,
        index.lockFile,
        '--index-url',
        index.indexUrl,
        '--output',
        path.join(work, 'site-packages'),
        '--image',
        inject('image'),
        '--python-version',
        '3.12.1',
      ],
      { reject: false, env: { PIP_CONFIG_FILE: '/dev/null', NO_COLOR: '1' }, extendEnv: true },
    );
    const result = await child;
    expect(result.exitCode).toBe(2);
    expect(String(result.stderr)).toContain(
      `sandbox-install: the target Python 3.12.1 (--python-version) is not a 3.11 release: the sandbox image runs Python ${IMAGE_PYTHON}, and markers and Requires-Python can be evaluated only for another 3.11.N; nothing was started`,
    );
    expect(String(result.stderr)).toContain('hint: install for a Python 3.11 (--python-version 3.11.N');
    // No container of this process was ever created (not only none left).
    const until = Math.ceil(Date.now() / 1000) + 1;
    const events = await execa('docker', [
      'events',
      '--since',
      String(since),
      '--until',
      String(until),
      '--filter',
      'type=container',
      '--filter',
      `label=io.sandbox-install.owner=${hostname()}:${child.pid}`,
      '--format',
      '{{.Action}}',
    ]);
    expect(events.stdout.trim()).toBe('');
  });
});
