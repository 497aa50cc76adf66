/**
 * wheelhouse on the real engine: a locked wheel, a pure sdist and a C-extension sdist go in; a
 * wheelhouse comes out that pip installs offline on the host, with hashes, and whose C extension
 * imports and runs. A hostile sdist that acts only while wheels are built fails the run, and
 * nothing is written. Each run is the built CLI (`npm run build` first), with no image named: the
 * command picks the build image itself when the lock has sdists only for some requirement.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { Report } from '../../src/report/schema.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { cExtensionSdist, lockedWheel, phonesHomeWhenBuildingWheels, pureSdist, secondBuildDiffers, windowsOnly } from '../fixtures/wheelhouse.js';
import { engineAvailable, expectNoContainersLeft, runWheelhouse } from './helpers.js';

const sha256 = async (file: string) =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

/** Enough for the C extension's build under the tracer. */
const TIMEOUT = ['--timeout', '240'];

describe.runIf(engineAvailable())('wheelhouse on the real engine, through the built CLI', () => {
  afterEach(async () => {
    // Every run this file started is gone from the engine.
    await expectNoContainersLeft();
  });

  it('round trip, offline: a locked wheel, a pure sdist and a C-extension sdist install on the host from the wheelhouse alone', async () => {
    const index = await buildFixtureIndex([lockedWheel, pureSdist, cExtensionSdist, windowsOnly]);
    // Markers stay verbatim; a requirement whose marker is false in the sandbox is skipped.
    const lock = await readFile(index.lockFile, 'utf8');
    await writeFile(
      index.lockFile,
      lock
        .replace('wh-alpha==1.0.0 \\', 'wh-alpha==1.0.0 ; python_version >= "3" \\')
        .replace('wh-windows-only==2.0 \\', 'wh-windows-only==2.0 ; sys_platform == "win32" \\'),
    );
    const run = await runWheelhouse(index.lockFile, index.indexUrl, TIMEOUT);

    expect(run.report.findings.filter((f) => f.failing)).toEqual([]);
    expect(run.report.verdict).toBe('pass');
    expect(run.exitCode).toBe(0);
    // The lock has sdists only for two requirements: the build image was chosen by itself.
    expect(run.report.image).toBe(inject('buildImage'));
    // The two sdists are built once, each in a build phase of its own; the install phase installs wheels only.
    expect(run.report.phases?.map((p) => [p.name, p.exitCode])).toEqual([
      ['build', 0],
      ['build', 0],
      ['install', 0],
      ['startup', 0],
    ]);
    expect(run.report.exported).toBe(run.output);

    const files = (await readdir(run.output)).sort();
    expect(files).toEqual([
      '.sandbox-install-manifest.json',
      'report.json',
      'requirements.lock',
      // What built the two sdists (setuptools and wheel), pinned beside the lock.
      'requirements.lock.build.txt',
      'wh_alpha-1.0.0-py3-none-any.whl',
      'wh_cext-1.0-cp311-cp311-linux_x86_64.whl',
      'wh_pure-0.3-py3-none-any.whl',
    ]);
    // The locked wheel is the fixture's file, byte for byte.
    const alpha = index.files.find((f) => f.name === 'wh-alpha')!;
    expect(await sha256(path.join(run.output, alpha.filename))).toBe(alpha.sha256);
    // The re-hashed lock names exactly the files in the wheelhouse.
    const wheels = files.filter((f) => f.endsWith('.whl'));
    const hashes = await Promise.all(wheels.map((f) => sha256(path.join(run.output, f))));
    const rehashed = await readFile(path.join(run.output, 'requirements.lock'), 'utf8');
    expect(rehashed.split('\n').filter((line) => !line.startsWith('#'))).toEqual([
      'wh-alpha==1.0.0 ; python_version >= "3" \\',
      `    --hash=sha256:${hashes[0]}`,
      'wh-pure==0.3 \\',
      `    --hash=sha256:${hashes[2]}`,
      'wh-cext==1.0 \\',
      `    --hash=sha256:${hashes[1]}`,
      '',
    ]);
    expect(rehashed).toContain(`# This file was written by sandbox-install wheelhouse from requirements.lock on `);
    expect(rehashed).toContain('# skipped: wh-windows-only==2.0 ; sys_platform == "win32"');
    // The report inside is the report of this run.
    expect(Report.parse(JSON.parse(await readFile(path.join(run.output, 'report.json'), 'utf8'))).exported).toBe(run.output);

    // On the host, offline: a fresh venv installs from the wheelhouse alone, hash-checked.
    const venv = path.join(run.work, 'venv');
    await execa('python3', ['-m', 'venv', venv]);
    const env = { PIP_CONFIG_FILE: '/dev/null', PIP_NO_INDEX: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1' };
    await execa(
      path.join(venv, 'bin', 'pip'),
      ['install', '--no-index', '--find-links', run.output, '--require-hashes', '-r', path.join(run.output, 'requirements.lock')],
      { env },
    );
    const used = await execa(
      path.join(venv, 'bin', 'python'),
      ['-c', 'import wh_alpha, wh_pure, wh_cext; print(wh_alpha.greet(), wh_pure.VALUE, wh_cext.add(2, 40))'],
      { env },
    );
    expect(used.stdout).toBe('alpha pure 42');
  });

  it('fails an sdist that phones home only while wheels are built, in phase build, and writes nothing', async () => {
    const index = await buildFixtureIndex([lockedWheel, phonesHomeWhenBuildingWheels]);
    const run = await runWheelhouse(index.lockFile, index.indexUrl, TIMEOUT);

    expect(run.report.verdict).toBe('fail');
    expect(run.exitCode).toBe(1);
    const dns = run.report.findings.filter((f) => f.rule === 'network.dns' && f.failing);
    expect(dns.map((f) => [f.package, f.phase])).toEqual([['wh-hostile', 'build']]);
    expect(JSON.stringify(dns[0]?.evidence)).toContain('collect.wheelhouse.invalid');
    // Nothing is built during install: nothing failing there.
    expect(run.report.findings.filter((f) => f.failing && f.phase === 'install')).toEqual([]);
    expect(run.report.exported).toBeNull();
    // Neither the wheelhouse nor a staging dir beside it.
    expect((await readdir(run.work)).sort()).toEqual(['cache', 'report.json']);
  });

  it('builds each locked sdist once: the wheel in the wheelhouse is the one installed and scanned, even from a build that differs the second time', async () => {
    const index = await buildFixtureIndex([lockedWheel, secondBuildDiffers]);
    const run = await runWheelhouse(index.lockFile, index.indexUrl, TIMEOUT);
    expect(run.report.findings.filter((f) => f.failing)).toEqual([]);
    expect(run.exitCode).toBe(0);
    // One build_wheel hook, in the build phase; no hook at all in the install phase.
    const hooks = run.report.processes.filter((p) => Array.isArray(p.argv) && p.argv.some((a) => /_in_process\.py$/.test(String(a))));
    expect(hooks.filter((p) => (p.argv as unknown[]).includes('build_wheel')).map((p) => p.phase)).toEqual(['build']);
    expect(hooks.filter((p) => p.phase !== 'build')).toEqual([]);
    const wheel = (await readdir(run.output)).find((f) => f.startsWith('wh_second_build-'))!;
    const { stdout } = await execa('python3', [
      '-I',
      '-S',
      '-c',
      'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))',
      path.join(run.output, wheel),
    ]);
    expect(stdout.split('\n').filter((name) => name.endsWith('.pth'))).toEqual([]);
    // The published wheel is the one whose installed files provenance held the tree to.
    const served = run.report.packages.find((p) => p.name === 'wh-second-build')!.files.map((f) => f.filename);
    expect(served).toContain(wheel);
  });
});
