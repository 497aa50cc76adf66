import { setTimeout as sleep } from 'node:timers/promises';
import { SandboxError } from '../errors.js';
import { FileSourceRefused } from './file-source.js';

/**
 * What went wrong with an upstream (an index or a file host), in a few words for the report, and
 * whether asking again may help. The proxy retries a transient fault a bounded number of times,
 * then remembers the failure for the run: pip retries a 502 itself (five times, 0.25 s backoff
 * doubling), and without that memory each of its retries would cost our retries and timeouts again.
 *
 * - `transient`: connection refused or reset, a body cut short, HTTP 500/502/503/504. Tried again.
 * - `timeout`: no answer, no data, or a body below the throughput floor. Tried again, but at most
 *   `maxTimeouts` attempts of a URL may time out, so a URL costs at most that many timeouts.
 * - `never`: a 404 or other 4xx, a TLS failure, a missing file: file, a page that is not an index,
 *   a cap. Asking again gets the same answer.
 *
 * Hash mismatches, refused file: sources and a full cache disk are not faults of this kind: they
 * have their own findings or errors and are never retried (`faultOf` answers null for them).
 */
export type Retry = 'transient' | 'timeout' | 'never';

/** An error that knows what kind of upstream fault it is. `reason` is short and holds no URL. */
export class UpstreamFault extends Error {
  constructor(
    message: string,
    readonly reason: string,
    readonly retry: Retry,
  ) {
    super(message);
  }
}

/** Our own deadline fired: no answer, or nothing more of a body, within the time allowed. */
export class UpstreamTimeout extends UpstreamFault {
  override readonly name = 'UpstreamTimeout';
  constructor(message: string, reason: string) {
    super(message, reason, 'timeout');
  }
}

/** A body that ended before the length its headers declared. */
export class UpstreamTruncated extends UpstreamFault {
  override readonly name = 'UpstreamTruncated';
  constructor(url: string, received: number, expected: number) {
    super(`${url}: the body ended after ${received} of ${expected} bytes`, `truncated: ${received} of ${expected} bytes`, 'transient');
  }
}

/** Past a cap of ours: a page or a file larger than the proxy takes. */
export class UpstreamTooLarge extends UpstreamFault {
  override readonly name = 'UpstreamTooLarge';
  constructor(message: string, reason: string) {
    super(message, reason, 'never');
  }
}

/** An answer that is not a PEP 503/691 project page (a login page, an error page, a JSON error). */
export class NotAnIndexPage extends UpstreamFault {
  override readonly name = 'NotAnIndexPage';
  constructor(url: string, detail: string) {
    super(`${url} is not an index page: ${detail}`, `not an index page: ${detail}`, 'never');
  }
}

/**
 * An upstream URL that failed for good this run: after `attempts` tries, or at once for a fault
 * that asking again cannot fix. `url` is redacted; the message holds nothing else of the URL.
 */
export class UpstreamFailed extends Error {
  override readonly name = 'UpstreamFailed';
  constructor(
    readonly url: string,
    readonly reason: string,
    readonly attempts: number,
  ) {
    super(`${url}: ${reason} (${attempts} ${attempts === 1 ? 'attempt' : 'attempts'})`);
  }
}

export interface RetryPolicy {
  /** Attempts of one URL, the first included. */
  attempts: number;
  /** The wait before the second, third, … attempt; the last one repeats. */
  backoffMs: readonly number[];
  /** Attempts that may end in a timeout before the URL is given up. */
  maxTimeouts: number;
}

/**
 * Three attempts, 250 ms then 1 s apart, and no more than two timeouts: a URL that refuses or
 * answers 500 is given up after about 1.3 s, one that never answers after two timeouts and 250 ms
 * (41 s at the default 20 s timeout), and no URL takes longer than two timeouts and 1.25 s.
 */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, backoffMs: [250, 1000], maxTimeouts: 2 };

/** A single attempt: what the doctor and tests of one fault use. */
export const NO_RETRY: RetryPolicy = { attempts: 1, backoffMs: [0], maxTimeouts: 1 };

/** Connection errors worth another attempt; any other network error code is not. */
const TRANSIENT_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  UND_ERR_SOCKET: 'connection closed',
  EAI_AGAIN: 'DNS: EAI_AGAIN',
};
const TIMEOUT_CODES: Record<string, string> = { ETIMEDOUT: 'connect timeout', UND_ERR_CONNECT_TIMEOUT: 'connect timeout' };
const TLS_CODE = /CERT|SSL|TLS|^EPROTO$/;

/** The error code of `error`, its cause, or the first of an AggregateError's errors (happy eyeballs). */
function codeOf(error: unknown, depth = 0): string | null {
  if (!(error instanceof Error) || depth > 4) return null;
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === 'string' && code !== '') return code;
  if (error instanceof AggregateError) return codeOf(error.errors[0], depth + 1);
  return codeOf(error.cause, depth + 1);
}

/**
 * The fault `error` is, or null when it is not an upstream's (a full cache disk, a refused file:
 * source, a final UpstreamFailed): those are handled, or rethrown, by the caller as they are.
 */
export function faultOf(error: unknown): { reason: string; retry: Retry } | null {
  if (error instanceof UpstreamFailed || error instanceof SandboxError || error instanceof FileSourceRefused) return null;
  if (error instanceof UpstreamFault) return { reason: error.reason, retry: error.retry };
  const code = codeOf(error);
  if (code !== null) {
    if (TLS_CODE.test(code)) return { reason: `TLS: ${code}`, retry: 'never' };
    const transient = TRANSIENT_CODES[code];
    if (transient !== undefined) return { reason: transient, retry: 'transient' };
    const timeout = TIMEOUT_CODES[code];
    if (timeout !== undefined) return { reason: timeout, retry: 'timeout' };
    if (code === 'ENOTFOUND') return { reason: 'host not found', retry: 'never' };
    if (/^(E[A-Z]+|UND_ERR_[A-Z_]+)$/.test(code)) return { reason: `network: ${code}`, retry: 'never' };
  }
  const message = error instanceof Error ? `${error.message}${error.cause instanceof Error ? `: ${error.cause.message}` : ''}` : String(error);
  return { reason: message.replace(/\/\/[^/@\s]*@/g, '//').slice(0, 200), retry: 'never' };
}

/**
 * Run `attempt` until it succeeds, with the backoff of `policy` between attempts of a transient
 * fault. Throws `UpstreamFailed` (naming `url`, already redacted) once the URL is given up, and
 * anything that is not an upstream fault, or any error once `signal` has fired, as it is.
 */
export async function withRetries<T>(url: string, signal: AbortSignal, policy: RetryPolicy, attempt: (n: number) => Promise<T>): Promise<T> {
  let timeouts = 0;
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error: unknown) {
      if (signal.aborted) throw error;
      const fault = faultOf(error);
      if (fault === null) throw error;
      if (fault.retry === 'timeout') timeouts++;
      if (fault.retry === 'never' || n >= policy.attempts || timeouts >= policy.maxTimeouts) throw new UpstreamFailed(url, fault.reason, n);
      await sleep(policy.backoffMs[Math.min(n - 1, policy.backoffMs.length - 1)] ?? 0, undefined, { signal });
    }
  }
}
