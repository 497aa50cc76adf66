/**
 * A fake engine for unit tests: it plays one run from a script (what the monitor prints, how the
 * sandbox ends, what the tracer and the supervisor wrote, the installed tree) so a whole workflow
 * runs without Docker. It never runs anything; it answers the port the way the Docker adapter does
 * (archives as tar streams named as `docker cp` names them) and records what was created and
 * removed.
 */
import path from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import type { FsChange } from '../core/outcome.js';
import { EnvironmentError } from '../errors.js';
import {
  LABEL,
  type BuildProgress,
  type ContainerClient,
  type ContainerState,
  type EngineVersion,
  type ImageInfo,
  type LeftoverContainer,
  type MonitorListener,
  type RunSpec,
  type SandboxRun,
  type SeedFile,
} from './port.js';

/**
 * The steps of a run a test can act at (`FakeRun.at`): each hook runs when the workflow reaches the
 * step, before the fake answers, so a test can send a signal or lose the engine exactly there.
 * `archiveData` is when the caller first reads the bytes of an archive readArchive gave. A hook
 * that throws makes that call fail with its error while the engine still answers (Docker's diff
 * failing on a path too long for its own walk, say).
 */
export type FakeStep = 'imageExists' | 'startRun' | 'putFiles' | 'startSandbox' | 'waitSandbox' | 'readArchive' | 'archiveData' | 'diff' | 'remove';

/** What a hook is told: the engine (to `lose()` it), the path of readArchive and archiveData, and how many times the step was reached (from 1). */
export interface FakeStepCall {
  engine: FakeEngine;
  path?: string;
  count: number;
}

export type FakeHook = (call: FakeStepCall) => void | Promise<void>;

export interface FakeRun {
  /** Hooks at named steps; see FakeStep. */
  at?: Partial<Record<FakeStep, FakeHook>>;
  /** ping() fails: no engine (version() and inspectImage() too). */
  engineDown?: boolean;
  /** What version() answers; default `Fake 1.0`, API `1.41`. */
  engineVersion?: EngineVersion;
  /** The images inspectImage() knows, by ref. Absent: every ref exists, as imageExists() says, unlabelled. */
  images?: Record<string, ImageInfo>;
  /** Lines the monitor prints after `ready`. */
  monitorLines?: string[];
  /** The sandbox container's exit code, or `hang`: wait() resolves only when aborted or killed. */
  exitCode: number | 'hang';
  /** Files in the sandbox, by absolute path (status.json, strace.log). */
  files: Record<string, string>;
  /** The tree under a directory getArchive is asked for, by path relative to it. */
  trees: Record<string, Record<string, string | Buffer>>;
  changes?: FsChange[];
  output?: string;
  oomKilled?: boolean;
  /** A backend without the optional filesystem diff (Kubernetes, say). */
  noDiff?: boolean;
  /** What writableBytes() answers (the sandbox's writable layer); absent: 0. */
  writableBytes?: number;
}

/** What dockerode rejects with when the engine's socket answers no more: a new request, and one that was open. */
function connectionError(open: boolean): Error {
  return open
    ? Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })
    : Object.assign(new Error('connect ECONNREFUSED /var/run/docker.sock'), {
        code: 'ECONNREFUSED',
        errno: -111,
        syscall: 'connect',
        address: '/var/run/docker.sock',
      });
}

function archive(entries: Array<{ name: string; content?: string | Buffer }>): Readable {
  const pack = tarStream.pack();
  for (const entry of entries) {
    if (entry.content === undefined) pack.entry({ name: entry.name, type: 'directory', mode: 0o755 });
    else pack.entry({ name: entry.name, mode: 0o644 }, entry.content);
  }
  pack.finalize();
  return pack as unknown as Readable;
}

/** One scripted run: what the workflow asked of it is recorded for the test to check. */
export class FakeSandboxRun implements SandboxRun {
  /** The sandbox was started. */
  started = false;
  removed = false;
  seeded: SeedFile[] = [];
  /** How many times remove() was called, whether or not the engine answered. */
  removeAttempts = 0;
  private killed: (() => void) | null = null;
  private dropped: ((error: Error) => void) | null = null;

  constructor(
    readonly spec: RunSpec,
    private readonly run: FakeRun,
    /** The engine that made it (its hooks, its loss); a run made on its own gets an engine of its own. */
    private readonly engine: FakeEngine = new FakeEngine(run),
  ) {
    if (run.noDiff) this.diff = undefined;
  }

  /** The engine went away: a wait in progress breaks. */
  drop(): void {
    this.dropped?.(connectionError(true));
  }

  get id(): string {
    return this.spec.id;
  }

  /** Plays the monitor: `ready`, then the scripted lines. */
  play(listener: MonitorListener): void {
    setImmediate(() => {
      listener.onLine(JSON.stringify({ type: 'ready', relayPort: 3141, dns: '127.0.0.53', ports: [80, 443] }));
      for (const line of this.run.monitorLines ?? []) listener.onLine(line);
    });
  }

  async putFiles(files: SeedFile[]): Promise<void> {
    await this.engine.reach('putFiles');
    this.seeded.push(...files);
  }

  async startSandbox(): Promise<void> {
    await this.engine.reach('startSandbox');
    this.started = true;
  }

  async waitSandbox(signal?: AbortSignal): Promise<number> {
    await this.engine.reach('waitSandbox');
    const code = this.run.exitCode;
    return new Promise<number>((resolve, reject) => {
      signal?.throwIfAborted();
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      this.killed = () => resolve(137);
      this.dropped = reject;
      if (code !== 'hang') setImmediate(() => resolve(code));
    });
  }

