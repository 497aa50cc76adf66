/**
 * An exclusive lock file beside what it guards, for a short critical section (the check-and-rename
 * of a publish). Created with O_CREAT|O_EXCL ('wx'), it holds who took it: pid, host and a random
 * id. A lock whose pid is dead on this host is stale and taken over; one held by a live process,
 * by another host or by something unreadable is waited for, within a bound, and then refused.
 * Only the holder of the takeover guard (`<lock>.takeover`, taken the same way) removes a stale lock.
 */
import { randomUUID } from 'node:crypto';
import { open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { EnvironmentError } from '../errors.js';

const Holder = z.object({ pid: z.number().int().positive(), host: z.string(), id: z.string().min(1) });
export type LockHolder = z.infer<typeof Holder>;

export interface LockOptions {
  /** How long to wait for a live holder before giving up. */
  timeoutMs?: number;
  /** How long to sleep between attempts. */
  retryMs?: number;
  sleep?: (ms: number) => Promise<void>;
}

const DEFAULTS = { timeoutMs: 30_000, retryMs: 100 } as const;

/** `<parent>/.<name>.lock`: beside the path it guards, on the same filesystem. */
export function lockFileFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.lock`);
}

/** `<lock>.takeover`: held while a stale lock is removed. */
export function takeoverGuardFor(file: string): string {
  return `${file}.takeover`;
}

/** Who holds the lock; null when it is gone, 'unreadable' when it holds no holder we can read (perhaps being written). */
async function readHolder(file: string): Promise<LockHolder | 'unreadable' | null> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  try {
    const parsed = Holder.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : 'unreadable';
  } catch {
    return 'unreadable';
  }
}

/** Dead only when it is provably dead: on this host, and no process has its pid (EPERM is a live process of another user). */
function isDead(holder: LockHolder): boolean {
  if (holder.host !== hostname()) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error: unknown) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Create the lock if nobody holds it; false when it exists. */
async function tryCreate(file: string, holder: LockHolder): Promise<boolean> {
  let handle;
  try {
    handle = await open(file, 'wx', 0o644);
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(`${JSON.stringify(holder)}\n`);
  } catch (error: unknown) {
    // Made by us and naming no holder (a full disk): left there, it would hold off every later run.
    await handle.close().catch(() => undefined);
    await rm(file, { force: true });
    throw error;
  }
  await handle.close();
  return true;
}

/** The same holder: the same pid, host and id. */
function isHolder(found: LockHolder | 'unreadable' | null, holder: LockHolder): boolean {
  return found !== null && found !== 'unreadable' && found.pid === holder.pid && found.host === holder.host && found.id === holder.id;
}

/** Remove the lock only while `holder` holds it. */
async function removeIfHeldBy(file: string, holder: LockHolder): Promise<void> {
  if (isHolder(await readHolder(file), holder)) await rm(file, { force: true });
}

/**
 * Remove the stale lock `seen`, and only it; true when the caller may try again at once, false
 * when another taker is removing it. Two waiters may find the same stale lock, and the slower one
 * must not remove (or move aside, even for a moment) the lock the faster one took meanwhile: a third
 * would take the lock in that moment, and two would hold it. So a taker first takes the guard
 * `<lock>.takeover`, exclusive like the lock, reads the lock again and removes it only if it is
 * still `seen`. Nothing else removes a lock whose holder is dead (the dead release nothing), so the
 * lock read under the guard is the one removed. A guard whose taker died is stale and removed the same way.
 */
export async function removeStaleLock(file: string, seen: LockHolder): Promise<boolean> {
  const guard = takeoverGuardFor(file);
  const taker: LockHolder = { pid: process.pid, host: hostname(), id: randomUUID() };
  if (!(await tryCreate(guard, taker))) {
    const other = await readHolder(guard);
    if (other === null) return true;
    return other !== 'unreadable' && isDead(other) && removeStaleLock(guard, other);
  }
  try {
    await removeIfHeldBy(file, seen);
  } finally {
    await removeIfHeldBy(guard, taker);
  }
  return true;
}

function holderText(holder: LockHolder | 'unreadable' | null): string {
  if (holder === 'unreadable') return 'held by a process whose pid and host it does not name';
  if (holder === null) return 'taken and released again every time it was tried';
  return `held by pid ${holder.pid} on ${holder.host}`;
}

/** Take the lock, waiting up to `timeoutMs` for a live holder; its release removes it only while it is still ours. */
export async function acquireLockFile(file: string, options: LockOptions = {}): Promise<{ holder: LockHolder; release: () => Promise<void> }> {
  const { timeoutMs, retryMs } = { ...DEFAULTS, ...options };
  const sleep = options.sleep ?? ((ms: number) => delay(ms));
  const holder: LockHolder = { pid: process.pid, host: hostname(), id: randomUUID() };
  const attempts = 1 + Math.ceil(timeoutMs / retryMs);
  for (let attempt = 1; ; attempt++) {
    if (await tryCreate(file, holder)) break;
    const last = await readHolder(file);
    if (last !== null && last !== 'unreadable' && isDead(last) && (await removeStaleLock(file, last))) continue;
    if (attempt >= attempts) {
      const taking = last !== null && last !== 'unreadable' && isDead(last);
      throw new EnvironmentError('output.locked', `the lock ${file} is ${holderText(last)}; gave up after ${timeoutMs / 1000} s`, {
        hint: taking
          ? `its holder is dead and another sandbox-install run is taking it over; if none is, remove ${takeoverGuardFor(file)}`
          : `another sandbox-install run is publishing to the same --output; if none is, remove ${file}`,
      });
    } else if (last !== null) await sleep(retryMs);
  }
  return {
    holder,
    release: () => removeIfHeldBy(file, holder),
  };
}

/** Run `fn` holding the lock; the lock is released however `fn` ends. */
export async function withLockFile<T>(file: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const lock = await acquireLockFile(file, options);
  try {
    return await fn();
  } finally {
    await lock.release();
  }
}
