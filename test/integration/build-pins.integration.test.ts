/**
 * Issue 19, part 4: build requirements are pinned like the lock, and which of their files the
 * upstream is asked for is fixed before the sandbox starts, on the real engine with real pip.
 * `lock` writes the pins beside the lock; `install` and `wheelhouse` serve a build those files
 * alone; with no pins, the policy's unpinned opt-in is the newest usable release, chosen on the host.
 */
import { createHash } from 'node:crypto';
import { appendFile, copyFile, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUILD_WHEELS_DIR, buildFixtureIndex, type FixtureIndex, type FixturePackage } from '../fixtures/index.js';
import { sdist } from '../fixtures/hostile.js';
import { engineAvailable, expectNoContainersLeft, runCli, runLock, runWheelhouse, serveIndex, type CliRun } from './helpers.js';

const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

/** A setuptools release the upstream has besides the real one (66.1.1, from Debian's wheel): what a hook would pick. */
const decoy: FixturePackage = { name: 'setuptools', version: '60.0.0', kind: 'wheel', files: { 'decoy_marker.py': 'DECOY = True\n' } };

/** The decoy wheel, built alone first so that a hook can name its real sha256. */
async function decoyWheel(): Promise<{ file: string; filename: string; sha: string }> {
  const index = await buildFixtureIndex([decoy]);
  const { filename, sha256: sha } = index.files.find((f) => f.name === 'setuptools')!;
  return { file: path.join(index.dir, 'files', filename), filename, sha };
}

/** Put a file on a fixture index's project page, as an upstream that has one more release. */
async function addToPage(index: FixtureIndex, project: string, file: { file: string; filename: string; sha: string }): Promise<void> {
  await copyFile(file.file, path.join(index.dir, 'files', file.filename));
  await appendFile(path.join(index.dir, 'simple', project, 'index.html'), `<a href="../../files/${file.filename}#sha256=${file.sha}">${file.filename}</a>\n`);
}

/** The sandbox's first request to the proxy, from the report. */
const firstFromSandbox = (run: CliRun): number => Math.min(...run.report.proxy.map((r) => Date.parse(r.time)));

describe.runIf(engineAvailable())('build requirements on the real engine', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('a build hook asking for the setuptools release of its choice: refused and failing, attributed to it, and the upstream never asked for that file', async () => {
    const wanted = await decoyWheel();
    // At build time, the hook asks the relay for the file by its real sha256 (the page no longer lists it).
    const chooser = sdist(
      'bp-chooser',
      `
import urllib.request
try:
    urllib.request.urlopen("http://127.0.0.1:3141/files/${wanted.sha}/${wanted.filename}", timeout=5).read()
except Exception:
    pass`,
    );
    const index = await buildFixtureIndex([chooser]);
    await addToPage(index, 'setuptools', wanted);
    const server = await serveIndex(index.dir);
    let run: CliRun;
    try {
      run = await runCli(index.lockFile, `${server.origin}/simple/`);
    } finally {
      await server.close();
    }
    const findings = run.report.findings;
    expect(run.exitCode, JSON.stringify(findings)).toBe(1);
    const failing = findings.filter((f) => f.failing);
    expect(failing.filter((f) => f.rule === 'integrity.unlocked-request').map((f) => [f.package, f.phase, f.evidence.path, f.evidence.project])).toEqual([
      ['bp-chooser', 'build', `/files/${wanted.sha}/${wanted.filename}`, 'setuptools'],
    ]);
    // Besides: each of the hook's runs reaching for the relay at all (network.connect), and nothing else.
    expect(new Set(failing.map((f) => `${f.rule} ${f.package} ${f.phase}`))).toEqual(
      new Set(['integrity.unlocked-request bp-chooser build', 'network.connect bp-chooser build']),
    );
    // The default policy's unpinned opt-in: the newest release (Debian's 66.1.1), marked, never the hook's pick.
    const real = (await readdir(BUILD_WHEELS_DIR)).filter((name) => /^(setuptools|wheel)-.*\.whl$/.test(name)).sort();
    expect(
      findings
        .filter((f) => f.rule === 'integrity.build-requirement')
        .map((f) => [f.severity, f.evidence.filename, f.evidence.pinned])
        .sort(),
    ).toEqual(real.map((filename) => ['info', filename, false]));
    expect(server.hits.filter((hit) => hit.includes(wanted.filename))).toEqual([]);
    expect(server.hits).toContain(`/files/${real[0]}`);
    expect(Math.max(...server.hitTimes)).toBeLessThan(firstFromSandbox(run));
    expect(run.report.exported).toBeNull();
  });

  it('lock writes the pins beside the lock; install serves a build exactly those files, with nothing marked; wheelhouse writes the same pins', async () => {
    const plain: FixturePackage = { ...sdist('bp-plain', ''), files: { ...sdist('bp-plain', '').files, 'bp_plain.py': 'VALUE = 1\n' } };
    const index = await buildFixtureIndex([plain]);
    const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-pins-it-'));
    await writeFile(path.join(work, 'requirements.in'), 'bp-plain\n');
    const locked = await runLock(path.join(work, 'requirements.in'), index.indexUrl, path.join(work, 'requirements.lock'));
    expect(locked.exitCode, JSON.stringify(locked.report.findings)).toBe(0);
    expect((await readdir(work)).sort()).toEqual(['requirements.in', 'requirements.lock', 'requirements.lock.build.txt']);

    const build = await Promise.all(
      (await readdir(BUILD_WHEELS_DIR))
        .filter((name) => /^(setuptools|wheel)-.*\.whl$/.test(name))
        .sort()
        .map(async (filename) => ({ filename, sha: sha256(await readFile(path.join(BUILD_WHEELS_DIR, filename))) })),
    );
    const pins = build.map(({ filename, sha }) => `${filename.split('-')[0]}==${filename.split('-')[1]} \\\n    --hash=sha256:${sha}`);
    const pinsText = await readFile(path.join(work, 'requirements.lock.build.txt'), 'utf8');
    expect(pinsText).toMatch(/^# Build requirements, pinned by sandbox-install lock on \d{4}-\d\d-\d\d\.\n/);
    expect(pinsText.split('\n').filter((line) => !line.startsWith('#'))).toEqual([...pins.join('\n').split('\n'), '']);

    const installed = await runCli(path.join(work, 'requirements.lock'), index.indexUrl);
    expect(installed.report.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(installed.exitCode).toBe(0);
    // Pinned: served, and not marked as an unpinned build requirement.
    expect(installed.report.findings.filter((f) => f.rule === 'integrity.build-requirement')).toEqual([]);
    const servedFiles = installed.report.proxy.filter((r) => r.status === 200 && r.path.startsWith('/files/')).map((r) => r.path);
    for (const { filename, sha } of build) expect(servedFiles).toContain(`/files/${sha}/${filename}`);

    const wheelhouse = await runWheelhouse(path.join(work, 'requirements.lock'), index.indexUrl);
    expect(wheelhouse.exitCode, JSON.stringify(wheelhouse.report.findings)).toBe(0);
    const written = await readFile(path.join(wheelhouse.output, 'requirements.lock.build.txt'), 'utf8');
    expect(written).toMatch(/^# Build requirements, pinned by sandbox-install wheelhouse on \d{4}-\d\d-\d\d\.\n/);
    expect(written.split('\n').filter((line) => !line.startsWith('#'))).toEqual([...pins.join('\n').split('\n'), '']);
  });
});
