import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { teeInto, type Consumer } from './tee.js';

const CHUNK = 64 * 1024;

/**
 * A source of `chunks` chunks of 64 KiB (endless when Infinity), counting what was read of it and
 * whether it was destroyed. `paced`: each chunk waits for the event loop, as one from a socket does
 * (an in-memory stream read in memory never lets a timer run).
 */
function source(chunks: number, fail?: { after: number; error: Error }, paced = false): { stream: Readable; read: () => number; destroyed: () => boolean } {
  let produced = 0;
  let destroyed = false;
  const stream = Readable.from(
    (async function* () {
      try {
        for (; produced < chunks;) {
          if (fail && produced === fail.after) throw fail.error;
          if (paced) await new Promise((resolve) => setImmediate(resolve));
          const chunk = Buffer.alloc(CHUNK, produced % 251);
          produced += 1;
          yield chunk;
        }
      } finally {
        destroyed = produced < chunks;
      }
    })(),
    { objectMode: false },
  );
  return { stream, read: () => produced, destroyed: () => destroyed };
}

/** Reads its branch to the end: the sha256 and length of what it read. */
const digest: Consumer<{ sha256: string; bytes: number }> = async (branch) => {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of branch) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
};

/** What a direct read of `chunks` chunks gives. */
async function expected(chunks: number): Promise<{ sha256: string; bytes: number }> {
  return digest(source(chunks).stream);
}

/** Reads `n` chunks and stops, destroying its branch as a reader at its limit does. */
const firstChunks =
  (n: number): Consumer<number> =>
  async (branch) => {
    let seen = 0;
    for await (const _chunk of branch) if (++seen === n) break;
    return seen;
  };

/** Reads through a pipeline that fails with `error` after `n` chunks, as the scan's and extraction's tar parsers do. */
const failingAfter =
  (n: number, error: Error): Consumer<never> =>
  async (branch) => {
    let seen = 0;
    await pipeline(
      branch,
      new Writable({
        write(_chunk, _encoding, callback) {
          callback(++seen > n ? error : null);
        },
      }),
    );
    throw new Error('the failing consumer read to the end');
  };

const rejection = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => expect.fail('resolved'),
    (error: unknown) => error,
  );

describe('teeInto', () => {
  it('gives every consumer every byte, and their results in order', async () => {
    const { stream, read } = source(40);
    const [a, b] = await teeInto<[{ sha256: string; bytes: number }, { sha256: string; bytes: number }]>(stream, [digest, digest]);
    expect(a).toEqual(await expected(40));
    expect(b).toEqual(a);
    expect(read()).toBe(40);
  });

  it('reads the source at the pace of the slowest consumer: it is not read ahead while one consumer waits', async () => {
    const { stream, read } = source(400);
    let release = (): void => {};
    const waited = new Promise<void>((resolve) => (release = resolve));
    const slow: typeof digest = async (branch) => {
      await waited;
      return digest(branch);
    };
    const done = teeInto<[{ sha256: string; bytes: number }, { sha256: string; bytes: number }]>(stream, [digest, slow]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // The slow branch holds 512 KiB on each side, a chunk is in flight and one is read ahead: 400 chunks are 25 MiB.
    const readWhileWaiting = read();
    expect(readWhileWaiting).toBeGreaterThan(0);
    expect(readWhileWaiting).toBeLessThanOrEqual((2 * 512 * 1024) / CHUNK + 3);
    release();
    const [fast, slowResult] = await done;
    expect(slowResult).toEqual(await expected(400));
    expect(fast).toEqual(slowResult);
  });

  it('detaches a consumer that stops early and feeds the others to the end', async () => {
    const { stream, read, destroyed } = source(100);
    const [first, whole] = await teeInto<[number, { sha256: string; bytes: number }]>(stream, [firstChunks(3), digest]);
    expect(first).toBe(3);
    expect(whole).toEqual(await expected(100));
    expect(read()).toBe(100);
    expect(destroyed()).toBe(false);
  });

  it('stops reading an endless source once no consumer reads it', async () => {
    const { stream, read, destroyed } = source(Infinity);
    expect(await teeInto<[number, number]>(stream, [firstChunks(2), firstChunks(5)])).toEqual([2, 5]);
    expect(destroyed()).toBe(true);
    expect(read()).toBeLessThan(50);
  });

  it('an error on the first side destroys the second, and the first side’s error is thrown', async () => {
    const { stream, destroyed } = source(Infinity);
    const scanError = new Error('scan failed');
    let secondSaw: unknown = null;
    const second: Consumer<never> = async (branch) => {
      try {
        await digest(branch);
      } catch (error: unknown) {
        secondSaw = error;
      }
      throw new Error('the second consumer was stopped');
    };
    expect(await rejection(teeInto<[never, never]>(stream, [failingAfter(4, scanError), second]))).toBe(scanError);
    expect(secondSaw).toBe(scanError);
    expect(destroyed()).toBe(true);
  });

  it('an error on the second side destroys the first, and the second side’s error is thrown', async () => {
    const { stream, destroyed } = source(Infinity);
    const extractError = new Error('extraction failed');
    let firstSaw: unknown = null;
    const first: Consumer<never> = async (branch) => {
      await digest(branch).catch((error: unknown) => (firstSaw = error));
      throw new Error('the first consumer was stopped');
    };
    expect(await rejection(teeInto<[never, never]>(stream, [first, failingAfter(4, extractError)]))).toBe(extractError);
    expect(firstSaw).toBe(extractError);
    expect(destroyed()).toBe(true);
  });

  it("a failing source fails every consumer, and the first consumer's error is thrown", async () => {
    const broken = new Error('the engine went away');
    const { stream } = source(100, { after: 10, error: broken });
    const wrap =
      (name: string): Consumer<never> =>
      async (branch) => {
        const error = await digest(branch).then(
          () => null,
          (e: unknown) => e,
        );
        throw new Error(`${name} failed`, { cause: error });
      };
    const error = await rejection(teeInto<[never, never]>(stream, [wrap('scan'), wrap('extraction')]));
    expect(error).toMatchObject({ message: 'scan failed', cause: broken });
  });

  it('an abort stops every consumer and the source, throws the reason, and returns only once both settled', async () => {
    const { stream, destroyed } = source(Infinity, undefined, true);
    const controller = new AbortController();
    const settled: string[] = [];
    const until =
      (name: string): Consumer<never> =>
      async (branch) => {
        await digest(branch).catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 20));
        settled.push(name);
        throw new Error(`${name} stopped`);
      };
    setTimeout(() => controller.abort(new Error('interrupted by SIGINT')), 50);
    const error = await rejection(teeInto<[never, never]>(stream, [until('scan'), until('extraction')], controller.signal));
    expect(error).toMatchObject({ message: 'interrupted by SIGINT' });
    expect(settled.sort()).toEqual(['extraction', 'scan']);
    expect(destroyed()).toBe(true);
  });

  it('a consumer that throws before reading fails the run like one that rejects', async () => {
    const { stream, destroyed } = source(Infinity);
    const refused = new Error('no staging dir');
    const throws: Consumer<never> = () => {
      throw refused;
    };
    expect(await rejection(teeInto<[{ sha256: string; bytes: number }, never]>(stream, [digest, throws]))).toBe(refused);
    expect(destroyed()).toBe(true);
  });
});
