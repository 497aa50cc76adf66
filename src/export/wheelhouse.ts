/**
 * The wheelhouse: which files of the wheel phase may be written (a locked wheel, taken from the
 * host's verified cache, or the one wheel built from a locked sdist), the requirements.lock
 * re-hashed to exactly those files, and the staging dir beside the output that is renamed into
 * place only when the verdict is pass.
 *
 * What the wheel phase left is hostile input: its names and bytes came from a container in which
 * build code ran. Only regular files with safe names directly in the wheel dir are read, within
 * limits; a locked wheel's bytes never come from the container at all.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { finding, type Finding } from '../core/finding.js';
import type { MakeRunDir } from '../core/run-record.js';
import { buildPinsHeader, buildPinsPath, renderBuildPins, type BuildPin } from '../lock/build-pins.js';
import { renderPin } from '../lock/pin.js';
import type { LockedRequirement, LockPlan } from '../lock/types.js';
import type { LockOptions } from './lock-file.js';
import { diskFullOr, MANIFEST_NAME, publishStaged, stagingDir } from './publish.js';
import { writeManifest, type ManifestEntry } from './manifest.js';

/** One entry of the wheel dir's archive, its leading directory stripped. */
export interface WheelDirEntry {
  name: string;
  /** tar-stream's header type: 'file', 'directory', 'symlink', … */
  type: string;
  size: number;
}

export interface WheelhouseFile {
  filename: string;
  /** Normalised name of the requirement it is for. */
  requirement: string;
}

export interface WheelSelection {
  /** Locked wheels pip picked, with the verified copy to take their bytes from. */
  locked: Array<WheelhouseFile & { sha256: string; cachePath: string }>;
  /** Wheels the build phase built from a locked sdist, as read to the host (the bytes the install phase installed). */
  built: Array<WheelhouseFile & { sha256: string; file: string }>;
  /** Requirements nothing was served for: their marker is false in the sandbox. */
  skipped: LockedRequirement[];
  findings: Finding[];
}

export const isWheel = (filename: string): boolean => filename.toLowerCase().endsWith('.whl');

/**
 * A name that can only be a file directly in the staging dir. The caller's `wanted` applies the
 * proxy's stricter filename check; this one holds here whatever `wanted` says.
 */
const plainName = (name: string): boolean => name.length > 0 && name.length <= 255 && !/[/\\\0]/.test(name) && !name.startsWith('.');

/**
 * requirements.lock of the wheelhouse, in pip-compile's layout: each installed requirement with
 * one `--hash` per file of it in the wheelhouse, markers in canonical form. A requirement whose marker was
 * false in the sandbox has no file here; it stays in the file as a `# skipped:` comment, so the
 * lock never claims a file the wheelhouse does not have and a reader still sees it was locked.
 */
export function renderWheelhouseLock(input: {
  lockfile: string;
  date: Date;
  requirements: Array<{ req: LockedRequirement; sha256: string[] }>;
  skipped: LockedRequirement[];
}): string {
  const header = [
    '#',
    `# This file was written by sandbox-install wheelhouse from ${path.basename(input.lockfile)} on ${input.date.toISOString()}.`,
    '# Every hash is that of a wheel in this directory. Install offline with:',
    '#',
    '#    pip install --no-index --find-links <this dir> --require-hashes -r <this dir>/requirements.lock',
    '#',
  ];
  const body = input.requirements.map(({ req, sha256 }) => [
    `${renderPin(req)} \\`,
    ...sha256.map((hex, i, all) => `    --hash=sha256:${hex}${i < all.length - 1 ? ' \\' : ''}`),
  ]);
  const skipped = input.skipped.map((req) => `# skipped: ${renderPin(req)} (its marker is false in the sandbox: not installed, no wheel here)`);
  return `${[...header, ...body.flat(), ...skipped].join('\n')}\n`;
}

export interface WheelDirLimits {
  maxEntries: number;
  /** Bytes of entry data read. */
  maxBytes: number;
}

