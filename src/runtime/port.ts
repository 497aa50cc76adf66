/**
 * The engine port: everything the tool needs from an engine, as runs rather than containers. A run
 * is a monitor that owns a network namespace and a sandbox that shares it and nothing else; how a
 * backend makes that (Docker: two containers, `--network container:<monitor>`; Kubernetes: one
 * pod with two containers, the proxy reached through the monitor) stays inside the adapter. Only
 * `runtime/` imports dockerode; everything else takes a `ContainerClient`, so unit tests can pass
 * a fake.
 */
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import type { FsChange } from '../core/outcome.js';

export const LABEL = {
  /** Present on everything we create. */
  tool: 'io.sandbox-install',
  /** One uuid per run. */
  session: 'io.sandbox-install.session',
  role: 'io.sandbox-install.role',
  /** host and pid of the process that owns the run; `gc` spares runs whose owner still lives. */
  owner: 'io.sandbox-install.owner',
} as const;

/** The owner label of the runs this process starts: `gc` and a forced exit find them by it. */
export function runOwner(pid: number = process.pid): string {
  return `${hostname()}:${pid}`;
}

/** What one part of a run runs, as whom and with which limits. */
export interface PartSpec {
  cmd: string[];
  user?: string;
  env?: string[];
  workingDir?: string;
  capDrop: string[];
  capAdd?: string[];
  securityOpt: string[];
  /**
   * A seccomp profile in the engine's JSON format, as a file on this host (runtime/seccomp.ts):
   * the adapter hands it to its engine in the form that engine reads. Without it, the engine's default.
   */
  seccompProfile?: string;
  sysctls?: Record<string, string>;
  tmpfs?: Record<string, string>;
  readonlyRootfs?: boolean;
  pidsLimit?: number;
  memoryBytes?: number;
  nanoCpus?: number;
  /** Resource limits (`--ulimit`); soft equals hard, so the part cannot raise them. */
  ulimits?: Record<string, number>;
}

/** A file written into a container before it starts. */
export interface SeedFile {
  /** Absolute path in the container. */
  path: string;
  content: string;
  mode: number;
  /** Owner of the file and of the directories made for it; default root. */
  uid?: number;
  gid?: number;
  /**
   * When it was last written (ms since the epoch); default now. The directories made for it take
   * the latest time of what they hold, as a directory's mtime is its newest entry's creation.
   */
  mtime?: number;
}

export interface ContainerState {
  running: boolean;
  exitCode: number | null;
  oomKilled: boolean;
}

export interface RunSpec {
  /** Unique per run: names and the session label derive from it. */
  id: string;
  image: string;
  /** Labels on everything the run makes (tool, session, owner); the adapter adds each part's role. */
  labels: Record<string, string>;
  /** Owns the run's network namespace, and is the only part that reaches the index proxy. */
  monitor: PartSpec;
  /** Shares the monitor's network namespace and nothing else. Created, not started. */
  sandbox: PartSpec;
  /**
   * How the monitor reaches the index proxy: the host directory holding its socket, visible to the
   * monitor alone, read-only, at `at`. (A Kubernetes backend would run the proxy as a Service the
   * run pods' egress policy allows, not a socket: see DESIGN.md, "Scale-out"; only this field and
   * the monitor's `--proxy-socket` argument would change, not the workflows.)
   */
  proxySocketDir: { host: string; at: string };
  /** The resolver of the run's network namespace (the monitor's sinkhole). */
  dns: { servers: string[]; options: string[] };
  /**
   * The host name both parts show (the network namespace's owner sets it; the part that joins
   * it gets the same), in place of the engine's container-id default that marks a sandbox.
   */
  hostname?: string;
}

/** Where the monitor's output goes: stdout lines are its events, stderr its complaints. */
export interface MonitorListener {
  onLine(line: string): void;
  onStderr(line: string): void;
}

