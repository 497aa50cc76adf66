import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FileSourceRefused, fileUpstreamRoot, isWithin, openFileSource, readBounded } from './file-source.js';
import { filenameBelongsTo, mediaType, PageTooLarge, parsePage, UPSTREAM_ACCEPT, type PageFilter, type UpstreamLink } from './pages.js';
import {
  faultOf,
  NotAnIndexPage,
  UpstreamFailed,
  UpstreamFault,
  UpstreamTimeout,
  UpstreamTooLarge,
  UpstreamTruncated,
  withRetries,
  type RetryPolicy,
} from './upstream-faults.js';

/** A URL with any `user:password@` removed, safe for logs and findings. Not-URLs are scrubbed too. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.href;
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}

/**
 * An abort signal that follows `parent` and fires after `timeoutMs`. Built by hand because on
 * Node 20 a signal from `AbortSignal.any([.., AbortSignal.timeout(ms)])` can be garbage-collected
 * while fetch waits, and then never fires (a hung upstream hangs the proxy). Here the timer and
 * the parent's listener hold the controller. Call `done()` to release both.
 */
export function deadline(parent: AbortSignal, timeoutMs: number, what: string): { signal: AbortSignal; done(): void } {
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(parent.reason);
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(
    () => controller.abort(new UpstreamTimeout(`${what}: no answer within ${timeoutMs} ms`, `timeout after ${timeoutMs} ms`)),
    timeoutMs,
  );
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * The throughput floor of a download once its headers are in: at least `minBytesPerSecond`,
 * averaged over each `windowMs` from the headers on. The idle timeout alone (a gap between two
 * chunks) never ends an upstream that sends one byte just before each timeout; this does.
 * 32 KiB/s over 30 s windows: 256 kbit/s, below a poor mobile link, so a real wheel on a slow link
 * passes (PyPI's 0.8 GB torch wheel takes 7 hours at the floor; at 1 Mbit/s it arrives at four
 * times the floor), while a drip is dropped within one window. A short stall is averaged away;
 * one longer than the idle timeout ends the download anyway. With the 4 GiB file cap the floor
 * also bounds a download's total time (36 hours), which the run's own timeout cuts far shorter.
 */
export const MIN_BYTES_PER_SECOND = 32 * 1024;
export const THROUGHPUT_WINDOW_MS = 30_000;

/** An upstream that answered but sends a body slower than the floor. The URL in the message is redacted. */
export class UpstreamTooSlow extends UpstreamFault {
  constructor(url: string, received: number, opts: { minBytesPerSecond: number; windowMs: number }) {
    super(
      `${redactUrl(url)}: ${received} bytes in ${opts.windowMs / 1000} s, below the minimum of ${opts.minBytesPerSecond} bytes/s over ${opts.windowMs / 1000} s; gave up`,
      `too slow: ${received} bytes in ${opts.windowMs / 1000} s`,
      'timeout',
    );
  }
}

/**
 * `body` as a Node stream that destroys itself with `UpstreamTooSlow` when a window ends with
 * fewer bytes than the floor. Bytes are counted as they are read, so a consumer that stops reading
 * is dropped too. Destroying the stream cancels the body, which closes the connection. With
 * `declaredBytes` (the Content-Length), a body that ends or breaks before it errors with
 * `UpstreamTruncated`, so a cut download is a transient fault, never a hash mismatch.
 */
export function withThroughputFloor(
  body: import('node:stream/web').ReadableStream<Uint8Array>,
  url: string,
  opts: { minBytesPerSecond: number; windowMs: number; declaredBytes?: number | null },
): Readable {
  let received = 0;
  let total = 0;
  const declared = opts.declaredBytes ?? null;
  const short = (): UpstreamTruncated | null => (declared !== null && total < declared ? new UpstreamTruncated(redactUrl(url), total, declared) : null);
  const reader = body.getReader();
  const counted = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let next: Awaited<ReturnType<typeof reader.read>>;
      try {
        next = await reader.read();
      } catch (error: unknown) {
        // A connection closed or reset mid-body: say how much of it came.
        controller.error((!(error instanceof UpstreamFault) && faultOf(error)?.retry === 'transient' && short()) || error);
        return;
      }
      if (next.done) {
        const cut = short();
        if (cut) controller.error(cut);
        else controller.close();
        return;
      }
      received += next.value.byteLength;
      total += next.value.byteLength;
      controller.enqueue(next.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
  const stream = Readable.fromWeb(counted as import('node:stream/web').ReadableStream<Uint8Array>);
  const floor = (opts.minBytesPerSecond * opts.windowMs) / 1000;
  const timer = setInterval(() => {
    if (received < floor) stream.destroy(new UpstreamTooSlow(url, received, opts));
    received = 0;
  }, opts.windowMs);
  // The timer must not keep the process alive on its own, and stops with the stream.
  timer.unref();
  stream.once('close', () => clearInterval(timer));
  return stream;
}

/** A page an upstream returned: its final URL (for resolving links) and the links on it. */
export interface UpstreamPage {
  /** The upstream base, redacted. */
  upstream: string;
  /** The page's own URL, redacted. */
  url: string;
  /** The response's content type (null for a file: page). */
  contentType: string | null;
  links: UpstreamLink[];
  /**
   * How many links on the page name a file of the project, kept or not. A 200 answer for a project
   * with none is not that project's index page (a login or error page, a captive portal).
   */
  projectFiles: number;
}

/** HTTP statuses worth another attempt: the server or a gateway in front of it failed, not the request. */
const TRANSIENT_STATUSES = new Set([500, 502, 503, 504]);

export class UpstreamHttpError extends UpstreamFault {
  constructor(
    readonly status: number,
    url: string,
  ) {
    super(`HTTP ${status} from ${redactUrl(url)}`, `HTTP ${status}`, TRANSIENT_STATUSES.has(status) ? 'transient' : 'never');
  }
}

const SUPPORTED = new Set(['http:', 'https:', 'file:']);

/** Reject index URLs the proxy cannot use. Returns the URL with credentials split off. */
export function parseUpstreamUrl(raw: string): URL {
  const url = new URL(raw);
  if (!SUPPORTED.has(url.protocol)) throw new Error(`unsupported index URL scheme ${url.protocol} in ${redactUrl(raw)}`);
  return url;
}

/**
 * Fetches pages and files from the configured upstreams. Credentials in index URLs are moved
 * into an `Authorization` header (fetch refuses URLs with credentials) and sent only to the same
 * origin, as pip does. Pages are bounded in size; files are returned as streams.
 */
export class UpstreamClient {
  private readonly auth = new Map<string, string>();
  /** Each `file:` link a page listed, with the roots of the `file://` upstreams that listed it: openFile reads nothing else. */
  private readonly fileRoots = new Map<string, string[]>();

  constructor(
    private readonly opts: {
      timeoutMs: number;
      maxPageBytes: number;
      userAgent: string;
      /** The throughput floor of file downloads; MIN_BYTES_PER_SECOND and THROUGHPUT_WINDOW_MS unless set (tests). */
      minBytesPerSecond?: number;
      throughputWindowMs?: number;
      /**
       * Retry transient faults of pages (upstream-faults.ts), and remember a page URL that failed
       * for the life of this client: a later fetch of it throws the same `UpstreamFailed` at once.
       * Without it, one attempt, and the error is thrown as it came.
       */
      retry?: RetryPolicy;
    },
  ) {}

  /** Page URLs (without credentials) given up this run: asked again, they fail at once. */
  private readonly failedPages = new Map<string, UpstreamFailed>();

  /** Remember credentials of `raw` for its origin and return the URL without them. */
  private strip(raw: string | URL): URL {
    const url = new URL(raw);
    if (url.username || url.password) {
      const user = decodeURIComponent(url.username);
      const pass = decodeURIComponent(url.password);
      this.auth.set(url.origin, `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`);
      url.username = '';
      url.password = '';
    }
    return url;
  }

  private headers(url: URL, accept: string): Record<string, string> {
    const h: Record<string, string> = { accept, 'user-agent': this.opts.userAgent };
    const auth = this.auth.get(url.origin);
    if (auth) h.authorization = auth;
    return h;
  }

  /**
   * The links an upstream lists for `project` (a normalised name), or null when the upstream
   * does not have the project (HTTP 404/410, no directory). Throws when the upstream cannot
   * answer. Links whose scheme is `file:` are kept only on `file:` upstreams, so an HTTP index
   * cannot make the proxy read local files, and `openFile` reads one only under the root of an
   * upstream whose page listed it (file-source.ts).
   *
   * Links are filtered while the page is parsed, so what is dropped is never held: with
   * `opts.projectFilesOnly` only files of `project` are kept (pip ignores the others), and only
   * what `opts.keep` accepts (a locked project's caller keeps its locked sha256s and versions). A
   * page keeping more than MAX_PAGE_LINKS throws PageTooLarge (pages.ts).
   */
  async fetchProject(
    indexUrl: string,
    project: string,
    signal: AbortSignal,
    opts: { projectFilesOnly?: boolean; keep?: (link: UpstreamLink) => boolean } = {},
  ): Promise<UpstreamPage | null> {
    const base = this.strip(parseUpstreamUrl(indexUrl));
    const pageUrl = new URL(`${base.href.replace(/\/+$/, '')}/${encodeURIComponent(project)}/`);
    const upstream = redactUrl(indexUrl);
    const shown = redactUrl(pageUrl.href);
    const root = base.protocol === 'file:' ? fileUpstreamRoot(fileURLToPath(base)) : null;
    const retry = this.opts.retry;
    if (retry === undefined) return this.readProject(pageUrl, root, project, signal, opts, upstream);
    const failed = this.failedPages.get(pageUrl.href);
    if (failed) throw failed;
    try {
      return await withRetries(shown, signal, retry, () => this.readProject(pageUrl, root, project, signal, opts, upstream));
    } catch (error: unknown) {
      if (error instanceof UpstreamFailed) this.failedPages.set(pageUrl.href, error);
      throw error;
    }
  }

  /** One attempt of fetchProject. */
  private async readProject(
    pageUrl: URL,
    root: string | null,
    project: string,
    signal: AbortSignal,
    opts: { projectFilesOnly?: boolean; keep?: (link: UpstreamLink) => boolean },
    upstream: string,
  ): Promise<UpstreamPage | null> {
    const got = root !== null ? await this.readFilePage(pageUrl, root) : await this.fetchHttpPage(pageUrl, signal);
    if (!got) return null;
    const schemeAllowed = (l: UpstreamLink): boolean => {
      const scheme = new URL(l.url).protocol;
      return scheme === 'http:' || scheme === 'https:' || (scheme === 'file:' && root !== null);
    };
    let projectFiles = 0;
    const keep = opts.keep;
    const filter: PageFilter = {
      keep: (l) => {
        if (filenameBelongsTo(project, l.filename)) projectFiles++;
        return schemeAllowed(l) && (keep === undefined || keep(l));
      },
    };
    if (opts.projectFilesOnly) filter.project = project;
    let parsed: UpstreamLink[];
    try {
      parsed = parsePage(got.text, got.contentType, got.url, filter);
    } catch (error: unknown) {
      if (error instanceof PageTooLarge) throw error;
      // Only the JSON parser throws: the body is not JSON, or JSON without a files list.
      const type = mediaType(got.contentType) ?? 'a body';
      throw new NotAnIndexPage(redactUrl(pageUrl.href), `${type} that is ${error instanceof SyntaxError ? 'not valid JSON' : 'JSON without a files list'}`);
    }
    const links = parsed.map((l) => ({ ...l, url: this.strip(l.url).href }));
    if (root !== null) for (const link of links) if (link.url.startsWith('file:')) this.allowFileUnder(link.url, root);
    return { upstream, url: redactUrl(pageUrl.href), contentType: got.contentType, links, projectFiles };
  }

  private allowFileUnder(url: string, root: string): void {
    const roots = this.fileRoots.get(url) ?? [];
    if (!roots.includes(root)) roots.push(root);
    this.fileRoots.set(url, roots);
  }

  /** One deadline (`timeoutMs`) covers the whole page, headers and body, so a dripping page ends there too. */
  private async fetchHttpPage(url: URL, parent: AbortSignal): Promise<{ text: string; contentType: string | null; url: string } | null> {
    const limit = deadline(parent, this.opts.timeoutMs, redactUrl(url.href));
    try {
      const res = await fetch(url, { headers: this.headers(url, UPSTREAM_ACCEPT), redirect: 'follow', signal: limit.signal });
      if (res.status === 404 || res.status === 410) {
        await res.body?.cancel();
        return null;
      }
      if (!res.ok || !res.body) {
        await res.body?.cancel();
        throw new UpstreamHttpError(res.status, url.href);
      }
      const tooBig = new UpstreamTooLarge(
        `page ${redactUrl(url.href)} is larger than ${this.opts.maxPageBytes} bytes`,
        `larger than ${this.opts.maxPageBytes} bytes`,
      );
      if (Number(res.headers.get('content-length') ?? '0') > this.opts.maxPageBytes) {
        await res.body.cancel();
        throw tooBig;
      }
      const chunks: Uint8Array[] = [];
      let size = 0;
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        size += chunk.byteLength;
        if (size > this.opts.maxPageBytes) throw tooBig;
        chunks.push(chunk);
      }
      return { text: Buffer.concat(chunks).toString('utf8'), contentType: res.headers.get('content-type'), url: res.url || url.href };
    } finally {
      limit.done();
    }
  }

  /**
   * pip reads `<dir>/index.html` when a `file:` page URL is a directory. Read under `root` only, and
   * only a regular file (file-source.ts). Links resolve against the page's URL, not the path a
   * symlinked page resolves to, as in pip.
   */
  private async readFilePage(url: URL, root: string): Promise<{ text: string; contentType: string | null; url: string } | null> {
    const dir = fileURLToPath(url);
    for (const candidate of [path.join(dir, 'index.html'), dir.replace(/\/+$/, '')]) {
      const shown = redactUrl(pathToFileURL(candidate).href);
      const source = await openFileSource(candidate, root, shown);
      if (source.kind !== 'file') continue;
      try {
        if (source.size > this.opts.maxPageBytes) {
          throw new UpstreamTooLarge(`page ${shown} is larger than ${this.opts.maxPageBytes} bytes`, `larger than ${this.opts.maxPageBytes} bytes`);
        }
        const text = (await readBounded(source.handle, this.opts.maxPageBytes, shown)).toString('utf8');
        return { text, contentType: null, url: pathToFileURL(candidate).href };
      } finally {
        await source.handle.close();
      }
    }
    return null;
  }

  /**
   * A `file:` link a page listed, under the root of an upstream that listed it. Throws
   * `FileSourceRefused` for anything else, and for what is not a regular file.
   */
  private async openFileUrl(url: URL): Promise<{ stream: Readable; size: number }> {
    const shown = redactUrl(url.href);
    const file = fileURLToPath(url);
    const roots = this.fileRoots.get(url.href) ?? [];
    const root = roots.find((r) => isWithin(file, r)) ?? roots[0];
    if (root === undefined) throw new FileSourceRefused(`${shown} was not listed by a file:// index page; not read`);
    const source = await openFileSource(file, root, shown);
    // The path under the mirror only: the report says which file is missing, not where the mirror is.
    if (source.kind === 'missing') throw new UpstreamFault(`${shown}: no such file`, `file: missing ${path.relative(root, file)}`, 'never');
    if (source.kind === 'directory') throw new FileSourceRefused(`${shown} is not a regular file (a directory); not read`);
    return { stream: source.handle.createReadStream({ highWaterMark: 64 * 1024 }), size: source.size };
  }

  /**
   * Open a file for download. The returned stream is not verified: the caller hashes it. The
   * connect/header phase is bounded by the timeout; after it, the body errors with
   * `UpstreamTooSlow` below the throughput floor. The body's idle time is the caller's job.
   */
  async openFile(rawUrl: string, signal: AbortSignal): Promise<{ stream: Readable; size: number | null }> {
    const url = this.strip(rawUrl);
    if (url.protocol === 'file:') return this.openFileUrl(url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`unsupported file URL scheme ${url.protocol}`);
    // The timer covers connecting and the headers; the caller bounds idle time on the body. After
    // the headers the request only follows `signal` (the proxy closing).
    const connect = new AbortController();
    const onAbort = (): void => connect.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(
      () => connect.abort(new UpstreamTimeout(`${redactUrl(url.href)}: no answer within ${this.opts.timeoutMs} ms`, `timeout after ${this.opts.timeoutMs} ms`)),
      this.opts.timeoutMs,
    );
    try {
      const res = await fetch(url, { headers: this.headers(url, '*/*'), redirect: 'follow', signal: connect.signal });
      if (!res.ok || !res.body) {
        await res.body?.cancel();
        throw new UpstreamHttpError(res.status, url.href);
      }
      const length = res.headers.get('content-length');
      // A compressed body's length is not the file's: fetch hands over the decoded bytes.
      const declared = length !== null && /^\d+$/.test(length) ? Number(length) : null;
      const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
      const stream = withThroughputFloor(res.body as import('node:stream/web').ReadableStream<Uint8Array>, url.href, {
        minBytesPerSecond: this.opts.minBytesPerSecond ?? MIN_BYTES_PER_SECOND,
        windowMs: this.opts.throughputWindowMs ?? THROUGHPUT_WINDOW_MS,
        declaredBytes: encoded ? null : declared,
      });
      stream.once('close', () => signal.removeEventListener('abort', onAbort));
      return { stream, size: declared };
    } catch (error: unknown) {
      signal.removeEventListener('abort', onAbort);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }
}