  async killSandbox(): Promise<void> {
    await this.engine.answer();
    this.killed?.();
  }

  readonly writableBytes = async (): Promise<number> => {
    await this.engine.answer();
    return this.run.writableBytes ?? 0;
  };

  async sandboxOutput(): Promise<string> {
    await this.engine.answer();
    return this.run.output ?? '';
  }

  async readArchive(target: string): Promise<Readable> {
    await this.engine.reach('readArchive', target);
    const file = this.run.files[target];
    if (file !== undefined) return this.engine.streamed(archive([{ name: path.posix.basename(target), content: file }]), target);
    const tree = this.run.trees[target];
    if (tree === undefined) throw new Error(`no such path in the fake sandbox: ${target}`);
    const root = path.posix.basename(target);
    return this.engine.streamed(
      archive([{ name: `${root}/` }, ...Object.entries(tree).map(([name, content]) => ({ name: `${root}/${name}`, content }))]),
      target,
    );
  }

  async state(): Promise<{ monitorRunning: boolean; sandbox: ContainerState }> {
    await this.engine.answer();
    return { monitorRunning: !this.removed, sandbox: { running: false, exitCode: null, oomKilled: this.run.oomKilled ?? false } };
  }

  /** As Docker's diff shows them: the files copied in before start (and their new parents) are `added`. */
  readonly diff?: () => Promise<FsChange[]> = async () => {
    await this.engine.reach('diff');
    const seeded = this.seeded.flatMap((file): FsChange[] => [
      { path: path.posix.dirname(file.path), kind: 'added' },
      { path: file.path, kind: 'added' },
    ]);
    const unique = [...new Map(seeded.map((c) => [c.path, c])).values()];
    return [...unique, ...(this.run.changes ?? [])];
  };

  async remove(): Promise<void> {
    this.removeAttempts++;
    await this.engine.reach('remove');
    this.removed = true;
  }
}

export class FakeEngine implements ContainerClient {
  readonly runs: FakeSandboxRun[] = [];
  /** Set by lose(): how every later call ends. */
  private lost: 'fail' | 'hang' | null = null;
  private readonly reached = new Map<FakeStep, number>();

  constructor(private readonly run: FakeRun) {}

  /**
   * The engine goes away (it stopped, or restarts): a wait in progress breaks with a connection
   * error, and every later call fails with one (`fail`) or never answers (`hang`).
   */
  lose(later: 'fail' | 'hang' = 'fail'): void {
    this.lost = later;
    for (const run of this.runs) run.drop();
  }

  /** How an engine call starts: it fails or hangs once the engine is lost. */
  async answer(): Promise<void> {
    if (this.lost === 'fail') throw connectionError(false);
    if (this.lost === 'hang') await new Promise<never>(() => {});
  }

  /** A step reached: its hook runs, then the engine answers (or not). */
  async reach(step: FakeStep, target?: string): Promise<void> {
    const count = (this.reached.get(step) ?? 0) + 1;
    this.reached.set(step, count);
    await this.run.at?.[step]?.({ engine: this, count, ...(target === undefined ? {} : { path: target }) });
    await this.answer();
  }

  /** An archive whose `archiveData` hook runs when its reader first asks for bytes. */
  streamed(data: Readable, target: string): Readable {
    const hook = this.run.at?.archiveData;
    if (!hook) return data;
    const count = (this.reached.get('archiveData') ?? 0) + 1;
    this.reached.set('archiveData', count);
    const call: FakeStepCall = { engine: this, count, path: target };
    return Readable.from(
      (async function* () {
        await hook(call);
        for await (const chunk of data) yield chunk as Buffer;
      })(),
      { objectMode: false },
    );
  }

  private down(): void {
    if (this.run.engineDown) throw new EnvironmentError('engine.unreachable', 'no container engine answers (fake)', { hint: 'start one' });
  }

  async ping(): Promise<void> {
    this.down();
    await this.answer();
  }

  async version(): Promise<EngineVersion> {
    this.down();
    return this.run.engineVersion ?? { engine: 'Fake 1.0', api: '1.41' };
  }

  async inspectImage(ref: string): Promise<ImageInfo | null> {
    this.down();
    if (this.run.images === undefined) return { created: new Date().toISOString(), labels: {}, sizeBytes: 0 };
    return this.run.images[ref] ?? null;
  }

  async imageExists(): Promise<boolean> {
    await this.reach('imageExists');
    return true;
  }

  async pullImage(_ref: string, _onProgress: BuildProgress): Promise<void> {}

  async buildImage(): Promise<void> {}

  async importImage(): Promise<void> {}

  async startRun(spec: RunSpec, listener: MonitorListener): Promise<SandboxRun> {
    await this.reach('startRun');
    const run = new FakeSandboxRun(spec, this.run, this);
    this.runs.push(run);
    run.play(listener);
    return run;
  }

  async listOurs(): Promise<LeftoverContainer[]> {
    await this.answer();
    return this.runs
      .filter((r) => !r.removed)
      .flatMap((r) =>
        (['monitor', 'sandbox'] as const).map((role) => ({
          id: `${r.id}-${role}`,
          name: `${r.id}-${role}`,
          state: 'running',
          labels: { ...r.spec.labels, [LABEL.role]: role },
        })),
      );
  }

  async removeContainer(id: string): Promise<void> {
    await this.answer();
    const run = this.runs.find((r) => id.startsWith(`${r.id}-`));
    if (run) run.removed = true;
  }
}
