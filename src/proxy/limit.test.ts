import { describe, expect, it } from 'vitest';
import { forEachLimited } from './limit.js';

const never = new AbortController().signal;
const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('forEachLimited', () => {
  it('keeps at most `limit` calls in flight and calls each item once', async () => {
    let inFlight = 0;
    let most = 0;
    const seen: number[] = [];
    await forEachLimited([...Array(10).keys()], 3, never, async (i) => {
      most = Math.max(most, ++inFlight);
      await tick(5);
      seen.push(i);
      inFlight--;
    });
    expect(most).toBe(3);
    expect(seen.sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
  });

  it('starts nothing after the first failure, waits for what is in flight, and throws that failure', async () => {
    const started: number[] = [];
    let finished = 0;
    const failure = new Error('item 1');
    const result = forEachLimited([0, 1, 2, 3, 4, 5], 2, never, async (i) => {
      started.push(i);
      if (i === 1) throw failure;
      await tick(20);
      finished++;
    });
    await expect(result).rejects.toBe(failure);
    expect(started).toEqual([0, 1]);
    expect(finished).toBe(1);
  });

  it('rejects at once with the signal reason', async () => {
    const stop = new AbortController();
    const reason = new Error('SIGTERM');
    setTimeout(() => stop.abort(reason), 10);
    await expect(forEachLimited([1], 1, stop.signal, () => tick(300))).rejects.toBe(reason);
  });
});
