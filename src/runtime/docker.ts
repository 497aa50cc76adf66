/** The dockerode adapter behind the container port. The only file that imports dockerode. */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PassThrough, type Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import Docker from 'dockerode';
import tar from 'tar-fs';
import tarStream from 'tar-stream';
import { EnvironmentError, InstallError } from '../errors.js';
import type { FsChange } from '../core/outcome.js';
import {
  LABEL,
  type BuildProgress,
  type ContainerClient,
  type SeedFile,
  type PartSpec,
  type ContainerState,
  type EngineVersion,
  type ImageInfo,
  type LeftoverContainer,
  type MonitorListener,
  type RunSpec,
  type SandboxRun,
} from './port.js';

const CHANGE_KINDS = ['modified', 'added', 'deleted'] as const;

function statusOf(error: unknown): number | undefined {
  return typeof error === 'object' && error !== null && 'statusCode' in error ? (error as { statusCode?: number }).statusCode : undefined;
}

/** 304 (already stopped) and 404 (already gone) are success during cleanup. */
async function tolerateGone(action: Promise<unknown>): Promise<void> {
  try {
    await action;
  } catch (error: unknown) {
    const status = statusOf(error);
    if (status !== 304 && status !== 404 && status !== 409) throw error;
  }
}

/**
 * Remove a container, and return only once it is gone. A 409 is another request already removing
 * it (the first Ctrl-C's cleanup racing the second's): wait for that one to finish, within
 * REMOVAL_WAIT_MS, rather than report a container that is still there as removed.
 */
export async function removeFully(container: Pick<Docker.Container, 'id' | 'remove' | 'inspect'>, waitMs = REMOVAL_WAIT_MS): Promise<void> {
  try {
    await container.remove({ force: true, v: true });
    return;
  } catch (error: unknown) {
    const status = statusOf(error);
    if (status === 304 || status === 404) return;
    if (status !== 409) throw error;
  }
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      await container.inspect();
    } catch (error: unknown) {
      if (statusOf(error) === 404) return;
      throw error;
    }
    if (Date.now() >= deadline) throw new Error(`container ${container.id} is still being removed after ${waitMs / 1000} s`);
    await delay(100);
  }
}
const REMOVAL_WAIT_MS = 10_000;

/** Progress streams report failure inside the stream (`errorDetail`), not by ending badly. */
function followProgress(docker: Docker, stream: NodeJS.ReadableStream, onProgress: BuildProgress): Promise<void> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (error: Error | null) => (error ? reject(error) : resolve()),
      (event: { stream?: string; status?: string; progress?: string; error?: string; errorDetail?: { message?: string } }) => {
        if (event.errorDetail || event.error) {
          reject(new Error(event.errorDetail?.message ?? event.error));
          return;
        }
        const text = (event.stream ?? [event.status, event.progress].filter(Boolean).join(' ')).trimEnd();
        if (text) onProgress(text);
      },
    );
  });
}

/** One container as this adapter creates it: a run's part, with its identity, network and mounts. */
export interface ContainerSpec extends PartSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  networkMode: string;
  binds?: string[];
  /** What the engine writes into the container's resolv.conf. */
  dns?: { servers: string[]; options: string[] };
  /** The container's host name. Docker refuses it with `NetworkMode: container:<id>`, and gives that container the joined one's instead. */
  hostname?: string;
}

/**
 * The SecurityOpt entry that applies a seccomp profile (a file on this host). Docker's API takes
 * the profile itself, as JSON text (its CLI reads the file and sends the text); Podman's
 * Docker-compatible API takes a path and opens it on the engine's side (which is this host: a
 * remote Podman cannot read it, and its create then fails, so no container runs without the profile).
 */
export function seccompOption(engine: 'docker' | 'podman', profilePath: string, profileText: string): string {
  return engine === 'podman' ? `seccomp=${profilePath}` : `seccomp=${profileText}`;
}

/** One container; a run is two of them (DockerRun). */
export class DockerContainer {
  constructor(
    private readonly docker: Docker,
    private readonly container: Docker.Container,
    readonly name: string,
  ) {}

  get id(): string {
    return this.container.id;
  }

  async start(): Promise<void> {
    await this.container.start();
  }

