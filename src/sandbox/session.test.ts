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
import { INPUT_PHASES, INSTALLER_PYTHON, PIP_AS, PIP_RUNNER, STATE_DIR } from '../core/layout.js';
import { noPipOptions } from '../lock/pip-options.js';
import { loadPolicy } from '../policy/load.js';
import { FakeEngine, type FakeRun } from '../runtime/fake.js';
import type { MonitorListener, RunSpec, SandboxRun } from '../runtime/port.js';
import { SANDBOX_PROFILE } from '../runtime/seccomp.js';
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
const dns = (name: string, time: number) =>
  JSON.stringify({ type: 'dns', name, qtype: 1, answer: '127.1.0.1', src: '127.0.0.1:1', bytes: 0, payload: '', cut: false, time });

async function runPhases(
  statuses: object[],
  monitorLines: string[],
  options: { noDiff?: boolean; onEngine?: (engine: FakeEngine) => void; pythonTarget?: string } = {},
) {
  const { onEngine, pythonTarget, ...run } = options;
  const engine = new FakeEngine({
    ...run,
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
    ...(pythonTarget === undefined ? {} : { pythonTarget }),
  });
  onEngine?.(engine);
  return session.run([{ name: 'import', argv: ['python3', '-c', 'pass'] }]);
}

const names = (events: Array<{ type: string }>) => events.map((e) => ('name' in e ? e.name : e.type));

describe('SandboxSession.run containers', () => {
  it("runs both parts under the sandbox's seccomp profile, the tracer with what it needs to trace", async () => {
    let engine: FakeEngine | undefined;
    await runPhases([status('install', 10, 20), status('import', 21, 30)], [], { onEngine: (e) => (engine = e) });
    const spec = engine!.runs[0]!.spec;
    expect([spec.monitor.seccompProfile, spec.sandbox.seccompProfile]).toEqual([SANDBOX_PROFILE, SANDBOX_PROFILE]);
    expect(spec.sandbox.capAdd).toContain('SYS_PTRACE');
    expect(spec.sandbox.securityOpt).toContain('no-new-privileges');
  });
});

describe("pip's command line", () => {
  const installArgv = async (pythonTarget?: string) => {
    let engine: FakeEngine | undefined;
    await runPhases([status('install', 10, 20), status('import', 21, 30)], [], { onEngine: (e) => (engine = e), ...(pythonTarget ? { pythonTarget } : {}) });
    const phases = JSON.parse(engine!.runs[0]!.seeded.find((f) => f.path === INPUT_PHASES)!.content) as Array<{ name: string; argv: string[] }>;
    return phases.find((p) => p.name === 'install')!.argv;
  };

  it("for the image's own Python: pip's runner on the installer interpreter", async () => {
    expect((await installArgv()).slice(0, 3)).toEqual([INSTALLER_PYTHON, PIP_RUNNER, 'install']);
  });

  it('for another patch release: the launcher, given the target, then the same pip arguments', async () => {
    const plain = await installArgv();
    const target = await installArgv('3.11.7');
    expect(target.slice(0, 3)).toEqual([INSTALLER_PYTHON, PIP_AS, '3.11.7']);
    expect(target.slice(3)).toEqual(plain.slice(2));
  });
});

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
  /** The session's run and its end: what it threw (null when it returned), what it returned, and how long it all took. */
  async function runToEnd(opened: SandboxSession): Promise<{ failure: unknown; outcome: Awaited<ReturnType<SandboxSession['run']>> | null; ms: number }> {
    const started = Date.now();
    let failure: unknown = null;
    let outcome = null;
    try {
      outcome = await opened.run();
    } catch (error: unknown) {
      failure = error;
    } finally {
      await opened[Symbol.asyncDispose]();
    }
    return { failure, outcome, ms: Date.now() - started };
  }

  const install = (exited: number) => ({ phases: [{ ...status('install', 10, 20), pip: { how: 'exited', value: exited } }] });

  it('an engine restarted with SIGTERM (it answers the wait with 137 as it stops the containers, then refuses every call): engine.lost, not a run that failed', async () => {
    /** What dockerd does on SIGTERM: no new request is taken, the containers are stopped, the open wait answered with their exit. */
    class ShuttingDownEngine extends FakeEngine {
      override async startRun(spec: RunSpec, listener: MonitorListener): Promise<SandboxRun> {
        const run = await super.startRun(spec, listener);
        const wait = run.waitSandbox.bind(run);
        run.waitSandbox = async (signal) => {
          const code = await wait(signal);
          this.lose('fail');
          return code;
        };
        return run;
      }
    }
    const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-lost-'));
    const engine = new ShuttingDownEngine({ exitCode: 137, files: { [`${STATE_DIR}/status.json`]: JSON.stringify(install(0)) }, trees: {} });
    const { failure, outcome, ms } = await runToEnd(await session(engine, work, 300));
    expect(outcome).toBeNull();
    expect(failure).toMatchObject({
      kind: 'environment',
      code: 'engine.lost',
      message: 'the container engine went away while the sandbox ran (connect ECONNREFUSED /var/run/docker.sock)',
      hint: 'check the engine (docker info) and run again; `sandbox-install gc` removes what this run left',
    });
    // Refused at once, not waited for: removal was tried, and gc finds the containers later.
    expect(engine.runs.map((r) => [r.removeAttempts, r.removed])).toEqual([[1, false]]);
    expect(ms).toBeLessThan(300);
    expect(await readdir(path.join(work, 'tmp'))).toEqual([]);
    expect(await readdir(path.join(work, 'runs'))).toEqual([]);
  });

  it('a trace unreadable because the engine went away after the status was read: engine.lost, not monitor.tampered; with the engine there, the run goes on without it', async () => {
    const trace = `${STATE_DIR}/install.strace.log`;
    const files = { [`${STATE_DIR}/status.json`]: JSON.stringify(install(0)), [trace]: '10 1.0 +++ exited with 0 +++\n' };
    // Both work dirs first: session() points TMPDIR into the one it is given.
    const [lostWork, thereWork] = [await mkdtemp(path.join(tmpdir(), 'sandbox-install-lost-')), await mkdtemp(path.join(tmpdir(), 'sandbox-install-lost-'))];
    const gone = new FakeEngine({ exitCode: 0, files, trees: {}, at: { readArchive: ({ engine, path }) => void (path === trace && engine.lose('fail')) } });
    const lost = await runToEnd(await session(gone, lostWork, 300));
    expect(lost.outcome).toBeNull();
    expect(lost.failure).toMatchObject({ kind: 'environment', code: 'engine.lost' });

    // The same trace missing while the engine answers: the run returns, its trace null (monitor.tampered, judged later).
    const { [trace]: _, ...withoutTrace } = files;
    const there = await runToEnd(await session(new FakeEngine({ exitCode: 0, files: withoutTrace, trees: {} }), thereWork, 300));
    expect(there.failure).toBeNull();
    expect(there.outcome?.phases.map((p) => [p.phase, p.pipExitCode, p.trace])).toEqual([['install', 0, null]]);
  });
});
