/**
 * Test support for the command tests that run main() on the fake engine (imported only by tests):
 * a temp work dir per test with an empty `index/` served as a file:// index, a temp dir (TMPDIR)
 * and a state dir (XDG_STATE_HOME, where run records go) of the test's own beside it, stdout and
 * stderr captured, the flags every such run shares, the report it wrote, the runs it left behind, and
 * builders for the files a scripted run's supervisor leaves.
 */
import { createHash } from 'node:crypto';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, vi } from 'vitest';
import { main } from '../index.js';
import { STATE_DIR } from '../../core/layout.js';
import type { FakeEngine } from '../../runtime/fake.js';
import { Report } from '../../report/schema.js';

export interface FakeCli {
  /** This test's temp dir, made before each test, holding an empty `index/`. */
  readonly work: string;
  /** os.tmpdir() during the test (not inside `work`), so a test sees every temp dir a run leaves. */
  readonly tmp: string;
  /** `<state>/sandbox-install/runs`, XDG_STATE_HOME being the test's own: where the runs record what they made. */
  readonly runs: string;
  /** What the command wrote to stdout and stderr, chunk by chunk; emptied before each test. */
  readonly stdout: string[];
  readonly stderr: string[];
  /**
   * main() on `engine`: `head` (the command, its positional and its own options), then the shared
   * flags (the work dir's index, a fake image, cache and report in the work dir, -q), then `extra`.
   * `exit` catches a forced exit (a second signal); by default one fails the test.
   */
  cli(engine: FakeEngine, head: string[], extra?: string[], exit?: (code: number) => void): Promise<number>;
  /** The report the run wrote to `<work>/report.json`, checked against its schema. */
  report(): Promise<Report>;
  /** The ids of the runs the engine still holds. */
  leftovers(engine: FakeEngine): string[];
}

