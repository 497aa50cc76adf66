/**
 * `lock` on the real engine: a requirements.in naming a project with two dependencies is resolved
 * in the sandbox into a hashed lock (and a pylock.toml) that the main job then installs with no
 * finding above info; an sdist whose metadata build phones home fails `lock` with network.dns in
 * phase resolve, and no lock is written.
 *
 * The workflow runs in this process (the `lock` command is wired in src/cli/index.ts by the lead);
 * the install of what it wrote runs the built CLI.
 */
import { access, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { readLock } from '../../src/lock/parse.js';
import { DockerClient } from '../../src/runtime/docker.js';
import { LABEL } from '../../src/runtime/port.js';
import { lock, type LockRequest } from '../../src/workflows/lock.js';
import { buildFixtureIndex, type FixtureIndex } from '../fixtures/index.js';
import { lockApp, PHONE_HOME_NAME, phoneHomeSdist } from '../fixtures/lock.js';
import { engineAvailable, expectNoContainersLeft, runCli } from './helpers.js';

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

type Judged = { rule: string; severity: string; package: string | null; phase?: string };
const aboveInfo = (findings: Judged[]) => findings.filter((f) => f.severity !== 'info').map((f) => [f.rule, f.package, f.phase]);

/** The lock workflow on the real engine, with the fixture index as its only upstream. */
async function runLock(index: FixtureIndex, requirements: string, format: LockRequest['format'] = 'requirements') {
  const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-lock-it-'));
  const requirementsIn = path.join(work, 'requirements.in');
  await writeFile(requirementsIn, requirements);
  const request: LockRequest = {
    requirementsIn,
    output: path.join(work, format === 'pylock' ? 'pylock.toml' : 'requirements.lock'),
    format,
    indexUrl: index.indexUrl,
    extraIndexUrls: [],
    policy: 'default',
    report: path.join(work, 'report.json'),
    image: inject('image'),
    cacheDir: path.join(work, 'cache'),
  };
  const result = await lock(request, { engine: new DockerClient(), logger: pino({ level: 'silent' }), signal: new AbortController().signal });
  return { ...result, work, output: request.output };
}

/** Nothing of a run this process started is left on the engine. */
async function expectOwnRunsGone(): Promise<void> {
  const ours = (await new DockerClient().listOurs()).filter((c) => c.labels[LABEL.owner] === `${hostname()}:${process.pid}`);
  expect(ours.map((c) => c.name)).toEqual([]);
}

describe.runIf(engineAvailable())('lock on the real engine', () => {
  beforeEach(() => {
    // The fixture index is the only upstream: nothing from this machine's pip configuration.
    vi.stubEnv('PIP_CONFIG_FILE', '/dev/null');
    vi.stubEnv('PIP_EXTRA_INDEX_URL', '');
  });
  afterEach(async () => {
    vi.unstubAllEnvs();
    await expectOwnRunsGone();
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

  it('--lock-format pylock: a pylock.toml the main job installs cleanly', async () => {
    const index = await buildFixtureIndex(lockApp);
    const run = await runLock(index, 'lock-app\n', 'pylock');
    expect(aboveInfo(run.report.findings), JSON.stringify(run.report.findings)).toEqual([]);
    expect(run.exitCode).toBe(0);
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
    expect(await exists(run.output)).toBe(false);
  });
});
