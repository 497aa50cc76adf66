/**
 * A run of several phases on the fake engine: each phase gets its own trace and status, and the
 * monitor events and proxy findings of its time window; nothing is dropped, not even an event the
 * phases' times cannot place.
 */
import { mkdir, mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_LIMITS } from '../core/outcome.js';
import { STATE_DIR } from '../core/layout.js';
import { noPipOptions } from '../lock/pip-options.js';
import { loadPolicy } from '../policy/load.js';
import { FakeEngine, type FakeRun } from '../runtime/fake.js';
import { SandboxSession } from './session.js';

const status = (phase: string, started: number, ended: number) => ({
  phase,
  started,
  ended,
  rootPid: 10,
  pip: { how: 'exited', value: 0 },
  tracerIntact: true,
  tracerExit: 0,
  lingering: [],
});
const dns = (name: string, time: number) => JSON.stringify({ type: 'dns', name, qtype: 1, answer: '127.1.0.1', src: '127.0.0.1:1', time });

async function runPhases(statuses: object[], monitorLines: string[], options: { noDiff?: boolean } = {}) {
  const engine = new FakeEngine({
    ...options,
    exitCode: 0,
    monitorLines,
    files: {
      [`${STATE_DIR}/status.json`]: JSON.stringify({ phases: statuses }),
      [`${STATE_DIR}/install.strace.log`]: '10 1.0 +++ exited with 0 +++\n',
      [`${STATE_DIR}/import.strace.log`]: '20 21.0 +++ exited with 0 +++\n',
    },
    trees: {},
  });
  await using session = await SandboxSession.open({
    client: engine,
    image: 'sandbox-install:fake',
    plan: { file: 'requirements.lock', requirements: [], indexUrl: null, extraIndexUrls: [], pipOptions: noPipOptions() },
    upstreams: { indexUrl: `file://${await mkdtemp(path.join(tmpdir(), 'sandbox-install-idx-'))}`, extraIndexUrls: [] },
    policy: await loadPolicy('default'),
    cacheDir: await mkdtemp(path.join(tmpdir(), 'sandbox-install-cache-')),
    limits: DEFAULT_LIMITS,
    logger: pino({ level: 'silent' }),
    signal: new AbortController().signal,
    runsDir: path.join(await mkdtemp(path.join(tmpdir(), 'sandbox-install-state-')), 'runs'),
  });
  return session.run([{ name: 'import', argv: ['python3', '-c', 'pass'] }]);
}

const names = (events: Array<{ type: string }>) => events.map((e) => ('name' in e ? e.name : e.type));

describe('SandboxSession.run with phases', () => {
  it('gives each phase its trace, its status and the events of its window', async () => {
    const run = await runPhases(
      [status('install', 10, 20), status('import', 21, 30)],
      [dns('before.test', 5), dns('during-install.test', 15), dns('during-import.test', 25), dns('after.test', 35)],
    );
    expect(run.phases.map((p) => p.phase)).toEqual(['install', 'import']);
    expect(run.phases.map((p) => p.trace)).toEqual(['10 1.0 +++ exited with 0 +++\n', '20 21.0 +++ exited with 0 +++\n']);
    expect(run.phases.map((p) => p.status?.started)).toEqual([10, 21]);
    expect(names(run.phases[0]!.monitorEvents)).toEqual(['before.test', 'during-install.test']);
    expect(names(run.phases[1]!.monitorEvents)).toEqual(['during-import.test', 'after.test']);
  });

  it('gives a phase cut short (no status) what came after the phase before it ended', async () => {
    const run = await runPhases([status('install', 10, 20)], [dns('during-install.test', 15), dns('cut-short.test', 22)]);
    expect(run.phases.map((p) => [p.phase, p.status === null])).toEqual([
      ['install', false],
      ['import', true],
    ]);
    expect(names(run.phases[1]!.monitorEvents)).toEqual(['cut-short.test']);
  });

  it('runs on a backend without the filesystem diff: the trace alone judges writes', async () => {
    const withDiff = await runPhases([status('install', 10, 20), status('import', 21, 30)], []);
    expect(withDiff.phases[0]!.changes.map((c) => c.path)).toContain('/input/requirements.lock');
    const without = await runPhases([status('install', 10, 20), status('import', 21, 30)], [], { noDiff: true });
    expect(without.phases.map((p) => p.changes)).toEqual([[], []]);
    expect(without.phases.map((p) => p.status?.started)).toEqual([10, 21]);
  });
});

describe('SandboxSession when the engine stops answering', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  /** A session on `engine` whose temp dirs go to `<work>/tmp` and its record to `<work>/runs`. */
  async function session(engine: FakeEngine, work: string, removeTimeoutMs: number): Promise<SandboxSession> {
    await mkdir(path.join(work, 'tmp'));
    vi.stubEnv('TMPDIR', path.join(work, 'tmp'));
    return SandboxSession.open({
      client: engine,
      image: 'sandbox-install:fake',
      plan: { file: 'requirements.lock', requirements: [], indexUrl: null, extraIndexUrls: [], pipOptions: noPipOptions() },
      upstreams: { indexUrl: `file://${work}`, extraIndexUrls: [] },
      policy: await loadPolicy('default'),
      cacheDir: path.join(work, 'cache'),
      limits: DEFAULT_LIMITS,
      logger: pino({ level: 'silent' }),
      signal: new AbortController().signal,
      runsDir: path.join(work, 'runs'),
      removeTimeoutMs,
    });
  }

  it('an engine that hangs after breaking the wait: the run fails as engine.lost, and its end waits on removal only as long as the bound', async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-lost-'));
    const script: FakeRun = { exitCode: 'hang', files: {}, trees: {}, at: { waitSandbox: ({ engine }) => void setTimeout(() => engine.lose('hang'), 20) } };
    const engine = new FakeEngine(script);
    const opened = await session(engine, work, 300);
    const started = Date.now();
    let failure: unknown = null;
    try {
      await opened.run();
    } catch (error: unknown) {
      failure = error;
    } finally {
      await opened[Symbol.asyncDispose]();
    }
    expect(failure).toMatchObject({
      kind: 'environment',
      code: 'engine.lost',
      message: 'the container engine went away while the sandbox ran (socket hang up)',
    });
    // The removal was tried and never answered: the end came at the bound, not never.
    expect(engine.runs.map((r) => [r.removeAttempts, r.removed])).toEqual([[1, false]]);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    // The host side is clean all the same: no temp dir, no record.
    expect(await readdir(path.join(work, 'tmp'))).toEqual([]);
    expect(await readdir(path.join(work, 'runs'))).toEqual([]);
  });
});