export const DEFAULT_WHEEL_DIR_LIMITS: WheelDirLimits = { maxEntries: 10_000, maxBytes: 8 * 1024 ** 3 };

/** The sha256 of a stream's bytes as they pass, and their count. */
function hashing(): { transform: Transform; digest: () => { sha256: string; size: number } } {
  const hash = createHash('sha256');
  let size = 0;
  const transform = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  return { transform, digest: () => ({ sha256: hash.digest('hex'), size }) };
}

/**
 * Read the wheel dir's archive (as `readArchive(<dir>)` gives it: `<dir>/` then `<dir>/<name>`):
 * list every entry, and write the regular files `wanted` names into `dest` (never over an existing
 * file), hashing them as they go. Past a limit, reading stops at once with an `export.unsafe-entry`
 * finding: the rest of a hostile archive may be endless.
 */
export async function readWheelDir(
  archive: Readable,
  dest: string,
  wanted: (name: string) => boolean,
  limits: WheelDirLimits = DEFAULT_WHEEL_DIR_LIMITS,
): Promise<{ entries: WheelDirEntry[]; written: Map<string, { sha256: string; size: number }>; findings: Finding[] }> {
  const entries: WheelDirEntry[] = [];
  const written = new Map<string, { sha256: string; size: number }>();
  const findings: Finding[] = [];
  const extract = tarStream.extract();
  let bytes = 0;
  let root: string | null = null;
  let stopped = false;
  const stop = (limit: keyof WheelDirLimits) => {
    stopped = true;
    findings.push(
      finding('export.unsafe-entry', 'high', 'the wheel dir exceeds the wheelhouse limits; reading stopped', { reason: 'limit', limit, max: limits[limit] }),
    );
    extract.destroy();
  };
  extract.on('entry', (header, stream, next) => {
    const name = header.name.replace(/\/+$/, '');
    if (root === null && header.type === 'directory' && !name.includes('/')) {
      root = name;
      stream.resume();
      stream.on('end', () => next());
      return;
    }
    const rel = root !== null && name.startsWith(`${root}/`) ? name.slice(root.length + 1) : `../${name}`;
    entries.push({ name: rel, type: header.type ?? 'file', size: header.size ?? 0 });
    if (entries.length > limits.maxEntries) return stop('maxEntries');
    stream.on('data', (chunk: unknown) => {
      bytes += (chunk as Buffer).length;
      if (bytes > limits.maxBytes) stop('maxBytes');
    });
    if (header.type !== 'file' || !plainName(rel) || !wanted(rel)) {
      stream.on('end', () => next());
      stream.on('error', next);
      stream.resume();
      return;
    }
    const { transform, digest } = hashing();
    pipeline(stream, transform, createWriteStream(path.join(dest, rel), { flags: 'wx', mode: 0o644 })).then(() => {
      written.set(rel, digest());
      next();
    }, next);
  });
  try {
    await pipeline(archive, extract);
  } catch (error: unknown) {
    if (!stopped) throw error;
  }
  return { entries, written, findings };
}

/** Copy a verified cache file, hashing it again on the way: the wheelhouse holds exactly the locked bytes. */
async function copyVerified(from: string, to: string, sha256: string): Promise<number> {
  const { transform, digest } = hashing();
  await pipeline(createReadStream(from), transform, createWriteStream(to, { flags: 'wx', mode: 0o644 }));
  const got = digest();
  if (got.sha256 !== sha256) throw new Error(`${from}: the cached copy's sha256 is ${got.sha256}, not the locked ${sha256}`);
  return got.size;
}

