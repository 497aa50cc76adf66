/**
 * `lock` on the real engine, through the built CLI (`npm run build` first): a requirements.in
 * naming a project with two dependencies is resolved in the sandbox into a hashed lock (and, when
 * -o names a pylock.toml, a PEP 751 lock) that the main job then installs with no finding above
 * info; an sdist whose metadata build phones home fails `lock` with exit 1 and network.dns in
 * phase resolve, and no lock is written.
 */
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { afterEach, describe, expect, it } from 'vitest';
import { readLock } from '../../src/lock/parse.js';
import { buildFixtureIndex, type FixtureIndex } from '../fixtures/index.js';
import { lockApp, PHONE_HOME_NAME, phoneHomeSdist } from '../fixtures/lock.js';
import { engineAvailable, expectNoContainersLeft, runCli, runLock as runLockCli } from './helpers.js';

type Judged = { rule: string; severity: string; package: string | null; phase?: string };
const aboveInfo = (findings: Judged[]) => findings.filter((f) => f.severity !== 'info').map((f) => [f.rule, f.package, f.phase]);

/**
 * `sandbox-install lock <work>/requirements.in -o <work>/<lockName>` with the fixture index as its
 * only upstream; `work` holds only those two files, so a test can see what else was written there.
 */
async function runLock(index: FixtureIndex, requirements: string, lockName = 'requirements.lock') {
  const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-lock-it-'));
  const requirementsIn = path.join(work, 'requirements.in');
  await writeFile(requirementsIn, requirements);
  const run = await runLockCli(requirementsIn, index.indexUrl, path.join(work, lockName));
  return { ...run, work };
}

describe.runIf(engineAvailable())('lock on the real engine', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('a project with two dependencies: a hashed lock of the three, which the main job installs cleanly', async () => {
    const index = await buildFixtureIndex(lockApp);
    const run = await runLock(index, 'lock-app\n');
    expect(aboveInfo(run.report.findings), JSON.stringify(run.report.findings)).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.report.phases?.map((p) => [p.name, p.exitCode])).toEqual([['resolve', 0]]);
    expect(run.report.exported).toBe(run.output);

    const sha = (filename: string) => index.files.find((f) => f.filename === filename)!.sha256;
    const written = await readLock(run.output);
    expect(written.requirements.map((r) => [r.name, r.version, [...r.sha256].sort()])).toEqual([
      ['lock-app', '1.0', [sha('lock_app-1.0-py3-none-any.whl')]],
      ['lock-dep-a', '1.0', [sha('lock_dep_a-1.0-py3-none-any.whl')]],
      ['lock-dep-b', '2.0', [sha('lock_dep_b-2.0.tar.gz')]],
    ]);
    const text = await readFile(run.output, 'utf8');
    expect(text).toMatch(
      /^# This file was written by sandbox-install lock \S+ from .*requirements\.in on \d{4}-\d\d-\d\d; resolved inside the sandbox \(pip 23\.0\.1, CPython 3\.11\.\d+, linux x86_64\) against file:\/\//,
    );
    expect(text).toContain(
      `lock-app==1.0 \\\n    --hash=sha256:${sha('lock_app-1.0-py3-none-any.whl')}\n    # via -r ${path.join(run.work, 'requirements.in')}\n`,
    );
    expect(text).toContain(`lock-dep-b==2.0 \\\n    --hash=sha256:${sha('lock_dep_b-2.0.tar.gz')}\n    # via lock-app\n`);

    const installed = await runCli(run.output, index.indexUrl);
    expect(aboveInfo(installed.report.findings), JSON.stringify(installed.report.findings)).toEqual([]);
    expect(installed.exitCode).toBe(0);
    expect(installed.report.packages.map((p) => p.name)).toEqual(['lock-app', 'lock-dep-a', 'lock-dep-b']);
  });

  it('-o naming a pylock.toml, with no --lock-format: a PEP 751 lock of the three, which the main job installs cleanly', async () => {
    const index = await buildFixtureIndex(lockApp);
    const run = await runLock(index, 'lock-app\n', 'pylock.toml');
    expect(aboveInfo(run.report.findings), JSON.stringify(run.report.findings)).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.report.exported).toBe(run.output);
    expect((await readdir(run.work)).sort()).toEqual(['pylock.toml', 'pylock.toml.build.txt', 'requirements.in']);
    // The format follows the name: TOML with PEP 751's keys, not a requirements lock.
    const pylock = parseToml(await readFile(run.output, 'utf8')) as { 'lock-version': string; packages: Array<{ name: string; version: string }> };
    expect(pylock['lock-version']).toBe('1.0');
    expect(pylock.packages.map((p) => [p.name, p.version])).toEqual([
      ['lock-app', '1.0'],
      ['lock-dep-a', '1.0'],
      ['lock-dep-b', '2.0'],
    ]);
    const installed = await runCli(run.output, index.indexUrl);
    expect(aboveInfo(installed.report.findings), JSON.stringify(installed.report.findings)).toEqual([]);
    expect(installed.exitCode).toBe(0);
  });

  it('an sdist whose metadata build phones home: network.dns in phase resolve, and no lock', async () => {
    const index = await buildFixtureIndex([phoneHomeSdist]);
    const run = await runLock(index, 'lock-phone-home\n');
    expect(run.report.findings, JSON.stringify(run.report.findings)).toContainEqual(
      expect.objectContaining({
        rule: 'network.dns',
        package: 'lock-phone-home',
        phase: 'resolve',
        failing: true,
        evidence: expect.objectContaining({ name: PHONE_HOME_NAME }),
      }),
    );
    expect(run.exitCode).toBe(1);
    expect(run.report.exported).toBeNull();
    // No lock, and no temp file beside where it would have gone.
    expect(await readdir(run.work)).toEqual(['requirements.in']);
  });
});
