/**
 * The export manifest: every regular file under the exported site-packages, its sha256 and size,
 * and the distribution whose RECORD claims it. Symlinks are not followed and not listed; anything
 * that is neither a file nor a directory is skipped (extraction refuses those anyway).
 *
 * Ownership comes from `*.dist-info/RECORD` files at the top of site-packages. The first claim
 * wins, taking dist-info directories in name order, so the result is deterministic even when
 * two RECORDs claim one path. RECORD rows that point outside site-packages (`../../bin/x`) claim
 * nothing here. A RECORD over 64 MiB is ignored, so its files show as unclaimed.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { lstat, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { normalizeName } from '../lock/normalize.js';
import { parseRecord } from '../core/record.js';
import type { FileDigest } from './sync-fs.js';

export interface ManifestEntry {
  /** Posix path relative to site-packages. */
  path: string;
  /** Lowercase hex. */
  sha256: string;
  size: number;
  /** `name==version` from the owning dist-info directory (name PEP 503-normalised), or null. */
  distribution: string | null;
}

export interface Manifest {
  schemaVersion: 1;
  /** Where the tree was published. */
  root: string;
  files: ManifestEntry[];
}

const MAX_RECORD_BYTES = 64 * 1024 * 1024;
/** Refuse to open a symlink even if one appears between the walk and the read. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW;

/**
 * `written`: digests of files taken as they were written (extraction), by path; any other file
 * (the bytecode compiled after) is read back and hashed.
 */
export async function buildManifest(siteDir: string, written: ReadonlyMap<string, FileDigest> = new Map()): Promise<ManifestEntry[]> {
  const files = await listFiles(siteDir);
  const owners = await readOwners(siteDir);
  const entries = files.map((rel) => {
    const { sha256, size } = written.get(rel) ?? hashFile(path.join(siteDir, ...rel.split('/')));
    return { path: rel, sha256, size, distribution: owners.get(rel) ?? null };
  });
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** Write a manifest to `file` via a temp file and a rename, so a reader never sees half of it. */
export async function writeManifest(file: string, manifest: Manifest): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(temp, `${JSON.stringify(manifest, null, 2)}\n`);
    await rename(temp, file);
  } finally {
    await rm(temp, { force: true });
  }
}

/**
 * `Foo_Bar-1.2.dist-info` -> `foo-bar==1.2`. The wheel spec escapes `-` out of both the name
 * and the version, so the first `-` separates them. Null when the name is not a dist-info dir.
 */
export function distributionFromDistInfo(dirName: string): string | null {
  const match = /^(.+)\.dist-info$/.exec(dirName);
  if (!match?.[1]) return null;
  const stem = match[1];
  const dash = stem.indexOf('-');
  if (dash <= 0) return normalizeName(stem);
  const version = stem.slice(dash + 1);
  return version ? `${normalizeName(stem.slice(0, dash))}==${version}` : normalizeName(stem.slice(0, dash));
}

/** Regular files under `root`, as posix paths relative to it. Never follows symlinks. */
async function listFiles(root: string): Promise<string[]> {
  const files: string[] = [];
  const pending: string[] = [''];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    for (const dirent of await readdir(path.join(root, ...dir.split('/')), { withFileTypes: true })) {
      const rel = dir === '' ? dirent.name : `${dir}/${dirent.name}`;
      if (dirent.isDirectory()) pending.push(rel);
      else if (dirent.isFile()) files.push(rel);
    }
  }
  return files;
}

/** Path (relative to site-packages) -> owning distribution, from every top-level RECORD. */
async function readOwners(siteDir: string): Promise<Map<string, string>> {
  const owners = new Map<string, string>();
  const distInfos = (await readdir(siteDir, { withFileTypes: true }))
    .filter((d) => d.isDirectory() && d.name.endsWith('.dist-info'))
    .map((d) => d.name)
    .sort();
  for (const name of distInfos) {
    const distribution = distributionFromDistInfo(name);
    const text = await readRecord(path.join(siteDir, name, 'RECORD'));
    if (distribution === null || text === null) continue;
    for (const row of parseRecord(text)) {
      const rel = insideSitePackages(row.path);
      if (rel !== null && !owners.has(rel)) owners.set(rel, distribution);
    }
  }
  return owners;
}

async function readRecord(file: string): Promise<string | null> {
  const info = await lstat(file).catch(() => null);
  if (!info?.isFile() || info.size > MAX_RECORD_BYTES) return null;
  return readFile(file, { encoding: 'utf8', flag: OPEN_FLAGS });
}

/** The normalised posix form of a RECORD path, or null when it does not stay inside site-packages. */
function insideSitePackages(recordPath: string): string | null {
  if (recordPath.startsWith('/')) return null;
  const normal = path.posix.normalize(recordPath).replace(/\/+$/, '');
  if (normal === '.' || normal === '..' || normal.startsWith('../')) return null;
  return normal;
}

/**
 * Synchronous reads in 1 MiB blocks: the tree was just extracted, so it sits in the page cache,
 * and an async read per block would cost a thread-pool round trip each (see sync-fs.ts). Memory
 * stays bounded by the block size whatever the file's size.
 */
function hashFile(file: string): { sha256: string; size: number } {
  const hash = createHash('sha256');
  const block = Buffer.allocUnsafe(1024 * 1024);
  let size = 0;
  const fd = openSync(file, OPEN_FLAGS);
  try {
    for (let read = readSync(fd, block); read > 0; read = readSync(fd, block)) {
      hash.update(block.subarray(0, read));
      size += read;
    }
  } finally {
    closeSync(fd);
  }
  return { sha256: hash.digest('hex'), size };
}
