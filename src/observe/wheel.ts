/**
 * Read a wheel the way pip installs it, for the provenance check: every file in the zip, its
 * sha256 computed from the (inflated) bytes, and where pip puts it relative to site-packages.
 * The wheel is the verified file from the proxy's cache, read on the host: its sha256 is checked
 * again while it is read, so nothing but the locked bytes is ever compared against.
 *
 * A wheel is still package-controlled content: names are validated by yauzl (no absolute paths,
 * no `..`, no backslashes), and entries and inflated bytes are capped.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { inflateRawSync } from 'node:zlib';
import yauzl from 'yauzl';

export interface WheelEntry {
  /** Path inside the zip. */
  name: string;
  sha256: string;
  size: number;
}

export interface WheelContents {
  /** The one top-level `*.dist-info` directory. */
  distInfo: string;
  /** Files only (directory entries dropped), in archive order; a repeated name keeps its last copy, as pip's extraction does. */
  files: Map<string, WheelEntry>;
}

export const WHEEL_LIMITS = {
  maxEntries: 200_000,
  maxBytes: 8 * 1024 ** 3,
  /**
   * A wheel up to this size is read into memory once: hashed, listed and inflated from the buffer,
   * each small entry in one call. Streaming every entry cost about 1 ms each (0.8 s for a wheel of
   * 800 modules); larger wheels are still streamed, so memory stays bounded.
   */
  inMemoryBytes: 64 * 1024 ** 2,
  /** An entry of a wheel in memory up to this size (inflated) is inflated in one call; a larger one is streamed. */
  inlineEntryBytes: 4 * 1024 ** 2,
} as const;

export type WheelLimits = { readonly [K in keyof typeof WHEEL_LIMITS]: number };

export class WheelError extends Error {}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

const ZIP_OPTIONS = { lazyEntries: true, autoClose: true, validateEntrySizes: true, strictFileNames: true, decodeStrings: true };

function openZip(source: string | Buffer): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    const done = (error: Error | null, zip?: yauzl.ZipFile) => {
      if (error || !zip) reject(new WheelError(`not a readable zip: ${error?.message ?? 'unknown error'}`));
      else resolve(zip);
    };
    if (typeof source === 'string') yauzl.open(source, ZIP_OPTIONS, done);
    else yauzl.fromBuffer(source, ZIP_OPTIONS, done);
  });
}

/** An entry of a wheel held in memory, inflated in one call and checked against its listed size. */
function hashInline(zip: yauzl.ZipFile, data: Buffer, entry: yauzl.Entry): Promise<string> {
  return new Promise((resolve, reject) => {
    const fail = (why: string) => reject(new WheelError(`cannot read ${entry.fileName}: ${why}`));
    if (entry.isEncrypted()) return fail('it is encrypted');
    zip.readLocalFileHeader(entry, { minimal: true }, (error, header) => {
      if (error || !header) return fail(error?.message ?? 'no local header');
      const raw = data.subarray(header.fileDataStart, header.fileDataStart + entry.compressedSize);
      let content: Buffer;
      try {
        if (entry.compressionMethod === 0) content = raw;
        else if (entry.compressionMethod === 8) content = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
        else return fail(`unsupported compression method ${entry.compressionMethod}`);
      } catch (cause: unknown) {
        return fail(`it does not inflate to its listed ${entry.uncompressedSize} bytes (${cause instanceof Error ? cause.message : String(cause)})`);
      }
      if (content.length !== entry.uncompressedSize) return fail(`it inflates to ${content.length} bytes, not its listed ${entry.uncompressedSize}`);
      resolve(createHash('sha256').update(content).digest('hex'));
    });
  });
}

function hashEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<string> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (error, stream) => {
      if (error || !stream) {
        reject(new WheelError(`cannot read ${entry.fileName}: ${error?.message ?? 'unknown error'}`));
        return;
      }
      const hash = createHash('sha256');
      pipeline(stream, hash).then(
        () => resolve(hash.digest('hex')),
        (cause: unknown) => reject(new WheelError(`cannot inflate ${entry.fileName}: ${cause instanceof Error ? cause.message : String(cause)}`)),
      );
    });
  });
}

/** Every file of the wheel at `file`, whose sha256 must be `sha256`. Rejects with WheelError. */
export async function readWheel(file: string, sha256: string, limits: WheelLimits = WHEEL_LIMITS): Promise<WheelContents> {
  const data = (await stat(file)).size <= limits.inMemoryBytes ? await readFile(file) : null;
  const actual = data ? createHash('sha256').update(data).digest('hex') : await sha256Of(file);
  if (actual !== sha256) throw new WheelError(`the cached wheel's sha256 is ${actual}, not the locked ${sha256}`);
  const zip = await openZip(data ?? file);
  const files = new Map<string, WheelEntry>();
  let count = 0;
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    const fail = (error: unknown) => {
      zip.close();
      reject(error instanceof Error ? error : new WheelError(String(error)));
    };
    zip.on('error', fail);
    zip.on('end', () => resolve());
    zip.on('entry', (entry: yauzl.Entry) => {
      count += 1;
      bytes += entry.uncompressedSize;
      if (count > limits.maxEntries || bytes > limits.maxBytes) {
        fail(new WheelError(`the wheel is larger than the check allows (${limits.maxEntries} entries, ${limits.maxBytes} bytes)`));
        return;
      }
      if (entry.fileName.endsWith('/')) {
        zip.readEntry();
        return;
      }
      (data && entry.uncompressedSize <= limits.inlineEntryBytes ? hashInline(zip, data, entry) : hashEntry(zip, entry)).then((digest) => {
        files.delete(entry.fileName);
        files.set(entry.fileName, { name: entry.fileName, sha256: digest, size: entry.uncompressedSize });
        zip.readEntry();
      }, fail);
    });
    zip.readEntry();
  });

  const distInfos = new Set([...files.keys()].map((name) => name.split('/')[0] ?? '').filter((top) => top.endsWith('.dist-info')));
  if (distInfos.size !== 1) throw new WheelError(`the wheel has ${distInfos.size} top-level .dist-info directories, not one`);
  return { distInfo: [...distInfos][0]!, files };
}

/**
 * Where pip installs a wheel file, relative to site-packages, or null when it goes elsewhere
 * (`.data/scripts`, `headers`, `data`: outside site-packages, never exported). Root files and
 * `.data/purelib` and `.data/platlib` land in site-packages (one directory in a venv).
 */
export function sitePackagesPath(name: string, distInfo: string): string | null {
  const dataDir = `${distInfo.slice(0, -'.dist-info'.length)}.data/`;
  if (!name.startsWith(dataDir)) return name;
  const rest = name.slice(dataDir.length);
  for (const scheme of ['purelib/', 'platlib/']) if (rest.startsWith(scheme)) return rest.slice(scheme.length) || null;
  return null;
}
