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
import { pipeline } from 'node:stream/promises';
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

export const WHEEL_LIMITS = { maxEntries: 200_000, maxBytes: 8 * 1024 ** 3 } as const;

export class WheelError extends Error {}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, autoClose: true, validateEntrySizes: true, strictFileNames: true, decodeStrings: true }, (error, zip) => {
      if (error || !zip) reject(new WheelError(`not a readable zip: ${error?.message ?? 'unknown error'}`));
      else resolve(zip);
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
export async function readWheel(file: string, sha256: string, limits = WHEEL_LIMITS): Promise<WheelContents> {
  const actual = await sha256Of(file);
  if (actual !== sha256) throw new WheelError(`the cached wheel's sha256 is ${actual}, not the locked ${sha256}`);
  const zip = await openZip(file);
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
      hashEntry(zip, entry).then((digest) => {
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