  async wait(signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    // dockerode takes `abortSignal` (its types do not say so): an aborted wait leaves no request open.
    const waiting = this.container.wait({ abortSignal: signal } as object) as Promise<{ StatusCode: number }>;
    if (!signal) return (await waiting).StatusCode;
    return new Promise<number>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      waiting.then(
        (result) => {
          signal.removeEventListener('abort', onAbort);
          resolve(result.StatusCode);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', onAbort);
          // The aborted request fails too: the caller learns the signal's reason, whichever came first.
          reject(signal.aborted ? signal.reason : error);
        },
      );
    });
  }

  async follow(onLine: (line: string) => void, onStderr?: (line: string) => void): Promise<void> {
    const stream = (await this.container.attach({ stream: true, stdout: true, stderr: true, logs: true })) as NodeJS.ReadableStream;
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    this.docker.modem.demuxStream(stream, stdout, stderr);
    // The attach stream ends (or breaks) when the container goes: end the line readers with it.
    const finish = () => {
      stdout.end();
      stderr.end();
    };
    stream.once('end', finish);
    stream.once('close', finish);
    stream.once('error', finish);
    createInterface({ input: stdout, crlfDelay: Infinity }).on('line', onLine);
    createInterface({ input: stderr, crlfDelay: Infinity }).on('line', (line) => onStderr?.(line));
  }

  /**
   * The last `tail` lines of the output, and at most OUTPUT_MAX_BYTES of them. The engine splits a
   * line into 16 KiB log entries and `tail` counts entries, so it reads about 1 MiB at most for 60.
   */
  async output(tail = 200): Promise<string> {
    const buffer = (await this.container.logs({ stdout: true, stderr: true, tail, follow: false })) as unknown as Buffer;
    return demuxTail(buffer, OUTPUT_MAX_BYTES);
  }

  /** The size of the container's writable layer (`SizeRw`): the engine walks it, about 50 ms for 3,000 files. */
  async writableBytes(): Promise<number> {
    // `size` is a query parameter of the API that @types/dockerode does not list; dockerode passes it on.
    const info = (await this.container.inspect({ size: true } as Docker.ContainerInspectOptions)) as { SizeRw?: number };
    // Missing, the engine did not measure it (it gives -1 when its walk of the layer fails): the caller treats that as unmeasurable.
    return info.SizeRw ?? -1;
  }

  async inspect(): Promise<ContainerState> {
    const info = await this.container.inspect();
    return {
      running: info.State.Running,
      exitCode: info.State.Running ? null : info.State.ExitCode,
      oomKilled: info.State.OOMKilled,
    };
  }

  async changes(): Promise<FsChange[]> {
    const changes = ((await this.container.changes()) ?? []) as Array<{ Path: string; Kind: number }>;
    return changes.map((change) => ({ path: change.Path, kind: CHANGE_KINDS[change.Kind] ?? 'modified' }));
  }

  async getArchive(path: string): Promise<Readable> {
    return (await this.container.getArchive({ path })) as unknown as Readable;
  }

  async putFiles(files: SeedFile[], at = '/'): Promise<void> {
    const pack = tarStream.pack();
    const dirs = new Set<string>();
    const base = at.replace(/\/+$/, '');
    const now = Date.now();
    // A directory's time is its newest entry's (the engine sets directories' times after their contents).
    const dirTimes = new Map<string, number>();
    for (const file of files) {
      const parts = file.path.slice(base.length + 1).split('/');
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        dirTimes.set(dir, Math.max(dirTimes.get(dir) ?? 0, file.mtime ?? now));
      }
    }
    for (const file of files) {
      if (!file.path.startsWith(`${base}/`)) throw new Error(`${file.path} is not under ${at}`);
      const parts = file.path.slice(base.length + 1).split('/');
      const owner = { uid: file.uid ?? 0, gid: file.gid ?? 0 };
      // Parents below `at` first, with the file's owner (0755 for root, 0700 for anyone else):
      // docker would make missing ones with the archive's defaults. `at` itself is left as it is.
      for (let i = 1; i < parts.length; i++) {
        const dir = parts.slice(0, i).join('/');
        if (dirs.has(dir)) continue;
        dirs.add(dir);
        pack.entry({ name: dir, type: 'directory', mode: owner.uid === 0 ? 0o755 : 0o700, mtime: new Date(dirTimes.get(dir)!), ...owner });
      }
      pack.entry({ name: parts.join('/'), mode: file.mode, mtime: new Date(file.mtime ?? now), ...owner }, file.content);
    }
    pack.finalize();
    await this.container.putArchive(pack as unknown as NodeJS.ReadableStream, { path: at });
  }

  async kill(): Promise<void> {
    await tolerateGone(this.container.kill({ signal: 'SIGKILL' }));
  }

  async remove(): Promise<void> {
    await removeFully(this.container);
  }
}

