/**
 * What a run made on the host, on disk while it runs, so `gc` can remove what a `kill -9` left
 * without guessing. A run writes `<state dir>/runs/<run id>.json` (its host, pid, start and the
 * directories it made) *before* it makes each directory, and deletes it once they are all gone.
 * `gc` reads the records of owners that are dead on this host and removes each listed path that
 * still is a directory of ours (lstat, never through a symlink; a basename of our own patterns;
 * owned by this user), then the record. A record is a file anyone with the user's rights could
 * have written: it is read bounded, parsed with zod and trusted for nothing but those checks.
 */
import { randomInt } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/** Makes a directory a run owns under `parent`, named `prefix` and six random characters (mkdtemp's form). */
export type MakeRunDir = (parent: string, prefix: string) => Promise<string>;

/** The basenames of the directories runs make: temp dirs in the temp dir, staging dirs beside an output. */
const OURS = [/^sandbox-install-[a-z]+-[A-Za-z0-9]{6}$/, /^\.[^/]+\.staging-[A-Za-z0-9]{6}$/];
export const isRunDirName = (name: string): boolean => OURS.some((pattern) => pattern.test(name));

/** A record is a few paths: anything larger is not one of ours. */
const MAX_RECORD_BYTES = 64 * 1024;
const RECORD_NAME = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json$/;

export const RunRecordFile = z.strictObject({
  version: z.literal(1),
  host: z.string().min(1).max(255),
  // Linux's pid_max is at most 2^22.
  pid: z
    .number()
    .int()
    .positive()
    .max(2 ** 22),
  started: z.string().max(64),
  paths: z.array(z.string().min(1).max(4096)).max(256),
});
export type RunRecordFile = z.infer<typeof RunRecordFile>;

/** `$XDG_STATE_HOME/sandbox-install/runs`, else `~/.local/state/sandbox-install/runs`. */
export function defaultRunsDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME || path.join(homedir(), '.local', 'state');
  return path.join(base, 'sandbox-install', 'runs');
}

/** Whether a record's owner lives: `elsewhere` when it ran on another host (nothing can be said). Dead only on ESRCH: EPERM is another user's live process. */
export function ownerState(host: string, pid: number): 'alive' | 'dead' | 'elsewhere' {
  if (host !== hostname()) return 'elsewhere';
  try {
    process.kill(pid, 0);
    return 'alive';
  } catch (error: unknown) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH' ? 'dead' : 'alive';
  }
}

const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
const randomSuffix = (): string => Array.from({ length: 6 }, () => ALPHABET[randomInt(ALPHABET.length)]).join('');

/**
 * One run's record. Written on the first directory it makes (a run refused before that writes
 * nothing); `close()` deletes it. A record that cannot be written (a read-only home) does not stop
 * the run: `onUnwritable` hears of it once, and `gc` then cannot find that run's directories.
 */
export class RunRecord {
  private readonly paths: string[] = [];
  private readonly started = new Date().toISOString();
  private writes: Promise<void> = Promise.resolve();
  private warned = false;

  constructor(
    readonly file: string,
    private readonly onUnwritable: (error: unknown) => void = () => {},
  ) {}

  /** Every directory made through this record, in order. */
  get dirs(): readonly string[] {
    return this.paths;
  }

  /** mkdtemp, but recorded before it exists: no instant in which a kill leaves a directory no record names. */
  readonly makeDir: MakeRunDir = async (parent, prefix) => {
    for (let attempt = 0; ; attempt++) {
      const dir = path.join(parent, `${prefix}${randomSuffix()}`);
      this.paths.push(dir);
      await this.save();
      try {
        await mkdir(dir, { mode: 0o700 });
        return dir;
      } catch (error: unknown) {
        this.paths.splice(this.paths.indexOf(dir), 1);
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 16) throw error;
      }
    }
  };

  private save(): Promise<void> {
    const body: RunRecordFile = { version: 1, host: hostname(), pid: process.pid, started: this.started, paths: [...this.paths] };
    this.writes = this.writes.then(async () => {
      try {
        await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
        // Renamed over the record: gc reads the old list or the new one, never half of one.
        await writeFile(`${this.file}.tmp`, JSON.stringify(body), { mode: 0o600 });
        await rename(`${this.file}.tmp`, this.file);
      } catch (error: unknown) {
        if (!this.warned) this.onUnwritable(error);
        this.warned = true;
      }
    });
    return this.writes;
  }

  /** The run is over and every directory is gone: the record goes too. */
  async close(): Promise<void> {
    await this.writes;
    await rm(this.file, { force: true });
    await rm(`${this.file}.tmp`, { force: true });
  }
}

