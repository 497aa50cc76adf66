import { constants, type Stats } from 'node:fs';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/**
 * Reading pages and files from a `file://` upstream. A mirror is a directory someone else filled,
 * as hostile as any HTTP index, and its pages can name any path on the host:
 *
 * - **Root.** Every read stays under the upstream's root (`fileUpstreamRoot`): a page linking
 *   `../../../../etc/hostname` or `file:///proc/self/environ` would otherwise put a host file's
 *   sha256 (or the file) into the report and the cache, confirming guesses of short secrets.
 * - **Symlinks.** Mirrors link files (pip2pi links `simple/<project>/<file>` to `../../<file>`), so
 *   a symlink is followed when its target stays under the root: the path is resolved with
 *   `realpath` and checked against the root's own `realpath` (a mirror directory that is itself a
 *   symlink works), then the resolved path is opened with `O_NOFOLLOW`. A mirror whose `simple/`
 *   or `files/` directory links somewhere outside its root is refused: point the index URL at the
 *   real directory instead.
 * - **FIFOs, sockets, devices.** Opened with `O_NONBLOCK` and checked with `fstat` before any read:
 *   a plain `open(2)` of a FIFO waits for a writer on a libuv thread forever, and nothing (not the
 *   proxy's close(), not SIGINT) gets it back. Only regular files are read, from that same handle.
 *
 * Not covered: someone rewriting the mirror while the proxy reads it (a directory swapped for a
 * symlink between `realpath` and `open`); that is a live writer on the host, not a hostile mirror.
 */

/** A file: page or file the proxy will not read. The message names it, never its contents. */
export class FileSourceRefused extends Error {
  override readonly name = 'FileSourceRefused';
}

/**
 * The directory a `file://` upstream may read under: the parent of an index directory named
 * `simple` (`<mirror>/simple/<project>/index.html` linking `../../files/<name>`: this machine's
 * /opt/pypi, bandersnatch's `web/simple` beside `web/packages`, pip2pi), otherwise the index
 * directory itself. Never widened to `/`.
 */
export function fileUpstreamRoot(indexDir: string): string {
  const dir = path.resolve(indexDir);
  const parent = path.dirname(dir);
  return path.basename(dir) === 'simple' && path.dirname(parent) !== parent ? parent : dir;
}

/** Whether `file` is `root` or below it, comparing whole path segments. Both absolute. */
export function isWithin(file: string, root: string): boolean {
  const rel = path.relative(root, path.resolve(file));
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

export type FileSource = { kind: 'file'; handle: FileHandle; size: number } | { kind: 'missing' } | { kind: 'directory' };

const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function typeOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a file';
}

/**
 * Open `file` for reading if it, after symlinks, is under `root` and is a regular file. `label` (a
 * redacted URL) names it in errors. The caller closes the handle. Throws `FileSourceRefused` for
 * a path outside the root or a FIFO, socket or device; answers `missing` when nothing is there and
 * `directory` for a directory (a page URL names one).
 */
export async function openFileSource(file: string, root: string, label: string): Promise<FileSource> {
  const lexical = path.resolve(file);
  // Checked before touching the path, so a page cannot probe which host paths exist.
  if (!isWithin(lexical, root)) throw new FileSourceRefused(`${label} is outside the mirror ${root}; not read`);
  let resolved: string;
  try {
    const realRoot = await realpath(root);
    resolved = await realpath(lexical);
    if (!isWithin(resolved, realRoot)) throw new FileSourceRefused(`${label} resolves outside the mirror ${root}; not read`);
  } catch (error: unknown) {
    if (isMissing(error)) return { kind: 'missing' };
    throw error;
  }
  let handle: FileHandle;
  try {
    handle = await open(resolved, OPEN_FLAGS);
  } catch (error: unknown) {
    if (isMissing(error)) return { kind: 'missing' };
    const code = (error as NodeJS.ErrnoException).code;
    // ELOOP: it became a symlink after realpath. ENXIO: a socket, or a device with no driver.
    if (code === 'ELOOP') throw new FileSourceRefused(`${label} changed into a symlink while it was opened; not read`, { cause: error });
    if (code === 'ENXIO') throw new FileSourceRefused(`${label} is not a regular file (a socket or device); not read`, { cause: error });
    throw error;
  }
  let st: Stats;
  try {
    st = await handle.stat();
  } catch (error: unknown) {
    await handle.close();
    throw error;
  }
  if (st.isFile()) return { kind: 'file', handle, size: st.size };
  await handle.close();
  if (st.isDirectory()) return { kind: 'directory' };
  throw new FileSourceRefused(`${label} is not a regular file (${typeOf(st)}); not read`);
}

/** Read a whole file from `handle`, failing once it passes `maxBytes` (it may grow after fstat). */
export async function readBounded(handle: FileHandle, maxBytes: number, label: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const { bytesRead, buffer } = await handle.read({ buffer: Buffer.alloc(64 * 1024) });
    if (bytesRead === 0) return Buffer.concat(chunks, size);
    size += bytesRead;
    if (size > maxBytes) throw new Error(`page ${label} is larger than ${maxBytes} bytes`);
    chunks.push(buffer.subarray(0, bytesRead));
  }
}