/** A run as two containers: the monitor owns the network namespace, the sandbox joins it. */
class DockerRun implements SandboxRun {
  constructor(
    readonly id: string,
    private readonly monitor: DockerContainer,
    private readonly sandbox: DockerContainer,
  ) {}

  putFiles(files: SeedFile[], at?: string): Promise<void> {
    return this.sandbox.putFiles(files, at);
  }

  startSandbox(): Promise<void> {
    return this.sandbox.start();
  }

  /**
   * The sandbox's exit code. The monitor is the run's network and its witness: when it stops first
   * (killed from outside the run), the sandbox is stopped at once, so the run ends now rather than
   * at its timeout, and `state()` then shows the monitor dead.
   */
  async waitSandbox(signal?: AbortSignal): Promise<number> {
    const done = new AbortController();
    const monitorEnded = this.monitor.wait(done.signal).then(
      () => this.sandbox.kill(),
      () => undefined,
    );
    try {
      return await this.sandbox.wait(signal);
    } finally {
      done.abort();
      await monitorEnded.catch(() => undefined);
    }
  }

  killSandbox(): Promise<void> {
    return this.sandbox.kill();
  }

  sandboxOutput(tail?: number): Promise<string> {
    return this.sandbox.output(tail);
  }

  readArchive(path: string): Promise<Readable> {
    return this.sandbox.getArchive(path);
  }

  async state(): Promise<{ monitorRunning: boolean; sandbox: ContainerState }> {
    const [monitor, sandbox] = await Promise.all([this.monitor.inspect(), this.sandbox.inspect()]);
    return { monitorRunning: monitor.running, sandbox };
  }

  readonly diff = (): Promise<FsChange[]> => this.sandbox.changes();

  readonly writableBytes = (): Promise<number> => this.sandbox.writableBytes();

  async remove(): Promise<void> {
    // Sandbox first: it lives in the monitor's namespace. Both are tried whatever the first did.
    const problems: unknown[] = [];
    for (const container of [this.sandbox, this.monitor]) await container.remove().catch((error: unknown) => problems.push(error));
    if (problems.length > 0) throw problems[0];
  }
}

/**
 * The most of the sandbox's output a run keeps: its end, where pip prints the error that matters
 * (the report keeps the last 4,096 characters of it). A package printing one 50 MB line must not
 * have that line copied into every string built from it.
 */
export const OUTPUT_MAX_BYTES = 64 * 1024;

/** Logs of a non-TTY container come framed: 8-byte header (stream, 0,0,0, size BE) then payload. */
function payloads(buffer: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return parts;
}

/**
 * The framed logs' text, or when it is longer than `maxBytes` its last `maxBytes` bytes, from the
 * first line that starts in them (a line cut in the middle is dropped) or, when no line starts
 * there (one huge line), from the first whole UTF-8 character.
 */
export function demuxTail(buffer: Buffer, maxBytes: number): string {
  const parts = payloads(buffer);
  const kept: Buffer[] = [];
  let size = 0;
  for (let i = parts.length - 1; i >= 0 && size < maxBytes; i--) {
    const part = parts[i]!;
    const take = part.subarray(Math.max(0, part.length - (maxBytes - size)));
    kept.unshift(take);
    size += take.length;
  }
  const tail = Buffer.concat(kept, size);
  if (size === parts.reduce((sum, part) => sum + part.length, 0)) return tail.toString('utf8');
  const newline = tail.indexOf(0x0a);
  let start = newline !== -1 && newline < tail.length - 1 ? newline + 1 : 0;
  // UTF-8 continuation bytes are 10xxxxxx: skip the rest of a character cut in half.
  if (start === 0) while (start < Math.min(3, tail.length) && (tail[start]! & 0xc0) === 0x80) start++;
  return tail.subarray(start).toString('utf8');
}

function engineUnreachable(cause: unknown): EnvironmentError {
  return new EnvironmentError('engine.unreachable', 'no container engine answers', {
    cause,
    hint: `start Docker (or Podman's Docker socket) and check DOCKER_HOST; on Debian as root, scripts/ensure-engine.sh installs docker.io and starts dockerd`,
  });
}

export class DockerClient implements ContainerClient {
  private readonly docker: Docker;
  /** Which engine answers, asked once: how a seccomp profile is handed over depends on it. */
  private engine: Promise<'docker' | 'podman'> | undefined;
  /** Profiles read, by path: the same file for every run of this process. */
  private readonly profiles = new Map<string, Promise<string>>();