/** A record's text, bounded, never through a symlink or from a FIFO. */
async function readRecord(file: string): Promise<RunRecordFile> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new Error('not a regular file');
    if (info.size > MAX_RECORD_BYTES) throw new Error(`${info.size} bytes, over the ${MAX_RECORD_BYTES}-byte limit`);
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(MAX_RECORD_BYTES + 1), 0, MAX_RECORD_BYTES + 1, 0);
    if (bytesRead > MAX_RECORD_BYTES) throw new Error(`over the ${MAX_RECORD_BYTES}-byte limit`);
    return RunRecordFile.parse(JSON.parse(buffer.subarray(0, bytesRead).toString('utf8')));
  } finally {
    await handle.close();
  }
}

export type DirOutcome = { path: string; removed: true } | { path: string; removed: false; why: string };

/**
 * Remove one recorded path if it still is a directory of ours: absolute and normal, one of our
 * basenames, a real directory (lstat: a symlink is never followed) owned by this user, under a
 * parent resolved to where it really is. Null when it is gone already.
 */
export async function removeRunDir(recorded: string): Promise<DirOutcome | null> {
  if (!path.isAbsolute(recorded) || path.normalize(recorded) !== recorded) return { path: recorded, removed: false, why: 'not an absolute, normal path' };
  const base = path.basename(recorded);
  if (!isRunDirName(base)) return { path: recorded, removed: false, why: 'not a name sandbox-install makes' };
  let parent: string;
  try {
    parent = await realpath(path.dirname(recorded));
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const dir = path.join(parent, base);
  const info = await lstat(dir).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  });
  if (info === null) return null;
  if (!info.isDirectory()) return { path: recorded, removed: false, why: info.isSymbolicLink() ? 'a symbolic link, not followed' : 'not a directory' };
  if (process.getuid && info.uid !== process.getuid()) return { path: recorded, removed: false, why: 'owned by another user' };
  await rm(dir, { recursive: true, force: true });
  return { path: recorded, removed: true };
}

export interface Sweep {
  /** Every recorded path looked at that was still there: removed, or left with the reason. */
  dirs: DirOutcome[];
  /** Records of finished runs removed. */
  records: number;
  /** Records of runs whose owner still lives (or ran on another host): left alone. */
  live: number;
  /** Files in the runs dir that are not records we can read, with the reason: left alone. */
  unreadable: Array<{ file: string; why: string }>;
}

/** A write of a record that a kill interrupted, older than this, is garbage. */
const STALE_TMP_MS = 60_000;

/**
 * Sweep the records in `runsDir` that `select` picks (gc: owners dead on this host; a forced exit:
 * this process's own): remove their directories, then the record. A record whose directory could
 * not be removed for an error (not a refusal) is kept, for the next gc.
 */
export async function sweepRuns(runsDir: string, select: (record: RunRecordFile) => boolean): Promise<Sweep> {
  const sweep: Sweep = { dirs: [], records: 0, live: 0, unreadable: [] };
  let names: string[];
  try {
    names = await readdir(runsDir);
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return sweep;
    throw error;
  }
  for (const name of names.sort()) {
    const file = path.join(runsDir, name);
    if (name.endsWith('.json.tmp') && RECORD_NAME.test(name.slice(0, -'.tmp'.length))) {
      const info = await stat(file).catch(() => null);
      if (info !== null && Date.now() - info.mtimeMs > STALE_TMP_MS && !names.includes(name.slice(0, -'.tmp'.length))) await rm(file, { force: true });
      continue;
    }
    if (!RECORD_NAME.test(name)) {
      sweep.unreadable.push({ file, why: 'not a record name' });
      continue;
    }
    let record: RunRecordFile;
    try {
      record = await readRecord(file);
    } catch (error: unknown) {
      sweep.unreadable.push({
        file,
        why: error instanceof z.ZodError ? 'not a run record' : error instanceof SyntaxError ? 'not JSON' : (error as Error).message,
      });
      continue;
    }
    if (!select(record)) {
      sweep.live++;
      continue;
    }
    let failed = false;
    for (const recorded of record.paths) {
      try {
        const outcome = await removeRunDir(recorded);
        if (outcome !== null) sweep.dirs.push(outcome);
      } catch (error: unknown) {
        failed = true;
        sweep.dirs.push({ path: recorded, removed: false, why: (error as Error).message });
      }
    }
    if (failed) continue;
    await rm(file, { force: true });
    await rm(`${file}.tmp`, { force: true });
    sweep.records++;
  }
  return sweep;
}

/** gc's choice: runs whose owner is dead on this host. */
export const ownerDead = (record: RunRecordFile): boolean => ownerState(record.host, record.pid) === 'dead';
