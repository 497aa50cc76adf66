/**
 * The container port: everything the tool needs from an engine. Only `runtime/` imports dockerode;
 * everything else takes a `ContainerClient`, so unit tests can pass a fake.
 */
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

export interface ContainerSpec {
  name: string;
  image: string;
  cmd: string[];
  user?: string;
  env?: string[];
  workingDir?: string;
  labels: Record<string, string>;
  networkMode: string;
  capDrop: string[];
  capAdd?: string[];
  securityOpt: string[];
  sysctls?: Record<string, string>;
  binds?: string[];
  tmpfs?: Record<string, string>;
  readonlyRootfs?: boolean;
  pidsLimit?: number;
  memoryBytes?: number;
  nanoCpus?: number;
  /** Resource limits (`--ulimit`); soft equals hard, so the container cannot raise them. */
  ulimits?: Record<string, number>;
  /** What the engine writes into the container's resolv.conf. */
  dns?: { servers: string[]; options: string[] };
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
}

export interface ContainerState {
  running: boolean;
  exitCode: number | null;
  oomKilled: boolean;
}

export interface ContainerHandle {
  readonly id: string;
  readonly name: string;
  start(): Promise<void>;
  /** Resolves with the exit code; rejects with the signal's reason when aborted. */
  wait(signal?: AbortSignal): Promise<number>;
  /**
   * Attaches (resolving once attached) and then calls `onLine` for each stdout line until the
   * container ends; stderr lines go to `onStderr`.
   */
  follow(onLine: (line: string) => void, onStderr?: (line: string) => void): Promise<void>;
  /** The last `tail` lines of combined output, bounded. */
  output(tail?: number): Promise<string>;
  inspect(): Promise<ContainerState>;
  changes(): Promise<FsChange[]>;
  getArchive(path: string): Promise<Readable>;
  /**
   * Write files into the (created, not started) container's filesystem. Unlike a bind mount, this
   * leaves no host path in the container's mount table for a package to read.
   */
  putFiles(files: SeedFile[], at?: string): Promise<void>;
  kill(): Promise<void>;
  /** Force-removes the container; "already gone" counts as success. */
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

export interface ContainerClient {
  /** Resolves when the engine answers; rejects with an EnvironmentError otherwise. */
  ping(): Promise<void>;
  imageExists(ref: string): Promise<boolean>;
  /** Pull an image; rejects when the registry cannot be reached. */
  pullImage(ref: string, onProgress: BuildProgress): Promise<void>;
  buildImage(contextDir: string, tag: string, buildArgs: Record<string, string>, onProgress: BuildProgress): Promise<void>;
  /** Make an image from a root filesystem as a tar stream (`docker import`), with Dockerfile-style `changes`. */
  importImage(rootfs: Readable, tag: string, changes: string[], onProgress: BuildProgress): Promise<void>;
  create(spec: ContainerSpec): Promise<ContainerHandle>;
  /** Containers carrying our tool label. */
  listOurs(): Promise<LeftoverContainer[]>;
  removeContainer(id: string): Promise<void>;
}
