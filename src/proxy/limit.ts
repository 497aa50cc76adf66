/**
 * Run `fn` over `items` with at most `limit` calls in flight. The first failure stops new calls;
 * the ones in flight are waited for, then that failure is thrown. The signal stops new calls too
 * and rejects at once with its reason (what is in flight is the caller's to cancel).
 */
export async function forEachLimited<T>(items: readonly T[], limit: number, signal: AbortSignal, fn: (item: T) => Promise<void>): Promise<void> {
  signal.throwIfAborted();
  let next = 0;
  let failure: { error: unknown } | null = null;
  const worker = async (): Promise<void> => {
    while (failure === null && !signal.aborted && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error: unknown) {
        failure ??= { error };
      }
    }
  };
  const workers = Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined);
  try {
    await Promise.race([workers, aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
  signal.throwIfAborted();
  if (failure !== null) throw (failure as { error: unknown }).error;
}