  constructor(options: Docker.DockerOptions = {}) {
    this.docker = new Docker(options);
  }

  async ping(): Promise<void> {
    try {
      await this.docker.ping();
    } catch (error: unknown) {
      throw engineUnreachable(error);
    }
  }

  async version(signal?: AbortSignal): Promise<EngineVersion> {
    let answer: Docker.DockerVersion;
    try {
      // dockerode takes `abortSignal` here (its types do not say so): an aborted request is destroyed.
      const version = this.docker.version.bind(this.docker) as unknown as (opts: { abortSignal?: AbortSignal }) => Promise<Docker.DockerVersion>;
      answer = await version({ abortSignal: signal });
    } catch (error: unknown) {
      throw engineUnreachable(error);
    }
    // Podman's Docker-compatible API names itself among the components; Docker's says `Engine`.
    const podman = (answer.Components ?? []).some((c) => /podman/i.test(c.Name));
    return { engine: `${podman ? 'Podman' : 'Docker'} ${answer.Version}`, api: answer.ApiVersion };
  }

  async imageExists(ref: string): Promise<boolean> {
    try {
      await this.docker.getImage(ref).inspect();
      return true;
    } catch (error: unknown) {
      if (statusOf(error) === 404) return false;
      throw error;
    }
  }

  async inspectImage(ref: string): Promise<ImageInfo | null> {
    try {
      const info = await this.docker.getImage(ref).inspect();
      return { created: info.Created, labels: info.Config?.Labels ?? {}, sizeBytes: info.Size };
    } catch (error: unknown) {
      if (statusOf(error) === 404) return null;
      throw error;
    }
  }

  async pullImage(ref: string, onProgress: BuildProgress): Promise<void> {
    const stream = (await this.docker.pull(ref)) as NodeJS.ReadableStream;
    await followProgress(this.docker, stream, onProgress);
  }

  async buildImage(contextDir: string, tag: string, buildArgs: Record<string, string>, onProgress: BuildProgress): Promise<void> {
    const context = tar.pack(contextDir);
    const stream = (await this.docker.buildImage(context as unknown as NodeJS.ReadableStream, {
      t: tag,
      buildargs: buildArgs,
      rm: true,
      forcerm: true,
    })) as NodeJS.ReadableStream;
    await followProgress(this.docker, stream, onProgress);
  }

  async probeImage(image: string, cmd: string[], labels: Record<string, string>, maxBytes: number): Promise<string> {
    const name = `sandbox-install-probe-${randomUUID().slice(0, 8)}`;
    const container = await this.create({
      name,
      image,
      cmd,
      labels,
      networkMode: 'none',
      capDrop: ['ALL'],
      securityOpt: ['no-new-privileges'],
      user: 'nobody',
    });
    try {
      await container.start();
      const exitCode = await container.wait();
      const buffer = (await this.docker.getContainer(container.id).logs({ stdout: true, stderr: false, follow: false })) as unknown as Buffer;
      const output = demuxTail(buffer, maxBytes);
      if (exitCode !== 0) throw new InstallError('engine.probe-failed', `${cmd.join(' ')} exited with ${exitCode} in ${image}`);
      return output;
    } finally {
      await container.remove().catch(() => undefined);
    }
  }

  async importImage(rootfs: Readable, tag: string, changes: string[], onProgress: BuildProgress): Promise<void> {
    const [repo, version] = tag.split(':');
    const stream = (await this.docker.importImage(rootfs as unknown as NodeJS.ReadableStream, {
      repo,
      tag: version ?? 'latest',
      changes,
    })) as NodeJS.ReadableStream;
    await followProgress(this.docker, stream, onProgress);
  }

  /** The part's SecurityOpt, with its seccomp profile in the form this engine reads. */
  private async securityOpt(spec: ContainerSpec): Promise<string[]> {
    if (spec.seccompProfile === undefined) return spec.securityOpt;
    const file = spec.seccompProfile;
    let read = this.profiles.get(file);
    if (read === undefined) {
      read = readFile(file, 'utf8').then((raw) => JSON.stringify(JSON.parse(raw)));
      this.profiles.set(file, read);
    }
    let profile: string;
    try {
      profile = await read;
    } catch (error: unknown) {
      this.profiles.delete(file);
      throw new EnvironmentError('image.seccomp-profile', `cannot read the seccomp profile ${file}`, {
        cause: error,
        hint: 'reinstall sandbox-install: images/seccomp/sandbox.json is part of it',
      });
    }
    this.engine ??= this.version().then((v) => (v.engine.startsWith('Podman') ? 'podman' : 'docker'));
    try {
      return [...spec.securityOpt, seccompOption(await this.engine, file, profile)];
    } catch (error: unknown) {
      this.engine = undefined;
      throw new InstallError('engine.create-failed', `could not create container ${spec.name}`, { cause: error });
    }
  }