/** Registers the per-test work dir and output capture in the calling describe; `prefix` names the temp dir. */
export function useFakeCli(prefix: string): FakeCli {
  let work = '';
  let env = '';
  const stdout: string[] = [];
  const stderr: string[] = [];

  beforeEach(async () => {
    work = await mkdtemp(path.join(tmpdir(), prefix));
    await mkdir(path.join(work, 'index'));
    env = await mkdtemp(path.join(tmpdir(), `${prefix}env-`));
    await mkdir(path.join(env, 'tmp'));
    vi.stubEnv('TMPDIR', path.join(env, 'tmp'));
    vi.stubEnv('XDG_STATE_HOME', path.join(env, 'state'));
    stdout.length = 0;
    stderr.length = 0;
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (stdout.push(String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (stderr.push(String(chunk)), true));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
    await rm(work, { recursive: true, force: true });
    await rm(env, { recursive: true, force: true });
  });

  return {
    get work() {
      return work;
    },
    get tmp() {
      return path.join(env, 'tmp');
    },
    get runs() {
      return path.join(env, 'state', 'sandbox-install', 'runs');
    },
    stdout,
    stderr,
    cli: (engine, head, extra = [], exit = (code) => expect.fail(`main() forced an exit with ${code}`)) =>
      main(
        [
          'node',
          'sandbox-install',
          ...head,
          '--index-url',
          `file://${path.join(work, 'index')}`,
          '--image',
          'sandbox-install:fake',
          '--cache-dir',
          path.join(work, 'cache'),
          '--report',
          path.join(work, 'report.json'),
          '-q',
          ...extra,
        ],
        () => engine,
        exit,
      ),
    report: async () => Report.parse(JSON.parse(await readFile(path.join(work, 'report.json'), 'utf8'))),
    leftovers: (engine) => engine.runs.filter((r) => !r.removed).map((r) => r.id),
  };
}

export const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

/** The monitor's line for a DNS query of `name`, answered from the sinkhole, at `time`. */
export const dnsQuery = (name: string, time = 1.5): string =>
  JSON.stringify({ type: 'dns', name, qtype: 1, answer: '127.1.0.1', src: '127.0.0.1:4000', bytes: 0, payload: '', cut: false, time });

/** A trace of one process: `pid` runs `argv` at `start` and exits `exit` a second later. */
export const pipTrace = (pid: number, start: number, argv: string[], exit = 0): string =>
  [
    `${pid} ${start.toFixed(6)} execve("/usr/bin/python3", [${argv.map((a) => JSON.stringify(a)).join(', ')}], 0x7ffd /* 5 vars */) = 0`,
    `${pid} ${(start + 1).toFixed(6)} +++ exited with ${exit} +++`,
    '',
  ].join('\n');

/**
 * One phase of a scripted run: it ran for a second from `started`, with the tracer intact, and pip
 * exited `pipExit` (0 unless said). Its trace is `argv` run by the root and its exit with pip's
 * code, or a whole `trace` when the phase did more.
 */
export type ScriptedPhase = { phase: string; rootPid: number; started: number; pipExit?: number } & ({ argv: string[] } | { trace: string });

/** The startup phase that follows a successful install (images/startup.py as pid 30, from `started`), doing nothing. */
export const quietStartup = (started: number): ScriptedPhase => ({
  phase: 'startup',
  rootPid: 30,
  started,
  argv: ['python3', '-I', '-S', '/opt/sandbox-install/startup.py'],
});

/** What the supervisor leaves for `phases`: status.json and one `<phase>.strace.log` each. */
export function phaseFiles(phases: ScriptedPhase[]): Record<string, string> {
  const status = phases.map(({ phase, rootPid, started, pipExit = 0 }) => ({
    phase,
    started,
    ended: started + 1,
    rootPid,
    pip: { how: 'exited', value: pipExit },
    tracerIntact: true,
    tracerExit: 0,
    lingering: [],
    detached: [],
    execAliases: {},
  }));
  return {
    [`${STATE_DIR}/status.json`]: JSON.stringify({ phases: status }),
    ...Object.fromEntries(
      phases.map((p) => [`${STATE_DIR}/${p.phase}.strace.log`, 'trace' in p ? p.trace : pipTrace(p.rootPid, p.started, p.argv, p.pipExit)] as const),
    ),
  };
}

/**
 * Writes `lock` with two hashed entries served from `<work>/index`: has-wheel==2.0 (line 1), whose
 * page lists a wheel and an sdist, and only-sdist==1.0 (line 3), whose page lists only an sdist.
 */
export async function writeSdistOnlyLock(work: string, lock: string): Promise<void> {
  // Real bytes beside the pages: the proxy prefetches every locked file before the run.
  const sdistBytes = 'only-sdist 1.0, not a real sdist\n';
  const wheelBytes = 'has-wheel 2.0, not a real wheel\n';
  const sdist = createHash('sha256').update(sdistBytes).digest('hex');
  const wheel = createHash('sha256').update(wheelBytes).digest('hex');
  await mkdir(path.join(work, 'index', 'only-sdist'));
  await writeFile(path.join(work, 'index', 'only-sdist', 'only_sdist-1.0.tar.gz'), sdistBytes);
  await writeFile(path.join(work, 'index', 'only-sdist', 'index.html'), `<a href="only_sdist-1.0.tar.gz#sha256=${sdist}">only_sdist-1.0.tar.gz</a>\n`);
  await mkdir(path.join(work, 'index', 'has-wheel'));
  await writeFile(path.join(work, 'index', 'has-wheel', 'has_wheel-2.0-py3-none-any.whl'), wheelBytes);
  await writeFile(
    path.join(work, 'index', 'has-wheel', 'index.html'),
    `<a href="has_wheel-2.0-py3-none-any.whl#sha256=${wheel}">has_wheel-2.0-py3-none-any.whl</a>\n<a href="has_wheel-2.0.tar.gz#sha256=${'c'.repeat(64)}">has_wheel-2.0.tar.gz</a>\n`,
  );
  await writeFile(lock, `has-wheel==2.0 --hash=sha256:${wheel}\n# a comment\nonly-sdist==1.0 \\\n    --hash=sha256:${sdist}\n`);
}
