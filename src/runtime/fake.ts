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

export interface FakeRun {
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
  trees: Record<string, Record<string, string>>;
  changes?: FsChange[];
  output?: string;
  oomKilled?: boolean;
  /** A backend without the optional filesystem diff (Kubernetes, say). */
  noDiff?: boolean;
  /** What writableBytes() answers (the sandbox's writable layer); absent: 0. */
  writableBytes?: number;
}

function archive(entries: Array<{ name: string; content?: string }>): Readable {
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
  private killed: (() => void) | null = null;

  constructor(
    readonly spec: RunSpec,
    private readonly run: FakeRun,
  ) {
    if (run.noDiff) this.diff = undefined;
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
    this.seeded.push(...files);
  }

  async startSandbox(): Promise<void> {
    this.started = true;
  }

  waitSandbox(signal?: AbortSignal): Promise<number> {
    const code = this.run.exitCode;
    return new Promise<number>((resolve, reject) => {
      signal?.throwIfAborted();
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
      this.killed = () => resolve(137);
      if (code !== 'hang') setImmediate(() => resolve(code));
    });
  }

  async killSandbox(): Promise<void> {
    this.killed?.();
  }

  readonly writableBytes = async (): Promise<number> => this.run.writableBytes ?? 0;

  async sandboxOutput(): Promise<string> {
    return this.run.output ?? '';
  }

  async readArchive(target: string): Promise<Readable> {
    const file = this.run.files[target];
    if (file !== undefined) return archive([{ name: path.posix.basename(target), content: file }]);
    const tree = this.run.trees[target];
    if (tree === undefined) throw new Error(`no such path in the fake sandbox: ${target}`);
    const root = path.posix.basename(target);
    return archive([{ name: `${root}/` }, ...Object.entries(tree).map(([name, content]) => ({ name: `${root}/${name}`, content }))]);
  }

  async state(): Promise<{ monitorRunning: boolean; sandbox: ContainerState }> {
    return { monitorRunning: !this.removed, sandbox: { running: false, exitCode: null, oomKilled: this.run.oomKilled ?? false } };
  }

  /** As Docker's diff shows them: the files copied in before start (and their new parents) are `added`. */
  readonly diff?: () => Promise<FsChange[]> = async () => {
    const seeded = this.seeded.flatMap((file): FsChange[] => [
      { path: path.posix.dirname(file.path), kind: 'added' },
      { path: file.path, kind: 'added' },
    ]);
    const unique = [...new Map(seeded.map((c) => [c.path, c])).values()];
    return [...unique, ...(this.run.changes ?? [])];
  };

  async remove(): Promise<void> {
    this.removed = true;
  }
}

export class FakeEngine implements ContainerClient {
  readonly runs: FakeSandboxRun[] = [];

  constructor(private readonly run: FakeRun) {}

  private answer(): void {
    if (this.run.engineDown) throw new EnvironmentError('engine.unreachable', 'no container engine answers (fake)', { hint: 'start one' });
  }

  async ping(): Promise<void> {
    this.answer();
  }

  async version(): Promise<EngineVersion> {
    this.answer();
    return this.run.engineVersion ?? { engine: 'Fake 1.0', api: '1.41' };
  }

  async inspectImage(ref: string): Promise<ImageInfo | null> {
    this.answer();
    if (this.run.images === undefined) return { created: new Date().toISOString(), labels: {}, sizeBytes: 0 };
    return this.run.images[ref] ?? null;
  }

  async imageExists(): Promise<boolean> {
    return true;
  }

  async pullImage(_ref: string, _onProgress: BuildProgress): Promise<void> {}

  async buildImage(): Promise<void> {}

  async importImage(): Promise<void> {}

  async startRun(spec: RunSpec, listener: MonitorListener): Promise<SandboxRun> {
    const run = new FakeSandboxRun(spec, this.run);
    this.runs.push(run);
    run.play(listener);
    return run;
  }

  async listOurs(): Promise<LeftoverContainer[]> {
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
    const run = this.runs.find((r) => id.startsWith(`${r.id}-`));
    if (run) run.removed = true;
  }
}