  /** One container. Runs are made with startRun; this stays public for `gc`'s tests. */
  async create(spec: ContainerSpec): Promise<DockerContainer> {
    const securityOpt = await this.securityOpt(spec);
    try {
      const container = await this.docker.createContainer({
        name: spec.name,
        Image: spec.image,
        Hostname: spec.hostname,
        Cmd: spec.cmd,
        User: spec.user,
        Env: spec.env ?? [],
        WorkingDir: spec.workingDir,
        Labels: spec.labels,
        AttachStdout: true,
        AttachStderr: true,
        HostConfig: {
          NetworkMode: spec.networkMode,
          CapDrop: spec.capDrop,
          CapAdd: spec.capAdd,
          SecurityOpt: securityOpt,
          Sysctls: spec.sysctls,
          Binds: spec.binds,
          Tmpfs: spec.tmpfs,
          ReadonlyRootfs: spec.readonlyRootfs ?? false,
          PidsLimit: spec.pidsLimit,
          Memory: spec.memoryBytes,
          MemorySwap: spec.memoryBytes,
          NanoCpus: spec.nanoCpus,
          Ulimits: Object.entries(spec.ulimits ?? {}).map(([Name, value]) => ({ Name, Soft: value, Hard: value })),
          Dns: spec.dns?.servers,
          DnsOptions: spec.dns?.options,
          Init: false,
          AutoRemove: false,
          // A package's output must not fill the host's disk through the engine's log files: 16 MiB
          // in all. Two files, not one: a single file is emptied when it rotates, and a run whose pip
          // printed a flood just before its error then had none of its last lines to report.
          LogConfig: { Type: 'json-file', Config: { 'max-size': '8m', 'max-file': '2' } },
        },
      });
      return new DockerContainer(this.docker, container, spec.name);
    } catch (error: unknown) {
      throw new InstallError('engine.create-failed', `could not create container ${spec.name}`, { cause: error });
    }
  }

  async startRun(spec: RunSpec, listener: MonitorListener): Promise<SandboxRun> {
    const base = `sandbox-install-${spec.id.slice(0, 8)}`;
    const made: DockerContainer[] = [];
    try {
      const monitor = await this.create({
        ...spec.monitor,
        name: `${base}-monitor`,
        image: spec.image,
        labels: { ...spec.labels, [LABEL.role]: 'monitor' },
        networkMode: 'none',
        binds: [`${spec.proxySocketDir.host}:${spec.proxySocketDir.at}:ro`],
        // The engine writes this resolv.conf, and the sandbox, joining this network namespace, gets
        // the same file: no host path of ours shows in its mount table.
        dns: spec.dns,
        // Docker gives the sandbox (network mode `container:<monitor>`) this host name too, and
        // writes it into the /etc/hostname and /etc/hosts both see.
        hostname: spec.hostname,
      });
      made.push(monitor);
      await monitor.follow(listener.onLine, listener.onStderr);
      // The sandbox joins the monitor's network namespace when it starts, not when it is made: it
      // is made while the monitor starts (the engine's start is the slow step, ~0.3 s here).
      const [started, created] = await Promise.allSettled([
        monitor.start(),
        this.create({
          ...spec.sandbox,
          name: `${base}-sandbox`,
          image: spec.image,
          labels: { ...spec.labels, [LABEL.role]: 'sandbox' },
          networkMode: `container:${monitor.id}`,
        }),
      ]);
      if (created.status === 'fulfilled') made.push(created.value);
      if (started.status === 'rejected') throw started.reason;
      if (created.status === 'rejected') throw created.reason;
      return new DockerRun(spec.id, monitor, created.value);
    } catch (error: unknown) {
      for (const container of made.reverse()) await container.remove().catch(() => undefined);
      throw error;
    }
  }

  async listOurs(): Promise<LeftoverContainer[]> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [LABEL.tool] } });
    return containers.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? c.Id).replace(/^\//, ''),
      state: c.State,
      labels: c.Labels,
    }));
  }

  async removeContainer(id: string): Promise<void> {
    await removeFully(this.docker.getContainer(id));
  }
}