async function fsyncPath(file: string): Promise<void> {
  const handle = await open(file, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export const WHEELHOUSE_LOCK = 'requirements.lock';
export const WHEELHOUSE_REPORT = 'report.json';

export interface StagedWheelhouse {
  /** The temp dir beside the output. */
  dir: string;
  findings: Finding[];
  /** Every wheel staged, with what the re-hashed lock says of it. */
  files: Array<WheelhouseFile & { sha256: string; size: number; built: boolean }>;
  skipped: LockedRequirement[];
  /** Write the report into the staged dir, fsync everything, and rename into place. */
  publish(report: string): Promise<string>;
  discard(): Promise<void>;
}

export interface StageWheelhouseInput {
  output: string;
  plan: LockPlan;
  /** What goes into the wheelhouse. */
  selection: WheelSelection;
  /** The build requirements the build phase was served, written beside the lock (lock/build-pins.ts) when there are any. */
  buildPins?: BuildPin[];
  date: Date;
  /** How long publishing waits for another run holding the output's lock. */
  lock?: LockOptions;
  /** Makes the staging dir; a run passes its own, which records the dir for `gc` before it exists. */
  makeDir?: MakeRunDir;
}

/**
 * Stage the wheelhouse in a temp dir beside the output: the locked wheels from the verified cache,
 * the built wheels as the host read them from the build phase, each hashed again on the way, the
 * re-hashed requirements.lock and a manifest (which also marks the dir as ours to replace next
 * time). With findings, nothing is staged that will be kept: the caller discards it.
 */
export async function stageWheelhouse(input: StageWheelhouseInput): Promise<StagedWheelhouse> {
  const { target, dir, discard } = await stagingDir(input.output, input.makeDir);
  try {
    const { selection } = input;
    const findings = selection.findings;
    const files: StagedWheelhouse['files'] = [];
    if (findings.length === 0) {
      for (const wheel of selection.locked) {
        const size = await copyVerified(wheel.cachePath, path.join(dir, wheel.filename), wheel.sha256);
        files.push({ filename: wheel.filename, requirement: wheel.requirement, sha256: wheel.sha256, size, built: false });
      }
      for (const wheel of selection.built) {
        const size = await copyVerified(wheel.file, path.join(dir, wheel.filename), wheel.sha256);
        files.push({ filename: wheel.filename, requirement: wheel.requirement, sha256: wheel.sha256, size, built: true });
      }
      files.sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
      const requirements = input.plan.requirements
        .filter((req) => !selection.skipped.includes(req))
        .map((req) => ({ req, sha256: files.filter((file) => file.requirement === req.name).map((file) => file.sha256) }));
      await writeFileSynced(
        path.join(dir, WHEELHOUSE_LOCK),
        renderWheelhouseLock({ lockfile: input.plan.file, date: input.date, requirements, skipped: selection.skipped }),
      );
      if ((input.buildPins ?? []).length > 0) {
        const header = buildPinsHeader(WHEELHOUSE_LOCK, `wheelhouse on ${input.date.toISOString().slice(0, 10)}`);
        await writeFileSynced(path.join(dir, buildPinsPath(WHEELHOUSE_LOCK)), renderBuildPins(input.buildPins ?? [], header));
      }
      const manifest: ManifestEntry[] = files.map((file) => ({ path: file.filename, sha256: file.sha256, size: file.size, distribution: file.requirement }));
      await writeManifest(path.join(dir, MANIFEST_NAME), { schemaVersion: 1, root: target, files: manifest });
    }
    return {
      dir,
      findings,
      files,
      skipped: selection.skipped,
      discard,
      async publish(report) {
        try {
          await writeFileSynced(path.join(dir, WHEELHOUSE_REPORT), report);
          for (const file of [...files.map((f) => f.filename), MANIFEST_NAME]) await fsyncPath(path.join(dir, file));
          await fsyncPath(dir);
        } catch (error: unknown) {
          await discard();
          throw diskFullOr(error, target);
        }
        await publishStaged(dir, target, input.lock);
        await fsyncPath(path.dirname(target));
        return target;
      },
    };
  } catch (error: unknown) {
    await discard();
    throw diskFullOr(error, target);
  }
}

async function writeFileSynced(file: string, content: string): Promise<void> {
  const handle = await open(file, 'wx', 0o644);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