/** A started run: the monitor running, the sandbox created and waiting for its files and its start. */
export interface SandboxRun {
  readonly id: string;
  /** Write files into the sandbox before it starts (never a bind mount: no host path shows inside). */
  putFiles(files: SeedFile[], at?: string): Promise<void>;
  /** Start the sandbox: its command (the supervisor) runs every phase. */
  startSandbox(): Promise<void>;
  /** Resolves with the sandbox's exit code; rejects with the signal's reason when aborted. */
  waitSandbox(signal?: AbortSignal): Promise<number>;
  killSandbox(): Promise<void>;
  /** The last `tail` lines of the sandbox's combined output, bounded. */
  sandboxOutput(tail?: number): Promise<string>;
  /** A path in the sandbox as a tar stream (hostile input). */
  readArchive(path: string): Promise<Readable>;
  state(): Promise<{ monitorRunning: boolean; sandbox: ContainerState }>;
  /**
   * Optional capability: what changed in the sandbox's filesystem (Docker's diff). A backend
   * without it leaves it undefined, and the trace alone judges writes.
   */
  readonly diff?: () => Promise<FsChange[]>;
  /**
   * Optional capability: how many bytes the sandbox has written to its own writable filesystem
   * (Docker: the container's `SizeRw`), so a run can be stopped at a disk cap. Undefined: no cap.
   */
  readonly writableBytes?: () => Promise<number>;
  /** Removes every part; what is already gone counts as removed. */
  remove(): Promise<void>;
}

export interface LeftoverContainer {
  id: string;
  name: string;
  state: string;
  labels: Record<string, string>;
}

export interface BuildProgress {
  (line: string): void;
}

/** What the engine says it is, for `doctor`. */
export interface EngineVersion {
  /** Its name and version, e.g. `Docker 20.10.24`. */
  engine: string;
  /** The API version it speaks, e.g. `1.41`. */
  api: string;
}

/** What `doctor` shows of an image. */
export interface ImageInfo {
  /** When it was built, as the engine reports it (RFC 3339). */
  created: string;
  labels: Record<string, string>;
  sizeBytes: number;
}

export interface ContainerClient {
  /** Resolves when the engine answers; rejects with an EnvironmentError otherwise. */
  ping(): Promise<void>;
  /**
   * Optional: the engine's name, version and API version; rejects like `ping` when it does not
   * answer, or when `signal` aborts the request (so a hung engine leaves no request behind).
   */
  version?(signal?: AbortSignal): Promise<EngineVersion>;
  imageExists(ref: string): Promise<boolean>;
  /** The image's creation time, labels and size, or null when the engine has no image by that name. */
  inspectImage(ref: string): Promise<ImageInfo | null>;
  /** Pull an image; rejects when the registry cannot be reached. */
  pullImage(ref: string, onProgress: BuildProgress): Promise<void>;
  buildImage(contextDir: string, tag: string, buildArgs: Record<string, string>, onProgress: BuildProgress): Promise<void>;
  /**
   * Optional capability: run `cmd` once in `image` (no network, no capabilities, labelled `labels`
   * so `gc` finds it if this process dies) and resolve with its stdout, at most `maxBytes` of it;
   * rejects when it exits non-zero. The image build reads facts of a fresh image with it.
   */
  probeImage?(image: string, cmd: string[], labels: Record<string, string>, maxBytes: number): Promise<string>;
  /** Make an image from a root filesystem as a tar stream (`docker import`), with Dockerfile-style `changes`. */
  importImage(rootfs: Readable, tag: string, changes: string[], onProgress: BuildProgress): Promise<void>;
  /**
   * Start a run: the monitor (attached to `listener` before it starts) and the sandbox, created in
   * its network namespace. On failure, whatever was made is removed before this rejects.
   */
  startRun(spec: RunSpec, listener: MonitorListener): Promise<SandboxRun>;
  /** Every part of every run on the engine (tool label), for `gc`. */
  listOurs(): Promise<LeftoverContainer[]>;
  removeContainer(id: string): Promise<void>;
}
