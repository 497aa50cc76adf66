/** Publishing a wheelhouse: the same lock and cleanup as an export (publish.ts publishStaged). */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EnvironmentError, InputError } from '../errors.js';
import type { LockPlan } from '../lock/types.js';
import type { LockOptions } from './lock-file.js';
import { stageWheelhouse } from './wheelhouse.js';

const WHEEL = 'built-1.0-py3-none-any.whl';

/** The built wheel holding `data`, as the host read it from the build phase. */
async function builtWheel(data: string): Promise<{ filename: string; requirement: string; sha256: string; file: string }> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'built-wheel-')), WHEEL);
  await writeFile(file, data);
  return { filename: WHEEL, requirement: 'built', sha256: createHash('sha256').update(data).digest('hex'), file };
}

const PLAN: LockPlan = {
  file: 'requirements.lock',
  requirements: [{ name: 'built', rawName: 'built', version: '1.0', extras: [], marker: null, sha256: ['0'.repeat(64)], line: 1 }],
  indexUrl: null,
  extraIndexUrls: [],
  pipOptions: { pre: false, preferBinary: false, onlyBinary: [], noBinary: [], given: [] },
};

const stage = async (output: string, data: string, lock?: LockOptions) =>
  stageWheelhouse({
    output,
    plan: PLAN,
    selection: { locked: [], built: [await builtWheel(data)], skipped: [], findings: [] },
    date: new Date('2025-01-01T00:00:00Z'),
    ...(lock ? { lock } : {}),
  });

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => null,
    (error: unknown) => error,
  );
}

describe('stageWheelhouse / publish', () => {
  it('lets concurrent publishes to one output take turns: all succeed and only the wheelhouse is left beside it', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'wheelhouse-publish-'));
    const output = path.join(root, 'wheels');
    const runs = ['one', 'two', 'three', 'four'];
    const staged = await Promise.all(runs.map((data) => stage(output, data)));
    const results = await Promise.allSettled(staged.map((s, i) => s.publish(`{"run":"${runs[i]}"}\n`)));
    expect(results.map((r) => r.status)).toEqual(runs.map(() => 'fulfilled'));
    expect(await readdir(root)).toEqual(['wheels']);
    // One run's wheelhouse, whole: its wheel and its report together.
    const data = await readFile(path.join(output, WHEEL), 'utf8');
    expect(runs).toContain(data);
    expect(await readFile(path.join(output, 'report.json'), 'utf8')).toBe(`{"run":"${data}"}\n`);
  });

  it('refuses a dangling symbolic link as the output with a clear error, and leaves no staging dir', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'wheelhouse-publish-'));
    const output = path.join(root, 'wheels');
    await symlink(path.join(root, 'gone'), output);
    const error = await failure((await stage(output, 'x')).publish('{}\n'));
    expect(error).toBeInstanceOf(InputError);
    expect(error).toMatchObject({ message: `cannot use --output ${output}: it is a symbolic link to ${path.join(root, 'gone')}, which does not exist` });
    expect(await readdir(root)).toEqual(['wheels']);
  });

  it('gives up on a live holder of the lock with an error naming it, and leaves no staging dir', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'wheelhouse-publish-'));
    const output = path.join(root, 'wheels');
    const lock = path.join(root, '.wheels.lock');
    await writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), id: 'another-run' }));
    const error = await failure((await stage(output, 'x', { timeoutMs: 20, retryMs: 10 })).publish('{}\n'));
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(error).toMatchObject({ code: 'output.locked', message: `the lock ${lock} is held by pid ${process.pid} on ${hostname()}; gave up after 0.02 s` });
    expect(await readdir(root)).toEqual(['.wheels.lock']);
  });
});
