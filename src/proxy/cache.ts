import { createHash, randomUUID } from 'node:crypto';
import { constants, type BigIntStats } from 'node:fs';
import { chmod, link, lstat, mkdir, open, rename, rm, stat, statfs, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { EnvironmentError } from '../errors.js';
import { SHA256_HEX } from './names.js';
import { UpstreamTimeout, UpstreamTooLarge } from './upstream-faults.js';

export type IngestResult = { ok: true; size: number } | { ok: false; actualSha256: string; size: number };

/** A verified cache entry, open for reading. The caller closes `handle`. */
export interface CachedFile {
  handle: FileHandle;
  size: number;
}

export interface CacheOptions {
  logger: Logger;
  /** Bytes free to us on the file system holding `dir`. Defaults to statfs; a seam for tests. */
  freeBytes?: (dir: string) => Promise<number>;
}

/**
 * Kept free on the cache's file system after a download: between `doctor`'s fail (200 MB) and
 * warn (2 GB) lines, room for the report, pip's own temp files and a container's writes when
 * they share the disk.
 */
export const FREE_SPACE_MARGIN_BYTES = 512 * 1024 ** 2;

/** Read size when re-hashing an entry: large enough to run at disk speed, small enough to not matter. */
const HASH_CHUNK_BYTES = 1024 * 1024;

/** How often a placement retries after removing a bad entry that blocked it. */
const PLACE_ATTEMPTS = 3;

/** open(2) errors that mean the entry is something we must not read (a symlink, a socket, not ours). */
const UNREADABLE_ENTRY = new Set(['ELOOP', 'EACCES', 'EPERM', 'ENXIO', 'ENODEV', 'EOPNOTSUPP']);

/** link(2) errors of a file system without hard links; placement falls back to rename there. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'EMLINK']);

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException | null)?.code;
const mib = (bytes: number): string => `${Math.ceil(bytes / 1024 ** 2)} MiB`;

/**
 * A content-addressed file cache: `<dir>/sha256/<hex>`, each file written once, read-only, and
 * only after its bytes hashed to its name. Nothing in the directory is trusted between runs:
 * another process (or another local user, when the directory was writable) may have planted a
 * symlink, a FIFO or other bytes under a digest's name. So every entry is opened without
 * following links and without blocking, must be a regular file of ours that nobody else can
 * write, and is hashed again on its first use by this cache object (one run); an entry that fails
 * is logged, deleted and fetched again, never served.
 *
 * Downloads land in `<dir>/tmp/` (same file system), are fsynced, and are hard-linked into place:
 * link(2) fails when the name exists, so when two runs fetch the same file at once the first
 * writer's entry stays and the second one's copy is dropped.
 */
export class ContentCache {
  readonly objectsDir: string;
  readonly tmpDir: string;
  private readonly log: Logger;
  private readonly freeBytes: (dir: string) => Promise<number>;
  /** Not available on Windows, which this tool does not support; -1 then matches no owner. */
  private readonly uid = process.getuid?.() ?? -1;
  /** sha256 → identity (device, inode, size, times) of the entry whose bytes were hashed in this run. */
  private readonly verified = new Map<string, string>();
  /** Hashing under way, by sha256 and identity, so concurrent first requests read the file once. */
  private readonly hashing = new Map<string, Promise<boolean>>();
  /** Bytes promised to downloads under way, so parallel downloads do not all count the same free space. */
  private reserved = 0;

  constructor(
    readonly dir: string,
    opts: CacheOptions,
  ) {
    this.objectsDir = path.join(dir, 'sha256');
    this.tmpDir = path.join(dir, 'tmp');
    this.log = opts.logger;
    this.freeBytes = opts.freeBytes ?? freeBytesOn;
  }

  /**
   * Create the directories, or check the ones that exist: each must be ours; one that other users
   * can write to is made 0700 (they could plant entries in it). Throws an EnvironmentError for a
   * directory that belongs to someone else or is not a directory.
   */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // The root may be a symlink the user made (a cache on another disk); what it points to is checked.
    await this.guardDir(this.dir, await stat(this.dir, { bigint: true }));
    for (const sub of [this.objectsDir, this.tmpDir]) {
      await mkdir(sub, { mode: 0o700 }).catch((error: unknown) => {
        if (errno(error) !== 'EEXIST') throw error;
      });
      await this.guardDir(sub, await lstat(sub, { bigint: true }));
    }
  }

  private async guardDir(dir: string, st: BigIntStats): Promise<void> {
    if (!st.isDirectory()) {
      throw new EnvironmentError('proxy-cache', `the proxy cache path ${dir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}`, {
        hint: `remove ${dir}; the cache is filled again from upstream`,
      });
    }
    if (Number(st.uid) !== this.uid) {
      throw new EnvironmentError('proxy-cache-owner', `the proxy cache directory ${dir} belongs to uid ${st.uid}, not to this user (uid ${this.uid})`, {
        hint: 'its owner could plant files in it: point --cache-dir at a directory of your own',
      });
    }
    const mode = Number(st.mode) & 0o7777;
    if ((mode & 0o022) !== 0) {
      await chmod(dir, 0o700);
      this.log.warn({ dir, mode: mode.toString(8) }, 'the proxy cache directory was writable by other users; made it 0700');
    }
  }

  pathFor(sha256: string): string {
    // The one guard against path traversal: nothing but 64 lowercase hex digits becomes a path.
    if (!SHA256_HEX.test(sha256)) throw new Error('not a sha256 hex digest');
    return path.join(this.objectsDir, sha256);
  }

  /**
   * Open a verified entry for reading, or null when there is none. A bad entry (a symlink, a FIFO,
   * a directory, someone else's file, one others can write, or bytes that do not hash to the name)
   * is logged and deleted, and null returned so the caller fetches it again.
   */
  async open(sha256: string): Promise<CachedFile | null> {
    const file = this.pathFor(sha256);
    let handle: FileHandle;
    try {
      // O_NOFOLLOW: a symlink fails with ELOOP. O_NONBLOCK: a FIFO opens at once instead of
      // waiting for a writer (fstat then rejects it); it changes nothing for a regular file.
      handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (error: unknown) {
      const code = errno(error);
      if (code === 'ENOENT') return null;
      if (code !== undefined && UNREADABLE_ENTRY.has(code)) {
        await this.discard(sha256, code === 'ELOOP' ? 'a symbolic link' : `cannot be opened (${code})`, null);
        return null;
      }
      throw error;
    }
    try {
      const st = await handle.stat({ bigint: true });
      const problem = this.entryProblem(st) ?? ((await this.check(sha256, handle, st)) ? null : 'its bytes do not hash to its name');
      if (problem === null) return { handle, size: Number(st.size) };
      await handle.close();
      await this.discard(sha256, problem, st);
      return null;
    } catch (error: unknown) {
      await handle.close().catch(() => {});
      throw error;
    }
  }

  private entryProblem(st: BigIntStats): string | null {
    if (!st.isFile()) return st.isFIFO() ? 'a FIFO' : st.isDirectory() ? 'a directory' : 'not a regular file';
    if (Number(st.uid) !== this.uid) return `owned by uid ${st.uid}`;
    if ((Number(st.mode) & 0o022) !== 0) return `writable by other users (mode ${(Number(st.mode) & 0o7777).toString(8)})`;
    return null;
  }

  /** True when the open entry hashes to `sha256`; hashed once per identity in this run. */
  private async check(sha256: string, handle: FileHandle, st: BigIntStats): Promise<boolean> {
    const id = identity(st);
    if (this.verified.get(sha256) === id) return true;
    const key = `${sha256} ${id}`;
    let pending = this.hashing.get(key);
    if (!pending) {
      pending = hashHandle(handle, Number(st.size))
        .then((digest) => digest === sha256)
        .finally(() => this.hashing.delete(key));
      this.hashing.set(key, pending);
    }
    const ok = await pending;
    if (ok) this.verified.set(sha256, id);
    return ok;
  }

  /**
   * Remove a bad entry. `seen` is what was judged (null when it could not be opened): the entry is
   * left alone if it has been replaced since (another run placed a good one).
   */
  private async discard(sha256: string, reason: string, seen: BigIntStats | null): Promise<void> {
    const file = this.pathFor(sha256);
    this.verified.delete(sha256);
    this.log.warn({ sha256, entry: file, reason }, 'removing a bad proxy cache entry; it is fetched again from upstream');
    try {
      const now = await lstat(file, { bigint: true });
      if (seen !== null && (now.dev !== seen.dev || now.ino !== seen.ino)) return;
      await rm(file, { recursive: now.isDirectory(), force: true });
    } catch (error: unknown) {
      if (errno(error) === 'ENOENT') return;
      throw new EnvironmentError('proxy-cache', `cannot remove the bad proxy cache entry ${file} (${reason})`, {
        cause: error,
        hint: `remove ${file} by hand`,
      });
    }
  }

  /**
   * Refuse a download the cache's file system has no room for: less free than `bytes` (when the
   * upstream declared a size) plus FREE_SPACE_MARGIN_BYTES, counting downloads already under way.
   */
  async ensureRoom(bytes: number | null): Promise<void> {
    const free = (await this.freeBytes(this.tmpDir)) - this.reserved;
    const need = (bytes ?? 0) + FREE_SPACE_MARGIN_BYTES;
    if (free >= need) return;
    const what = bytes === null ? 'a file of unknown size' : `a ${mib(bytes)} file`;
    throw new EnvironmentError(
      'proxy-cache-full',
      `not enough free space for the proxy cache in ${this.dir}: ${mib(Math.max(free, 0))} free, downloading ${what} needs ${mib(need)} (${mib(FREE_SPACE_MARGIN_BYTES)} is kept free)`,
      { hint: 'free space on that disk, or point --cache-dir at a disk with room' },
    );
  }

  /**
   * Stream `source` into the cache while hashing it, in constant memory. The entry appears only
   * if the digest equals `sha256`; otherwise nothing is kept and the actual digest is returned.
   * `idleTimeoutMs` bounds the wait for each chunk; `maxBytes` bounds the total; `declaredBytes`
   * (the upstream's Content-Length, when it sent one) is checked against the free space first.
   */
  async ingest(
    sha256: string,
    source: Readable,
    opts: { maxBytes: number; idleTimeoutMs: number; signal?: AbortSignal; declaredBytes?: number | null },
  ): Promise<IngestResult> {
    const target = this.pathFor(sha256);
    const tmp = path.join(this.tmpDir, `${sha256}.${randomUUID()}`);
    const hash = createHash('sha256');
    const declared = opts.declaredBytes ?? null;
    let size = 0;
    let reserved = 0;
    let handle: FileHandle | null = null;
    const idle = setTimeout(
      () => source.destroy(new UpstreamTimeout(`upstream sent nothing for ${opts.idleTimeoutMs} ms`, `timeout: no data for ${opts.idleTimeoutMs} ms`)),
      opts.idleTimeoutMs,
    );
    // Until pipeline() listens, an error of the source (a reset connection) would be uncaught;
    // pipeline still sees it, as the stream's errored state.
    const early = (): void => {};
    source.on('error', early);
    try {
      await this.ensureRoom(declared);
      reserved = declared ?? 0;
      this.reserved += reserved;
      // 'wx' is O_CREAT|O_EXCL: never follows or reuses whatever sits at the name.
      const out = await open(tmp, 'wx', 0o600);
      handle = out;
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            idle.refresh();
            size += chunk.length;
            if (size > opts.maxBytes) throw new UpstreamTooLarge(`download exceeds ${opts.maxBytes} bytes`, `larger than ${opts.maxBytes} bytes`);
            hash.update(chunk);
            yield chunk;
          }
        },
        async (chunks: AsyncIterable<Buffer>) => {
          for await (const chunk of chunks) await writeAll(out, chunk);
        },
        opts.signal ? { signal: opts.signal } : {},
      );
      const actual = hash.digest('hex');
      if (actual !== sha256) return { ok: false, actualSha256: actual, size };
      await out.chmod(0o444);
      await out.sync();
      await this.place(sha256, tmp, target, out);
      return { ok: true, size };
    } catch (error: unknown) {
      source.destroy();
      throw error;
    } finally {
      clearTimeout(idle);
      source.off('error', early);
      this.reserved -= reserved;
      await handle?.close();
      await rm(tmp, { force: true });
    }
  }

  /**
   * Put the finished temp file at `target`. The first writer wins: when an entry is there already
   * it is checked (and removed when bad, then the link is tried again); a good one is kept and
   * this copy dropped. The entry written here is recorded as verified for this run.
   */
  private async place(sha256: string, tmp: string, target: string, handle: FileHandle): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await link(tmp, target);
      } catch (error: unknown) {
        const code = errno(error);
        if (code === 'EEXIST') {
          const existing = await this.open(sha256);
          if (existing) {
            await existing.handle.close();
            return;
          }
          if (attempt >= PLACE_ATTEMPTS) throw new Error(`cannot place ${sha256} in the cache: the entry keeps being replaced`, { cause: error });
          continue;
        }
        if (code === undefined || !NO_HARD_LINKS.has(code)) throw error;
        // A file system without hard links: rename is still atomic, but the last writer wins.
        await rename(tmp, target);
      }
      await rm(tmp, { force: true });
      await syncDir(this.objectsDir);
      // After the link and unlink, which change the inode's ctime.
      this.verified.set(sha256, identity(await handle.stat({ bigint: true })));
      return;
    }
  }
}

async function freeBytesOn(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return fs.bavail * fs.bsize;
}

/** What makes an entry the same file with the same bytes as when it was hashed. */
function identity(st: BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** The sha256 of an open file's `size` bytes from offset 0, or null when it holds a different number of bytes. */
async function hashHandle(handle: FileHandle, size: number): Promise<string | null> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(HASH_CHUNK_BYTES);
  let position = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    position += bytesRead;
    if (position > size) return null;
  }
  return position === size ? hash.digest('hex') : null;
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await handle.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

/** fsync a directory so a new name in it survives a crash. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
