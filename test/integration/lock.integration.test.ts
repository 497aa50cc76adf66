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
import { LEAK_PREFIX, leakySdist, lockApp, PHONE_HOME_NAME, phoneHomeSdist } from '../fixtures/lock.js';
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
    // Resolved twice, in independent sessions, asking for the same pages and files both times.
    expect(run.report.phases?.map((p) => [p.name, p.exitCode])).toEqual([
      ['resolve', 0],
      ['resolve-check', 0],
    ]);
    expect(run.report.findings.map((f) => f.rule)).not.toContain('integrity.resolve-divergence');
    const asked = (phase: string) => [...new Set(run.report.proxy.filter((r) => r.phase === phase).map((r) => r.path))].sort();
    expect(asked('resolve')).toContain('/simple/lock-dep-b/');
    expect(asked('resolve-check')).toEqual(asked('resolve'));
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

  it('an sdist whose metadata build names a dependency after a canary: integrity.resolve-divergence, exit 1, and no lock', async () => {
    const index = await buildFixtureIndex(leakySdist);
    const run = await runLock(index, 'lock-leaky\n');
    const leaked = (paths: unknown) => (paths as string[]).map((p) => /^GET \/simple\/(lock-leak-[0-9a-f]{12})\/$/.exec(p)?.[1] ?? p);
    const divergences = run.report.findings.filter((f) => f.rule === 'integrity.resolve-divergence');
    // The requests differ (one made-up name each); the resolutions do not (both backtrack to 1.0).
    expect(divergences, JSON.stringify(run.report.findings)).toEqual([
      expect.objectContaining({
        severity: 'high',
        package: null,
        phase: 'resolve-check',
        failing: true,
        evidence: expect.objectContaining({ kind: 'requests', runs: ['resolve', 'resolve-check'], onlyFirstCount: 1, onlySecondCount: 1 }),
      }),
    ]);
    const [first] = leaked(divergences[0]!.evidence.onlyFirst);
    const [second] = leaked(divergences[0]!.evidence.onlySecond);
    expect(first).toMatch(new RegExp(`^${LEAK_PREFIX}[0-9a-f]{12}$`));
    expect(second).toMatch(new RegExp(`^${LEAK_PREFIX}[0-9a-f]{12}$`));
    expect(first).not.toBe(second);
    // Each is what that run's sandbox asked the proxy for, and the proxy asked the upstream.
    const paths = (phase: string) => run.report.proxy.filter((r) => r.phase === phase).map((r) => r.path);
    expect(paths('resolve')).toContain(`/simple/${first}/`);
    expect(paths('resolve-check')).toContain(`/simple/${second}/`);
    // Nothing else fails: pip resolved (to the clean 1.0) in both runs, so without the comparison
    // this input would have been locked.
    expect(run.report.phases?.map((p) => [p.name, p.exitCode])).toEqual([
      ['resolve', 0],
      ['resolve-check', 0],
    ]);
    expect(run.report.findings.filter((f) => f.failing).map((f) => f.rule)).toEqual(['integrity.resolve-divergence']);
    expect(run.exitCode).toBe(1);
    expect(run.report.exported).toBeNull();
    expect(await readdir(run.work)).toEqual(['requirements.in']);
  });
});
