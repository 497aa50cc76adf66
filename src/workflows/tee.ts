/**
 * One stream read by several consumers at once, each seeing every byte: the installed tree comes
 * out of the sandbox once and is read by the static scan and extracted into the export's staging
 * dir in the same pass, instead of being streamed out of the engine twice.
 */
import { PassThrough, type Readable } from 'node:stream';

/** Reads its branch of the stream (to its end, or until it has what it wants) and resolves with what it made of it. */
export type Consumer<T> = (branch: Readable) => Promise<T>;

/** What each side of a branch (a PassThrough: written and readable) may hold ahead of its reader: the stream is read at the pace of the slowest consumer. */
const BRANCH_BUFFER_BYTES = 512 * 1024;

type Origin = number | 'source' | 'signal';

/**
 * Feed `source` to every consumer, each through a branch of its own, and resolve with their results
 * in order. The next chunk is read only when every branch still being read has room for it.
 *
 * - A consumer that stops reading early (a limit; its branch destroyed, or its promise resolved)
 *   is detached and the others go on; once none reads, the source is destroyed: a hostile stream
 *   may be endless.
 * - A consumer that rejects destroys the source and every other branch, so the others reject too,
 *   and its error is the one thrown.
 * - A source that fails destroys every branch with its error; the first consumer's rejection is
 *   thrown, as it names what that consumer was doing (unless every consumer had already finished).
 * - An abort of `signal` destroys everything, and the signal's reason is thrown.
 *
 * It resolves or rejects only once every consumer has settled: nothing is still writing when it returns.
 */
export async function teeInto<T extends readonly unknown[]>(
  source: Readable,
  consumers: { readonly [K in keyof T]: Consumer<T[K]> },
  signal?: AbortSignal,
): Promise<T> {
  const branches = consumers.map(() => {
    const branch = new PassThrough({ highWaterMark: BRANCH_BUFFER_BYTES });
    // Each consumer hears its branch's error through its own pipeline; this one only keeps an error
    // on a branch whose consumer has already let go of it from escaping as an uncaught exception.
    branch.on('error', () => {});
    return branch;
  });
  let failed: { error: unknown; from: Origin } | null = null;
  const fail = (error: unknown, from: Origin): void => {
    if (failed !== null) return;
    failed = { error, from };
    const reason = error instanceof Error ? error : new Error(String(error));
    source.destroy();
    for (const branch of branches) branch.destroy(reason);
  };
  const onAbort = (): void => fail(signal?.reason, 'signal');
  if (signal?.aborted) onAbort();
  signal?.addEventListener('abort', onAbort, { once: true });

  const results = consumers.map((consume, i) =>
    (async () => consume(branches[i]!))().then(
      (value) => {
        // Done with its branch: whatever it left unread must not hold the others back.
        branches[i]!.destroy();
        return value;
      },
      (error: unknown) => {
        fail(error, i);
        throw error;
      },
    ),
  );
  const pumped = pump(source, branches).catch((error: unknown) => fail(error, 'source'));

  const settled = await Promise.allSettled(results);
  await pumped;
  signal?.removeEventListener('abort', onAbort);
  const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
  const cause = failed as { error: unknown; from: Origin } | null;
  if (cause?.from === 'signal') throw cause.error;
  if (typeof cause?.from === 'number') throw cause.error;
  if (rejected[0]) throw rejected[0].reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/** Copy `source` into every branch still open, a chunk at a time; end them all at its end. */
async function pump(source: Readable, branches: PassThrough[]): Promise<void> {
  for await (const chunk of source) {
    const open = branches.filter((branch) => !branch.destroyed);
    // Leaving the loop destroys the source: nobody reads it any more.
    if (open.length === 0) break;
    await Promise.all(open.map((branch) => write(branch, chunk)));
  }
  for (const branch of branches) if (!branch.destroyed) branch.end();
}

/** Resolves when the branch has room again, or is gone. */
function write(branch: PassThrough, chunk: unknown): Promise<void> {
  if (branch.write(chunk)) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      branch.off('drain', done);
      branch.off('close', done);
      resolve();
    };
    branch.on('drain', done);
    branch.on('close', done);
  });
}
