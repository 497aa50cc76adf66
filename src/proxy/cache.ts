import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SHA256_HEX } from './names.js';

export type IngestResult = { ok: true; size: number } | { ok: false; actualSha256: string; size: number };

/**
 * A content-addressed file cache: `<dir>/sha256/<hex>`, each file written once, read-only, and
 * only after its bytes hashed to its name. Downloads land in `<dir>/tmp/` (same file system, so
 * the final rename is atomic) and are deleted on any failure.
 */
export class ContentCache {
  readonly objectsDir: string;
  readonly tmpDir: string;

  constructor(readonly dir: string) {
    this.objectsDir = path.join(dir, 'sha256');
    this.tmpDir = path.join(dir, 'tmp');
  }

  async init(): Promise<void> {
    await mkdir(this.objectsDir, { recursive: true, mode: 0o755 });
    await mkdir(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  pathFor(sha256: string): string {
    // The one guard against path traversal: nothing but 64 lowercase hex digits becomes a path.
    if (!SHA256_HEX.test(sha256)) throw new Error('not a sha256 hex digest');
    return path.join(this.objectsDir, sha256);
  }

  /** Open a cached file for reading, or null when it is not cached. */
  async open(sha256: string): Promise<{ handle: FileHandle; size: number } | null> {
    let handle: FileHandle;
    try {
      handle = await open(this.pathFor(sha256), 'r');
    } catch (error: unknown) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw error;
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new Error(`cache entry ${sha256} is not a regular file`);
      return { handle, size: st.size };
    } catch (error: unknown) {
      await handle.close();
      throw error;
    }
  }

  /**
   * Stream `source` into the cache while hashing it, in constant memory. The entry appears only
   * if the digest equals `sha256`; otherwise nothing is kept and the actual digest is returned.
   * `idleTimeoutMs` bounds the wait for each chunk; `maxBytes` bounds the total.
   */
  async ingest(sha256: string, source: Readable, opts: { maxBytes: number; idleTimeoutMs: number; signal?: AbortSignal }): Promise<IngestResult> {
    const target = this.pathFor(sha256);
    const tmp = path.join(this.tmpDir, `${sha256}.${randomUUID()}`);
    const hash = createHash('sha256');
    let size = 0;
    const idle = setTimeout(() => source.destroy(new Error(`upstream sent nothing for ${opts.idleTimeoutMs} ms`)), opts.idleTimeoutMs);
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            idle.refresh();
            size += chunk.length;
            if (size > opts.maxBytes) throw new Error(`download exceeds ${opts.maxBytes} bytes`);
            hash.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(tmp, { flags: 'wx', mode: 0o600 }),
        opts.signal ? { signal: opts.signal } : {},
      );
      const actual = hash.digest('hex');
      if (actual !== sha256) {
        await rm(tmp, { force: true });
        return { ok: false, actualSha256: actual, size };
      }
      await chmod(tmp, 0o444);
      await rename(tmp, target);
      return { ok: true, size };
    } catch (error: unknown) {
      await rm(tmp, { force: true });
      throw error;
    } finally {
      clearTimeout(idle);
    }
  }
}
