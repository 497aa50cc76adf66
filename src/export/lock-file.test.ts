import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EnvironmentError } from '../errors.js';
import { acquireLockFile, lockFileFor, removeStaleLock, takeoverGuardFor, withLockFile } from './lock-file.js';

const dirs: string[] = [];
afterAll(() => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function lockIn(): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'lock-file-'));
  dirs.push(dir);
  return { dir, file: lockFileFor(path.join(dir, 'wheels')) };
}

const deadPid = (): number => spawnSync(process.execPath, ['-e', '']).pid;

/** A sleep that records what was asked and waits for nothing. */
function recordingSleep(): { sleep: (ms: number) => Promise<void>; calls: number[] } {
  const calls: number[] = [];
  return { calls, sleep: async (ms) => void calls.push(ms) };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => null,
    (error: unknown) => error,
  );
}

describe('lock file', () => {
  it('sits beside what it guards, hidden', () => {
    expect(lockFileFor('/srv/out/wheels')).toBe('/srv/out/.wheels.lock');
  });

  it('holds its pid, host and id while held, and is gone after release', async () => {
    const { dir, file } = await lockIn();
    const lock = await acquireLockFile(file);
    expect(lock.holder).toEqual({ pid: process.pid, host: hostname(), id: expect.any(String) });
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(lock.holder);
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('is released when the guarded work throws', async () => {
    const { dir, file } = await lockIn();
    await expect(withLockFile(file, () => Promise.reject(new Error('rename failed')))).rejects.toThrow('rename failed');
    expect(await readdir(dir)).toEqual([]);
  });

  it('makes a second taker wait for the first to release', async () => {
    const { file } = await lockIn();
    const order: string[] = [];
    let releaseFirst = (): void => {};
    const first = withLockFile(file, async () => {
      order.push('first in');
      await new Promise<void>((resolve) => (releaseFirst = resolve));
      order.push('first out');
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const second = withLockFile(file, async () => void order.push('second in'), { retryMs: 5 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(order).toEqual(['first in']);
    releaseFirst();
    await Promise.all([first, second]);
    expect(order).toEqual(['first in', 'first out', 'second in']);
  });

  it.each([
    ['a lock whose pid is dead on this host', false],
    ['a stale lock whose takeover was left by a taker that died', true],
  ])('takes over %s, without waiting, and leaves nothing else behind', async (_what, guardLeft) => {
    const { dir, file } = await lockIn();
    await writeFile(file, JSON.stringify({ pid: deadPid(), host: hostname(), id: 'crashed' }));
    if (guardLeft) await writeFile(takeoverGuardFor(file), JSON.stringify({ pid: deadPid(), host: hostname(), id: 'died-taking-over' }));
    const { sleep, calls } = recordingSleep();
    const lock = await acquireLockFile(file, { sleep });
    expect(calls).toEqual([]);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(lock.holder);
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('lets one taker at a time in when several wait on a stale lock, and leaves nothing behind', async () => {
    const pid = deadPid();
    // Work of unequal lengths spreads the takers' retries apart, so a late taker meets the stale lock
    // after another has taken it over: the interleaving that once let two in at once.
    for (let round = 0; round < 10; round++) {
      const { dir, file } = await lockIn();
      await writeFile(file, JSON.stringify({ pid, host: hostname(), id: 'crashed' }));
      let inside = 0;
      let most = 0;
      const work = async (ms: number): Promise<void> => {
        most = Math.max(most, ++inside);
        await new Promise((resolve) => setTimeout(resolve, ms));
        inside--;
      };
      await Promise.all(Array.from({ length: 8 }, (_, taker) => withLockFile(file, () => work(taker % 4), { retryMs: 2 })));
      expect(most).toBe(1);
      expect(await readdir(dir)).toEqual([]);
    }
  });

  it('removes only the stale lock it saw: a lock another waiter took over meanwhile is left alone', async () => {
    const { dir, file } = await lockIn();
    const seen = { pid: deadPid(), host: hostname(), id: 'crashed' };
    const taken = JSON.stringify({ pid: process.pid, host: hostname(), id: 'took-it-over' });
    await writeFile(file, taken);
    expect(await removeStaleLock(file, seen)).toBe(true);
    expect(await readFile(file, 'utf8')).toBe(taken);
    expect(await readdir(dir)).toEqual(['.wheels.lock']);

    await writeFile(file, JSON.stringify(seen));
    expect(await removeStaleLock(file, seen)).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });

  // The race behind the test above: a waiter that read the stale lock late lifted, for a moment,
  // the lock another waiter had taken over, and a third took the lock in that moment. Here every
  // removal of the stale lock runs while a live taker holds the lock and intruders try it without
  // pause: none may find the lock free or gone.
  it('never lifts, even for a moment, a lock a live taker holds while a late waiter removes the stale one it saw', async () => {
    const { dir, file } = await lockIn();
    const lock = await acquireLockFile(file);
    const seen = { pid: deadPid(), host: hostname(), id: 'crashed' };
    const refusals = new Set<unknown>();
    for (let round = 0; round < 20; round++) {
      let removed = false;
      const removing = Promise.all([removeStaleLock(file, seen), removeStaleLock(file, seen)]).finally(() => (removed = true));
      const intrude = async (): Promise<void> => {
        do {
          const error = await failure(acquireLockFile(file, { timeoutMs: 0 }));
          refusals.add(error instanceof EnvironmentError ? error.message : error);
        } while (!removed);
      };
      await Promise.all([removing, intrude(), intrude()]);
    }
    expect([...refusals]).toEqual([`the lock ${file} is held by pid ${process.pid} on ${hostname()}; gave up after 0 s`]);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(lock.holder);
    await lock.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('waits for a live taker that is removing the stale lock, and names its guard when it gives up', async () => {
    const { file } = await lockIn();
    const pid = deadPid();
    const guard = JSON.stringify({ pid: process.pid, host: hostname(), id: 'taking-over' });
    await writeFile(file, JSON.stringify({ pid, host: hostname(), id: 'crashed' }));
    await writeFile(takeoverGuardFor(file), guard);
    const { sleep, calls } = recordingSleep();
    const error = await failure(acquireLockFile(file, { timeoutMs: 1000, retryMs: 250, sleep }));
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(error).toMatchObject({
      code: 'output.locked',
      message: `the lock ${file} is held by pid ${pid} on ${hostname()}; gave up after 1 s`,
      hint: `its holder is dead and another sandbox-install run is taking it over; if none is, remove ${file}.takeover`,
    });
    expect(calls).toEqual([250, 250, 250, 250]);
    expect(await readFile(takeoverGuardFor(file), 'utf8')).toBe(guard);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ id: 'crashed' });
  });

  it('gives up on a live holder after the timeout, naming the lock file and the holder', async () => {
    const { file } = await lockIn();
    await writeFile(file, JSON.stringify({ pid: process.pid, host: hostname(), id: 'another-run' }));
    const { sleep, calls } = recordingSleep();
    const error = await failure(acquireLockFile(file, { timeoutMs: 1000, retryMs: 250, sleep }));
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(error).toMatchObject({
      code: 'output.locked',
      message: `the lock ${file} is held by pid ${process.pid} on ${hostname()}; gave up after 1 s`,
      hint: `another sandbox-install run is publishing to the same --output; if none is, remove ${file}`,
    });
    expect(calls).toEqual([250, 250, 250, 250]);
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ id: 'another-run' });
  });

  it('never takes over a lock of another host or one it cannot read: their owner cannot be checked', async () => {
    const { file } = await lockIn();
    const pid = deadPid();
    await writeFile(file, JSON.stringify({ pid, host: `not-${hostname()}`, id: 'remote' }));
    expect(await failure(acquireLockFile(file, { timeoutMs: 0 }))).toMatchObject({
      message: `the lock ${file} is held by pid ${pid} on not-${hostname()}; gave up after 0 s`,
    });

    // An empty lock may be one whose holder is still writing it.
    await writeFile(file, '');
    expect(await failure(acquireLockFile(file, { timeoutMs: 0 }))).toMatchObject({
      message: `the lock ${file} is held by a process whose pid and host it does not name; gave up after 0 s`,
    });
    expect(await readFile(file, 'utf8')).toBe('');
  });

  it('release leaves alone a lock that is no longer its own', async () => {
    const { file } = await lockIn();
    const lock = await acquireLockFile(file);
    await writeFile(file, JSON.stringify({ pid: process.pid, host: hostname(), id: 'someone-else' }));
    await lock.release();
    expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ id: 'someone-else' });
  });
});
