import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, unlink, type FileHandle } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { EnvironmentError, InputError } from '../errors.js';
import type { LockPlan } from '../lock/types.js';
import type { BuildPin } from '../lock/build-pins.js';
import { SANDBOX_PYTHON_VERSION, sandboxPython, wheelSupported } from '../lock/wheel-tags.js';
import { finding, type Finding } from '../core/finding.js';
import { newestUsableRelease } from './build-choice.js';
import { ContentCache, type IngestResult } from './cache.js';
import { FileSourceRefused } from './file-source.js';
import { forEachLimited } from './limit.js';
import { canonicalVersion, isSafeFilename, isValidProjectName, normalizeName, SHA256_HEX, versionFromFilename } from './names.js';
import {
  CONTENT_TYPES,
  etagOf,
  listable,
  matchesIfNoneMatch,
  mediaType,
  negotiate,
  renderIndexHtml,
  renderIndexJson,
  renderProjectHtml,
  renderProjectJson,
  type PageFile,
  type PageFormat,
  type UpstreamLink,
} from './pages.js';
import type { Upstreams } from './upstream.js';
import { parseUpstreamUrl, redactUrl, UpstreamClient, type UpstreamPage } from './upstream-client.js';
import { DEFAULT_RETRY, UpstreamFailed, UpstreamTooLarge, withRetries, type RetryPolicy } from './upstream-faults.js';

export interface ProxyRequestRecord {
  /** ISO 8601 time the request arrived. */
  time: string;
  method: string;
  /** The raw request target, truncated. */
  path: string;
  status: number;
  /** Body bytes sent. */
  bytes: number;
  ms: number;
}

export interface ServedFile {
  project: string;
  filename: string;
  sha256: string;
  size: number;
  /** false for build requirements, pinned (`buildPins`) or not (`buildAllow`). */
  locked: boolean;
  /** The verified copy in the content-addressed cache, on the host. */
  cachePath: string;
}

export interface IndexProxy extends AsyncDisposable {
  /** Where it listens: a unix socket path, or `http://127.0.0.1:<port>`. */
  readonly address: string;
  /** The lists below fill in as requests complete; they are final once close() has resolved. */
  readonly requests: ProxyRequestRecord[];
  readonly findings: Finding[];
  /** Each distinct file whose body was sent in full, once. */
  readonly served: ServedFile[];
  /**
   * The first problem of this machine the proxy hit while serving (the cache's disk too full for
   * a download), or null. pip only sees a 502; a run that has one should fail with it (exit 3).
   */
  readonly environmentError: EnvironmentError | null;
  /**
   * Locked mode, before any container: every locked project's page is read and every locked file
   * the sandbox's interpreter could install is in the cache, verified; so are the build pins' files,
   * and the newest usable release of each unpinned build requirement. From then on pages and files
   * are served from that alone; nothing more is asked upstream. Throws an
   * EnvironmentError naming the upstream, project and file when an upstream cannot give one. A
   * hash mismatch or a refused `file:` source is a finding, and that file is left off the page.
   * Does nothing in unlocked mode.
   */
  prefetch(signal: AbortSignal): Promise<PrefetchSummary>;
  close(): Promise<void>;
}

export interface PrefetchSummary {
  projects: number;
  /** Locked files in the cache and listed (already cached, or downloaded now). */
  files: number;
  /** Of those, downloaded now. */
  downloaded: number;
  downloadedBytes: number;
  /** Locked files left off: wheels the sandbox cannot install, or bytes that did not verify. */
  skipped: number;
}

export interface StartProxyOptions {
  plan: LockPlan;
  upstreams: Upstreams;
  /** Content-addressed: `<cacheDir>/sha256/<hex>`; reused across runs. */
  cacheDir: string;
  /** A unix socket (made usable by any uid), or loopback TCP; port 0 picks a free port. */
  listen: { socketPath: string } | { host: '127.0.0.1'; port: number };
  /**
   * Build requirements under build isolation (pip #11974), served although not locked. Pinned ones
   * are held to their sha256 like locked files and prefetched with them. An unpinned name (the
   * explicit opt-in) is served as its newest usable release, chosen and fetched by prefetch();
   * each file of one served is marked `integrity.build-requirement`. Empty when nothing is built.
   */
  buildPins?: BuildPin[];
  buildAllow: string[];
  /**
   * The Python release an unpinned build requirement's Requires-Python is held to: the image's own.
   * pip installs build requirements in a subprocess on the image's interpreter (never through
   * images/pip-as.py), for the build that interpreter runs. Default SANDBOX_PYTHON_VERSION.
   */
  buildPython?: string;
  logger: Logger;
  /** Bound on connecting to an upstream and on each wait for data. Default 20 s. */
  upstreamTimeoutMs?: number;
  /** Largest file the proxy downloads. Default 4 GiB. */
  maxFileBytes?: number;
  /** Requests whose target this says yes to are refused and recorded, never forwarded (a canary in the path). */
  refuseTarget?: (target: string) => boolean;
  /**
   * Investigate mode: serve any well-formed project (its hashed files, as for build requirements),
   * unhashed by the lock, and record what was served. Still never forwards anything but a project
   * page or file request, and never a query string or a header of the client's.
   */
  unlocked?: boolean;
  /** Files on the host served as the only files of their project (investigate a local wheel or sdist). */
  localFiles?: LocalFile[];
  /** Retries of transient upstream faults, per page and file URL (upstream-faults.ts). DEFAULT_RETRY unless set (tests). */
  retry?: RetryPolicy;
}

export interface LocalFile {
  /** Normalised project name. */
  project: string;
  filename: string;
  /** Where it is on the host. */
  path: string;
}

const DEFAULT_TIMEOUT_MS = 20_000;
/**
 * 4 GiB: above the largest wheels in use (torch's CUDA-bundling builds on download.pytorch.org
 * reached 2.3 GB; PyPI's torch wheels are about 0.8 GB), so no real wheel is refused, while a
 * hostile or broken upstream streaming without end stops there. Free space is checked as well.
 */
const DEFAULT_MAX_FILE_BYTES = 4 * 1024 ** 3;
const MAX_PAGE_BYTES = 64 * 1024 * 1024;
const MAX_UNLOCKED_FINDINGS = 1000;
/** Requests the log keeps; past it they are not recorded, and the log warns once. */
export const MAX_REQUEST_RECORDS = 100_000;
const MAX_PATH_CHARS = 2048;
/**
 * Pages and downloads in flight during prefetch. bench/locks/stack.lock (128 files, 177 MB) from
 * this machine's file:// mirror into a cold cache: 1.2-1.5 s one at a time, 0.92-1.16 s at 4,
 * 0.89-0.94 s at 8 (hashing and disk bound). Over a network the gain is larger; 4 keeps the load
 * on an upstream polite, as pip's own one-at-a-time downloads were.
 */
const PREFETCH_CONCURRENCY = 4;

/** Start the index proxy. It serves only what `plan` locks, plus `buildAllow` names. */
export async function startProxy(opts: StartProxyOptions): Promise<IndexProxy> {
  const proxy = new ProxyServer(opts);
  await proxy.start();
  return proxy;
}

interface KnownFile {
  project: string;
  filename: string;
  sha256: string;
  /** Upstream URLs without credentials, tried in order. */
  urls: string[];
  locked: boolean;
}

interface RequestContext {
  method: string;
  path: string;
  bytes: number;
}

type DownloadOutcome = { kind: 'ok'; bytes: number } | { kind: 'mismatch' } | { kind: 'refused' } | { kind: 'failed'; reason: string };

/** A locked page or file no upstream gave, as install.upstream-failed records it. All URLs redacted. */
interface UpstreamFailure {
  upstream: string;
  url: string;
  project: string;
  filename?: string;
  reason: string;
  attempts: number;
}

class NoUpstreamAnswered extends Error {}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${(error.cause as NodeJS.ErrnoException).code ?? error.cause.message}` : '';
  return `${error.message}${cause}`;
}

class ProxyServer implements IndexProxy {
  address = '';
  readonly requests: ProxyRequestRecord[] = [];
  readonly findings: Finding[] = [];
  readonly served: ServedFile[] = [];
  environmentError: EnvironmentError | null = null;

  private readonly log: Logger;
  private readonly server: http.Server;
  private readonly cache: ContentCache;
  private readonly client: UpstreamClient;
  private readonly upstreamUrls: string[];
  private readonly timeoutMs: number;
  private readonly maxFileBytes: number;
  private readonly retry: RetryPolicy;
  private readonly abort = new AbortController();

  /** Lock facts by normalised name. */
  private readonly lockedHashes = new Map<string, Set<string>>();
  private readonly lockedVersions = new Map<string, Map<string, string[]>>();
  private readonly lockedShaOwner = new Map<string, string>();
  private readonly buildAllow: Set<string>;
  /** The sha256 of build pins that no lock entry has: served as build requirements, not as locked files. */
  private readonly buildOnlyShas = new Set<string>();
  private readonly refuseTarget: (target: string) => boolean;
  private readonly unlocked: boolean;

  /** Per-run state. */
  private readonly listings = new Map<string, Promise<PageFile[]>>();
  private readonly localListings = new Map<string, PageFile[]>();
  private readonly known = new Map<string, KnownFile>();
  private readonly downloads = new Map<string, Promise<DownloadOutcome>>();
  private readonly pageMismatchKeys = new Set<string>();
  private readonly refusedSourceKeys = new Set<string>();
  private readonly servedShas = new Set<string>();
  private readonly warnedUpstreams = new Set<string>();
  /** The upstream (redacted) whose page first listed each file URL: the one a failed download is blamed on. */
  private readonly linkUpstream = new Map<string, string>();
  /** File URLs given up this run: pip retries a 502 five times, and each retry fails at once. */
  private readonly failedFiles = new Map<string, UpstreamFailed>();
  /** One install.upstream-failed per (upstream, url). */
  private readonly upstreamFailureKeys = new Set<string>();
  private unlockedFindings = 0;
  private truncation: Finding | null = null;
  private droppedRequests = 0;
  private closing: Promise<void> | null = null;
  /**
   * Set once prefetch() has run: the sha256 of every locked file in the cache and on its page.
   * A locked sha256 not in it is refused; none is fetched again.
   */
  private prefetched: Set<string> | null = null;
  /** Request handlers still running; close() waits for them so the records are complete. */
  private readonly active = new Set<Promise<void>>();

  constructor(private readonly opts: StartProxyOptions) {
    this.log = opts.logger.child({ component: 'proxy' });
    this.timeoutMs = opts.upstreamTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.cache = new ContentCache(opts.cacheDir, { logger: this.log });
    this.client = new UpstreamClient({ timeoutMs: this.timeoutMs, maxPageBytes: MAX_PAGE_BYTES, userAgent: 'sandbox-install-proxy', retry: this.retry });
    this.upstreamUrls = [...new Set([opts.upstreams.indexUrl, ...opts.upstreams.extraIndexUrls])];
    for (const u of this.upstreamUrls) {
      try {
        parseUpstreamUrl(u);
      } catch (error: unknown) {
        throw new InputError('proxy-upstream', `cannot use index URL ${redactUrl(u)}: ${describe(error)}`, {
          cause: error,
          hint: 'index URLs must be http://, https:// or file://',
        });
      }
    }
    const lockShas = new Set(opts.plan.requirements.flatMap((req) => req.sha256.map((sha) => sha.toLowerCase())));
    for (const pin of opts.buildPins ?? []) for (const sha of pin.sha256) if (!lockShas.has(sha.toLowerCase())) this.buildOnlyShas.add(sha.toLowerCase());
    // A build pin is held to its sha256 like a lock entry: the same page filter, mismatch check and prefetch.
    for (const req of [...opts.plan.requirements, ...(opts.buildPins ?? [])]) {
      const name = normalizeName(req.name);
      const hashes = this.lockedHashes.get(name) ?? new Set<string>();
      const versions = this.lockedVersions.get(name) ?? new Map<string, string[]>();
      const version = canonicalVersion(req.version);
      const forVersion = versions.get(version) ?? [];
      for (const raw of req.sha256) {
        const sha = raw.toLowerCase();
        hashes.add(sha);
        if (!forVersion.includes(sha)) forVersion.push(sha);
        if (!this.lockedShaOwner.has(sha)) this.lockedShaOwner.set(sha, name);
      }
      versions.set(version, forVersion);
      this.lockedHashes.set(name, hashes);
      this.lockedVersions.set(name, versions);
    }
    this.buildAllow = new Set(opts.buildAllow.map(normalizeName).filter((name) => !this.lockedHashes.has(name)));
    this.refuseTarget = opts.refuseTarget ?? (() => false);
    this.unlocked = opts.unlocked ?? false;
    this.server = http.createServer((req, res) => this.onRequest(req, res));
  }

  async start(): Promise<void> {
    try {
      await this.cache.init();
    } catch (error: unknown) {
      if (error instanceof EnvironmentError) throw error;
      throw new EnvironmentError('proxy-cache', `cannot create the proxy cache in ${this.opts.cacheDir}: ${describe(error)}`, { cause: error });
    }
    for (const local of this.opts.localFiles ?? []) await this.addLocalFile(local);
    const listen = this.opts.listen;
    if ('socketPath' in listen) await removeStaleSocket(listen.socketPath);
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.server.once('error', onError);
      const done = (): void => {
        this.server.off('error', onError);
        resolve();
      };
      if ('socketPath' in listen) this.server.listen(listen.socketPath, done);
      else this.server.listen(listen.port, listen.host, done);
    }).catch((error: unknown) => {
      throw new EnvironmentError('proxy-listen', `index proxy cannot listen: ${describe(error)}`, { cause: error });
    });
    try {
      if ('socketPath' in listen) {
        // pip runs as another uid and reaches the socket through a relay.
        await chmod(listen.socketPath, 0o666);
        this.address = listen.socketPath;
      } else {
        this.address = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
      }
    } catch (error: unknown) {
      await this.close();
      throw new EnvironmentError('proxy-listen', `index proxy cannot open its socket to other users: ${describe(error)}`, { cause: error });
    }
    this.log.info({ address: this.address, upstreams: this.upstreamUrls.map(redactUrl), locked: this.lockedHashes.size }, 'index proxy listening');
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.abort.abort(new Error('index proxy closed'));
      await new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeAllConnections();
      });
      await Promise.allSettled([...this.downloads.values(), ...this.active]);
      this.log.debug({ requests: this.requests.length, findings: this.findings.length }, 'index proxy closed');
    })();
    return this.closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** A host file into the cache, listed as its project's only file: nothing upstream is asked for it. */
  private async addLocalFile(local: LocalFile): Promise<void> {
    if (!isSafeFilename(local.filename) || !isValidProjectName(local.project)) {
      throw new InputError('proxy-local-file', `cannot serve ${JSON.stringify(local.filename)} as ${JSON.stringify(local.project)}`);
    }
    let sha256: string;
    try {
      sha256 = await sha256Of(local.path);
      const ingested = await this.cache.ingest(sha256, createReadStream(local.path), { maxBytes: this.maxFileBytes, idleTimeoutMs: this.timeoutMs });
      if (!ingested.ok) throw new Error('the file changed while it was read');
    } catch (error: unknown) {
      throw new InputError('proxy-local-file', `cannot read ${local.path}: ${describe(error)}`, { cause: error });
    }
    const project = normalizeName(local.project);
    this.known.set(sha256, { project, filename: local.filename, sha256, urls: [], locked: false });
    const listed = this.localListings.get(project) ?? [];
    listed.push({ filename: local.filename, sha256, requiresPython: null, yanked: null });
    this.localListings.set(project, listed);
    this.listings.set(project, Promise.resolve(listed));
  }

  // -------------------------------------------------------------------------------------------
  // Prefetch

  async prefetch(signal: AbortSignal): Promise<PrefetchSummary> {
    const summary: PrefetchSummary = { projects: 0, files: 0, downloaded: 0, downloadedBytes: 0, skipped: 0 };
    if (this.unlocked || this.prefetched) return summary;
    const started = performance.now();
    const target = sandboxPython();
    const projects = [...this.lockedHashes.keys()].sort();
    summary.projects = projects.length;
    const pages = new Map<string, PageFile[]>();
    // The same listing() pip's page requests used before: its upstream order, early stop,
    // mismatch findings and install.upstream-failed are unchanged.
    await forEachLimited(projects, PREFETCH_CONCURRENCY, signal, async (project) => {
      try {
        pages.set(project, await this.listing(project));
      } catch (error: unknown) {
        if (!(error instanceof NoUpstreamAnswered)) throw error;
        throw new EnvironmentError('upstream.unreachable', `cannot prefetch the page of ${project}: no upstream answered (${error.message})`, {
          cause: error,
          hint: 'check the index URL (sandbox-install doctor); nothing was started',
        });
      }
    });
    // An unpinned build requirement (the policy's explicit opt-in) is its newest usable release,
    // chosen here from its page alone: what runs in the sandbox cannot pick which version is asked for.
    const unpinned = [...this.buildAllow].sort();
    summary.projects += unpinned.length;
    await forEachLimited(unpinned, PREFETCH_CONCURRENCY, signal, async (project) => {
      let files: PageFile[];
      try {
        files = await this.listing(project);
      } catch (error: unknown) {
        if (!(error instanceof NoUpstreamAnswered)) throw error;
        throw new EnvironmentError(
          'upstream.unreachable',
          `cannot prefetch the page of build requirement ${project}: no upstream answered (${error.message})`,
          {
            cause: error,
            hint: 'check the index URL (sandbox-install doctor); nothing was started',
          },
        );
      }
      const chosen = newestUsableRelease(project, files, target, this.opts.buildPython ?? SANDBOX_PYTHON_VERSION);
      if (chosen.length === 0) this.log.warn({ project }, 'no release of an allowed build requirement is usable here; its page will list nothing');
      pages.set(project, chosen);
    });
    // A multi-platform lock names wheels for every platform and Python; pip in the sandbox can take
    // only those for its own interpreter (numpy locks about 40 wheels, 1 of them installable here).
    const wanted: Array<{ project: string; file: PageFile }> = [];
    for (const [project, files] of pages) {
      for (const file of files) {
        if (kindIsWheel(file.filename) && !wheelSupported(file.filename, target)) summary.skipped++;
        else wanted.push({ project, file });
      }
    }
    const ready = new Set<string>();
    await forEachLimited(wanted, PREFETCH_CONCURRENCY, signal, async ({ project, file }) => {
      const known = this.known.get(file.sha256);
      if (!known) throw new Error(`${file.filename} is on the ${project} page but not known`);
      const cached = await this.cache.open(file.sha256);
      if (cached) {
        await cached.handle.close();
        ready.add(file.sha256);
        return;
      }
      const outcome = await this.download(known);
      if (outcome.kind === 'ok') {
        ready.add(file.sha256);
        summary.downloaded++;
        summary.downloadedBytes += outcome.bytes;
        return;
      }
      // Recorded as integrity.hash-mismatch / integrity.upstream-refused, judged with the run: the
      // file is left off its page, so pip cannot ask for it.
      if (outcome.kind === 'mismatch' || outcome.kind === 'refused') {
        summary.skipped++;
        return;
      }
      if (this.environmentError) throw this.environmentError;
      signal.throwIfAborted();
      const upstreams = [...new Set(known.urls.map((url) => this.linkUpstream.get(url) ?? redactUrl(new URL(url).origin)))].join(', ');
      throw new EnvironmentError(
        'upstream.download-failed',
        `cannot prefetch ${file.filename} of ${project} from ${upstreams || 'any upstream'}: ${outcome.reason}`,
        { hint: 'check the index URL (sandbox-install doctor); nothing was started' },
      );
    });
    for (const [project, files] of pages) {
      const kept = files.filter((file) => ready.has(file.sha256));
      this.listings.set(project, Promise.resolve(kept));
    }
    summary.files = ready.size;
    this.prefetched = ready;
    this.log.info({ ...summary, ms: Math.round(performance.now() - started) }, 'prefetched every locked page and file');
    return summary;
  }

  // -------------------------------------------------------------------------------------------
  // Request plumbing

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const started = performance.now();
    const time = new Date().toISOString();
    const ctx: RequestContext = { method: req.method ?? '', path: (req.url ?? '').slice(0, MAX_PATH_CHARS), bytes: 0 };
    res.once('close', () => {
      const record: ProxyRequestRecord = {
        time,
        method: ctx.method,
        path: ctx.path,
        status: res.statusCode,
        bytes: ctx.bytes,
        ms: Math.round((performance.now() - started) * 10) / 10,
      };
      if (this.requests.length < MAX_REQUEST_RECORDS) this.requests.push(record);
      else if (this.droppedRequests++ === 0) this.log.warn({ limit: MAX_REQUEST_RECORDS }, 'request log full; further requests are not recorded');
      this.log.debug(record, 'proxy request');
    });
    const handling = this.route(req, res, ctx).catch((error: unknown) => {
      this.log.error({ err: describe(error), path: ctx.path }, 'index proxy request failed');
      if (!res.headersSent) this.sendText(req, res, ctx, 500, 'internal error\n');
      else res.destroy();
    });
    this.active.add(handling);
    void handling.finally(() => this.active.delete(handling));
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext): Promise<void> {
    const target = req.url ?? '';
    const isRead = ctx.method === 'GET' || ctx.method === 'HEAD';
    // pip never sends a query string (the pages we serve carry none); one from the sandbox is data
    // looking for a way out, and is refused and recorded like any unlocked request.
    if (target.includes('?') || this.refuseTarget(target)) return this.refuse(req, res, ctx, isRead ? 404 : 405, null);
    const pathname = target.startsWith('/') ? target : null;

    if (pathname === '/simple') {
      if (!isRead) return this.refuse(req, res, ctx, 405, null);
      return this.redirect(req, res, ctx, '/simple/');
    }
    if (pathname === '/simple/') {
      if (!isRead) return this.refuse(req, res, ctx, 405, null);
      return this.serveIndex(req, res, ctx);
    }
    const project = pathname === null ? null : /^\/simple\/([^/]+)(\/?)$/.exec(pathname);
    if (project?.[1] !== undefined) {
      const name = safeDecode(project[1]);
      if (name === null || !isValidProjectName(name)) return this.refuse(req, res, ctx, 404, null);
      const norm = normalizeName(name);
      if (!this.unlocked && !this.lockedHashes.has(norm) && !this.buildAllow.has(norm)) return this.refuse(req, res, ctx, 404, norm);
      if (!isRead) return this.refuse(req, res, ctx, 405, norm);
      if (name !== norm || project[2] !== '/') return this.redirect(req, res, ctx, `/simple/${norm}/`);
      return this.serveProject(req, res, ctx, norm);
    }
    const file = pathname === null ? null : /^\/files\/([^/]+)\/([^/]+)$/.exec(pathname);
    if (file?.[1] !== undefined && file[2] !== undefined) {
      const filename = safeDecode(file[2]);
      if (!SHA256_HEX.test(file[1]) || filename === null) return this.refuse(req, res, ctx, 404, null);
      if (!isRead) return this.refuse(req, res, ctx, 405, this.known.get(file[1])?.project ?? null);
      return this.serveFile(req, res, ctx, file[1], filename);
    }
    return this.refuse(req, res, ctx, isRead ? 404 : 405, null);
  }

  /** Refuse and record: the proxy answers nothing it was not asked to serve by the lock. */
  private refuse(req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext, status: 404 | 405, project: string | null): void {
    this.addFinding(
      finding(
        'integrity.unlocked-request',
        'high',
        project === null ? `refused ${ctx.method} for a path the lock does not cover` : `refused ${ctx.method} for ${project}, which the lock does not cover`,
        { method: ctx.method, path: ctx.path, project, time: new Date().toISOString() },
      ),
    );
    if (status === 405) {
      res.setHeader('allow', 'GET, HEAD');
      // Do not read a request body we will never use.
      res.setHeader('connection', 'close');
    }
    this.sendText(req, res, ctx, status, status === 404 ? 'not in the lock\n' : 'method not allowed\n');
  }

  private addFinding(f: Finding): void {
    if (f.rule !== 'integrity.unlocked-request') {
      this.findings.push(f);
      return;
    }
    // A flood of refused requests must not grow memory without bound, nor push out other rules.
    if (this.unlockedFindings < MAX_UNLOCKED_FINDINGS) {
      this.unlockedFindings++;
      this.findings.push(f);
      return;
    }
    if (!this.truncation) {
      this.truncation = finding('integrity.unlocked-request', 'high', `more than ${MAX_UNLOCKED_FINDINGS} refused requests; the rest are counted, not listed`, {
        truncated: true,
        limit: MAX_UNLOCKED_FINDINGS,
        dropped: 0,
      });
      this.findings.push(this.truncation);
    }
    this.truncation.evidence.dropped = (this.truncation.evidence.dropped as number) + 1;
  }

  private redirect(req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext, location: string): void {
    res.setHeader('location', location);
    this.sendText(req, res, ctx, 301, `moved to ${location}\n`);
  }

  private sendText(req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext, status: number, text: string): void {
    this.sendBody(req, res, ctx, status, 'text/plain; charset=utf-8', Buffer.from(text));
  }

  private sendBody(req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext, status: number, type: string, body: Buffer): void {
    res.statusCode = status;
    res.setHeader('content-type', type);
    res.setHeader('content-length', body.length);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    ctx.bytes += body.length;
    res.end(body);
  }

  private sendPage(req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext, format: PageFormat, text: string): void {
    const body = Buffer.from(text);
    const etag = etagOf(body);
    res.setHeader('vary', 'Accept');
    res.setHeader('etag', etag);
    res.setHeader('cache-control', 'max-age=0, must-revalidate');
    if (matchesIfNoneMatch(req.headers['if-none-match'], etag)) {
      res.statusCode = 304;
      res.end();
      return;
    }
    this.sendBody(req, res, ctx, 200, CONTENT_TYPES[format], body);
  }

  // -------------------------------------------------------------------------------------------
  // Pages

  private serveIndex(req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext): void {
    const names = [...this.lockedHashes.keys()].sort();
    const format = negotiate(req.headers.accept);
    this.sendPage(req, res, ctx, format, format === 'json' ? renderIndexJson(names) : renderIndexHtml(names));
  }

  private async serveProject(req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext, project: string): Promise<void> {
    let files: PageFile[];
    try {
      files = await this.listing(project);
    } catch (error: unknown) {
      if (!(error instanceof NoUpstreamAnswered)) throw error;
      this.log.error({ project, err: error.message }, 'no upstream answered for a locked project');
      this.sendText(req, res, ctx, 502, `no upstream index answered for ${project}: ${error.message}\n`);
      return;
    }
    const format = negotiate(req.headers.accept);
    this.sendPage(req, res, ctx, format, format === 'json' ? renderProjectJson(project, files) : renderProjectHtml(project, files));
  }

  /** The filtered file list for a project, fetched once per run from all upstreams at once. */
  private listing(project: string): Promise<PageFile[]> {
    let pending = this.listings.get(project);
    // After prefetch a page is what it read; a name it did not cover is never read now.
    if (!pending && this.prefetched) return Promise.reject(new NoUpstreamAnswered('not prefetched'));
    if (!pending) {
      pending = this.buildListing(project);
      this.listings.set(project, pending);
      // A failure is remembered for the run too: each upstream failed after its own retries
      // (upstream-faults.ts), and pip's retries of the 502 must not start them again.
      pending.catch(() => undefined);
    }
    return pending;
  }

  /**
   * Ask every upstream at once. For a locked name, stop waiting as soon as the answers so far
   * list every locked sha256: a slow or dead upstream then costs nothing. Otherwise wait for all,
   * and fail only when none answered.
   */
  private async buildListing(project: string): Promise<PageFile[]> {
    const lockHashes = this.lockedHashes.get(project);
    // Follows close(); aborted early once every locked sha256 has been seen.
    const enough = new AbortController();
    const onClose = (): void => enough.abort(this.abort.signal.reason);
    this.abort.signal.addEventListener('abort', onClose, { once: true });
    const signal = enough.signal;
    const found = new Set<string>();
    const pages: UpstreamPage[] = [];
    const failures: Array<{ upstream: string; error: string; failed: UpstreamFailed | null }> = [];
    let answered = 0;
    // A locked page keeps, as it is read, only the links lockedFiles can use (a locked sha256, or a
    // locked version's other files for the mismatch check): a page of half a million links stays small.
    const byVersion = this.lockedVersions.get(project);
    const keep = lockHashes
      ? (link: UpstreamLink): boolean => {
          if (link.sha256 !== null && lockHashes.has(link.sha256)) return true;
          const version = versionFromFilename(project, link.filename);
          return version !== null && byVersion?.has(canonicalVersion(version)) === true;
        }
      : undefined;
    await Promise.all(
      this.upstreamUrls.map(async (url) => {
        try {
          const page = await this.client.fetchProject(url, project, signal, keep ? { keep } : {});
          answered++;
          if (!page) return;
          pages.push(page);
          for (const link of page.links) if (link.sha256 !== null) found.add(link.sha256);
          if (lockHashes && [...lockHashes].every((h) => found.has(h))) enough.abort();
        } catch (error: unknown) {
          if (!enough.signal.aborted || this.abort.signal.aborted) {
            failures.push({ upstream: redactUrl(url), error: describe(error), failed: error instanceof UpstreamFailed ? error : null });
          }
        }
      }),
    );
    this.abort.signal.removeEventListener('abort', onClose);
    if (answered === 0) {
      if (lockHashes && !this.abort.signal.aborted) this.recordPageFailures(project, failures, []);
      throw new NoUpstreamAnswered(failures.map((f) => `${f.upstream}: ${f.error}`).join('; '));
    }
    for (const failure of failures) {
      // A dead default index would otherwise warn once per project.
      const first = !this.warnedUpstreams.has(failure.upstream);
      this.warnedUpstreams.add(failure.upstream);
      this.log[first ? 'warn' : 'debug']({ project, ...failure }, 'an upstream index did not answer; using the others');
    }
    // Keep upstream order (index first) so the first URL tried for a file is the index's.
    const order = new Map(this.upstreamUrls.map((u, i) => [redactUrl(u), i]));
    pages.sort((a, b) => (order.get(a.upstream) ?? 0) - (order.get(b.upstream) ?? 0));
    for (const page of pages) for (const link of page.links) if (!this.linkUpstream.has(link.url)) this.linkUpstream.set(link.url, page.upstream);
    const links = pages.flatMap((p) => p.links);
    const files = lockHashes ? this.lockedFiles(project, links, lockHashes) : this.buildFiles(project, links);
    if (lockHashes && files.length === 0) {
      this.log.warn({ project }, 'no upstream lists a file with a locked sha256');
      if (!this.abort.signal.aborted) this.recordPageFailures(project, failures, pages);
      // No upstream answered as an index (each failed, or sent a page naming no file of the
      // project): pip gets a 502, as when none answered at all, not a page saying there is nothing.
      const notFound = answered - pages.length;
      const notIndex = pages.filter((p) => p.projectFiles === 0);
      if (notFound === 0 && notIndex.length === pages.length) {
        const problems = [...failures.map((f) => `${f.upstream}: ${f.error}`), ...notIndex.map((p) => `${p.url}: not an index page`)];
        throw new NoUpstreamAnswered(problems.join('; '));
      }
    }
    return files;
  }

  /**
   * A locked project none of whose locked files any upstream listed: each upstream that failed
   * may have had them, and each that answered 200 with a page naming no file of the project at
   * all did not answer as an index (a login or error page, a captive portal). A real index answers
   * 404 for a project it does not have, so such a page is counted only here, where it hid every
   * locked file: a page like it from an extra index is harmless while another index lists them.
   */
  private recordPageFailures(
    project: string,
    failures: Array<{ upstream: string; error: string; failed: UpstreamFailed | null }>,
    pages: UpstreamPage[],
  ): void {
    for (const f of failures) {
      this.recordUpstreamFailure({
        upstream: f.upstream,
        url: f.failed?.url ?? `${f.upstream.replace(/\/+$/, '')}/${project}/`,
        project,
        reason: f.failed?.reason ?? f.error,
        attempts: f.failed?.attempts ?? 1,
      });
    }
    for (const page of pages) {
      if (page.projectFiles > 0) continue;
      this.recordUpstreamFailure({
        upstream: page.upstream,
        url: page.url,
        project,
        reason: `not an index page: ${mediaType(page.contentType) ?? 'a file'} that lists no file of ${project}`,
        attempts: 1,
      });
    }
  }

  private recordUpstreamFailure(failure: UpstreamFailure): void {
    const key = `${failure.upstream}\0${failure.url}`;
    if (this.upstreamFailureKeys.has(key)) return;
    this.upstreamFailureKeys.add(key);
    const what = failure.filename === undefined ? `the ${failure.project} page could not be read` : `${failure.filename} could not be downloaded`;
    const tries = `${failure.attempts} ${failure.attempts === 1 ? 'attempt' : 'attempts'}`;
    this.log.error({ ...failure }, 'an upstream failed for a locked project');
    this.addFinding(
      finding('install.upstream-failed', 'high', `${what} from ${failure.upstream}: ${failure.reason} (${tries})`, { ...failure }, failure.project),
    );
  }

  private lockedFiles(project: string, links: UpstreamLink[], lockHashes: Set<string>): PageFile[] {
    const files = new Map<string, PageFile>();
    const matchedVersions = new Set<string>();
    for (const link of links) {
      if (link.sha256 === null || !lockHashes.has(link.sha256)) continue;
      const version = versionFromFilename(project, link.filename);
      if (version !== null) matchedVersions.add(canonicalVersion(version));
      if (!isSafeFilename(link.filename)) {
        this.log.warn({ project, filename: JSON.stringify(link.filename).slice(0, 300) }, 'skipping a locked file with an unsafe filename');
        continue;
      }
      this.remember(project, link as UpstreamLink & { sha256: string });
      if (!files.has(link.sha256)) files.set(link.sha256, pageFile(link as UpstreamLink & { sha256: string }));
    }
    const byVersion = this.lockedVersions.get(project) ?? new Map<string, string[]>();
    for (const link of links) {
      if (link.sha256 === null || lockHashes.has(link.sha256)) continue;
      const version = versionFromFilename(project, link.filename);
      if (version === null) continue;
      const canonical = canonicalVersion(version);
      const lockSha256 = byVersion.get(canonical);
      if (!lockSha256 || matchedVersions.has(canonical)) continue;
      const key = `${project}\0${link.filename}\0${link.sha256}`;
      if (this.pageMismatchKeys.has(key)) continue;
      this.pageMismatchKeys.add(key);
      this.addFinding(
        finding(
          'integrity.hash-mismatch',
          'critical',
          `upstream lists ${project} ${version} with a sha256 that is not in the lock, and no file that is`,
          { project, filename: link.filename, upstreamSha256: link.sha256, lockSha256, url: redactUrl(link.url) },
          project,
        ),
      );
    }
    return [...files.values()];
  }

  private buildFiles(project: string, links: UpstreamLink[]): PageFile[] {
    const files = new Map<string, PageFile>();
    for (const link of links) {
      if (!listable(link)) continue;
      this.remember(project, link);
      if (!files.has(link.sha256)) files.set(link.sha256, pageFile(link));
    }
    return [...files.values()];
  }

  private remember(project: string, link: UpstreamLink & { sha256: string }): void {
    const known = this.known.get(link.sha256);
    if (!known) {
      this.known.set(link.sha256, {
        project,
        filename: link.filename,
        sha256: link.sha256,
        urls: [link.url],
        locked: this.lockedShaOwner.has(link.sha256) && !this.buildOnlyShas.has(link.sha256),
      });
    } else if (!known.urls.includes(link.url)) {
      known.urls.push(link.url);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Files

  private async serveFile(req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext, sha256: string, filename: string): Promise<void> {
    const owner = this.lockedShaOwner.get(sha256);
    // After prefetch nothing is fetched: a file it did not fetch is refused, locked or not.
    if (this.prefetched) return this.servePrefetched(req, res, ctx, sha256, filename, owner ?? this.known.get(sha256)?.project ?? null);
    let known = this.known.get(sha256);
    if (!known && owner !== undefined) {
      // Locked but not listed yet this run (pip kept the page from an earlier run).
      const cached = await this.cache.open(sha256);
      if (cached) {
        return this.sendFile(req, res, ctx, cached, { project: owner, filename, sha256, urls: [], locked: !this.buildOnlyShas.has(sha256) });
      }
      try {
        await this.listing(owner);
      } catch (error: unknown) {
        if (!(error instanceof NoUpstreamAnswered)) throw error;
        this.sendText(req, res, ctx, 502, `no upstream index answered for ${owner}\n`);
        return;
      }
      known = this.known.get(sha256);
    }
    if (!known || known.filename !== filename) return this.refuse(req, res, ctx, 404, known?.project ?? owner ?? null);

    let opened = await this.cache.open(sha256);
    if (!opened) {
      const outcome = await this.download(known);
      if (outcome.kind === 'mismatch') {
        this.sendText(req, res, ctx, 502, 'upstream bytes do not match the sha256; refusing to serve\n');
        return;
      }
      if (outcome.kind === 'refused') {
        this.sendText(req, res, ctx, 502, 'upstream file refused unread\n');
        return;
      }
      if (outcome.kind === 'failed') {
        this.sendText(req, res, ctx, 502, `download failed: ${outcome.reason}\n`);
        return;
      }
      opened = await this.cache.open(sha256);
      if (!opened) {
        this.sendText(req, res, ctx, 502, 'file vanished from the cache\n');
        return;
      }
    }
    return this.sendFile(req, res, ctx, opened, known);
  }

  /** A file after prefetch: from the cache, or refused; never fetched. */
  private async servePrefetched(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    ctx: RequestContext,
    sha256: string,
    filename: string,
    owner: string | null,
  ): Promise<void> {
    const known = this.known.get(sha256);
    if (!this.prefetched?.has(sha256) || !known || known.filename !== filename) return this.refuse(req, res, ctx, 404, owner);
    const opened = await this.cache.open(sha256);
    if (!opened) {
      // Removed or spoiled on the host since prefetch (the cache deletes a bad entry on open).
      this.log.error({ project: known.project, filename }, 'a prefetched file is no longer in the cache; not fetched again');
      this.sendText(req, res, ctx, 502, 'file vanished from the cache\n');
      return;
    }
    return this.sendFile(req, res, ctx, opened, known);
  }

  /** One download per sha256 at a time; every waiter gets the same outcome. */
  private download(known: KnownFile): Promise<DownloadOutcome> {
    let pending = this.downloads.get(known.sha256);
    if (!pending) {
      pending = this.fetchIntoCache(known).finally(() => this.downloads.delete(known.sha256));
      this.downloads.set(known.sha256, pending);
    }
    return pending;
  }

  private async fetchIntoCache(known: KnownFile): Promise<DownloadOutcome> {
    let outcome: DownloadOutcome = { kind: 'failed', reason: 'no upstream URL' };
    const failed: Array<{ url: string; error: UpstreamFailed }> = [];
    let refused = false;
    for (const url of known.urls) {
      const safeUrl = redactUrl(url);
      try {
        const started = performance.now();
        const result = await this.downloadFrom(known, url);
        if (result.ok) {
          this.log.debug(
            { project: known.project, filename: known.filename, bytes: result.size, ms: Math.round(performance.now() - started) },
            'downloaded and verified',
          );
          return { kind: 'ok', bytes: result.size };
        }
        this.addFinding(
          finding(
            'integrity.hash-mismatch',
            'critical',
            `${known.filename} from upstream does not match its sha256; not served`,
            { project: known.project, filename: known.filename, expectedSha256: known.sha256, actualSha256: result.actualSha256, url: safeUrl },
            known.project,
          ),
        );
        this.log.error({ project: known.project, filename: known.filename, url: safeUrl }, 'upstream file failed sha256 verification');
        outcome = { kind: 'mismatch' };
      } catch (error: unknown) {
        if (error instanceof EnvironmentError) {
          // The cache's disk, not the upstream: another URL would fail the same way.
          this.environmentError ??= error;
          this.log.error({ project: known.project, filename: known.filename, err: error.message, hint: error.hint }, 'cannot download into the proxy cache');
          return outcome.kind === 'mismatch' ? outcome : { kind: 'failed', reason: error.message };
        }
        if (error instanceof FileSourceRefused) {
          refused = true;
          this.recordRefusedSource(known, safeUrl, error.message);
        } else this.log.warn({ project: known.project, url: safeUrl, err: describe(error) }, 'download failed');
        if (error instanceof UpstreamFailed) failed.push({ url, error });
        if (outcome.kind !== 'mismatch') outcome = { kind: 'failed', reason: describe(error) };
        if (this.abort.signal.aborted) break;
      }
    }
    // Every URL was refused unread (a finding each): the upstream's content, not its availability.
    if (outcome.kind === 'failed' && failed.length === 0 && refused) return { kind: 'refused' };
    // No URL gave the file: each that failed is named (a mismatch or a refusal has its own finding).
    if (known.locked && !this.abort.signal.aborted) {
      for (const { url, error } of failed) {
        this.recordUpstreamFailure({
          upstream: this.linkUpstream.get(url) ?? redactUrl(new URL(url).origin),
          url: error.url,
          project: known.project,
          filename: known.filename,
          reason: error.reason,
          attempts: error.attempts,
        });
      }
    }
    return outcome;
  }

  /**
   * One URL of a file into the cache, with retries of transient faults (upstream-faults.ts). A URL
   * given up once is given up for the run: asked again, it throws the same UpstreamFailed at once.
   */
  private async downloadFrom(known: KnownFile, url: string): Promise<IngestResult> {
    const given = this.failedFiles.get(url);
    if (given) throw given;
    const safeUrl = redactUrl(url);
    try {
      return await withRetries(safeUrl, this.abort.signal, this.retry, async () => {
        const { stream, size } = await this.client.openFile(url, this.abort.signal);
        if (size !== null && size > this.maxFileBytes) {
          stream.destroy();
          throw new UpstreamTooLarge(
            `${size} bytes is more than the ${this.maxFileBytes} allowed`,
            `larger than ${this.maxFileBytes} bytes (${size} declared)`,
          );
        }
        return this.cache.ingest(known.sha256, stream, {
          maxBytes: this.maxFileBytes,
          idleTimeoutMs: this.timeoutMs,
          signal: this.abort.signal,
          declaredBytes: size,
        });
      });
    } catch (error: unknown) {
      if (error instanceof UpstreamFailed) this.failedFiles.set(url, error);
      throw error;
    }
  }

  /**
   * A `file:` source the client would not open: outside its mirror, or not a regular file. Nothing
   * was read, so the finding carries no digest of it: a page linking a host file must not learn
   * that file's sha256 from the report.
   */
  private recordRefusedSource(known: KnownFile, url: string, reason: string): void {
    this.log.error({ project: known.project, filename: known.filename, url, err: reason }, 'upstream file refused unread');
    const key = `${known.sha256}\0${url}`;
    if (this.refusedSourceKeys.has(key)) return;
    this.refusedSourceKeys.add(key);
    this.addFinding(
      finding(
        'integrity.upstream-refused',
        'high',
        `${known.filename} from upstream was refused unread: ${reason}`,
        { project: known.project, filename: known.filename, expectedSha256: known.sha256, url, refused: reason },
        known.project,
      ),
    );
  }

  private async sendFile(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    ctx: RequestContext,
    opened: { handle: FileHandle; size: number },
    known: KnownFile,
  ): Promise<void> {
    res.statusCode = 200;
    res.setHeader('content-type', 'application/octet-stream');
    res.setHeader('content-length', opened.size);
    res.setHeader('etag', `"${known.sha256}"`);
    res.setHeader('cache-control', 'max-age=31536000, immutable');
    if (req.method === 'HEAD') {
      await opened.handle.close();
      res.end();
      return;
    }
    try {
      await pipeline(
        opened.handle.createReadStream({ highWaterMark: 64 * 1024 }),
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            ctx.bytes += chunk.length;
            yield chunk;
          }
        },
        res,
      );
    } catch (error: unknown) {
      // A client that hangs up right after the last byte makes the response close before it
      // finishes; the whole body was still handed over. Anything shorter was not served.
      if (ctx.bytes !== opened.size) {
        this.log.debug({ path: ctx.path, err: describe(error), bytes: ctx.bytes }, 'file transfer interrupted');
        return;
      }
    }
    this.markServed(known, opened.size);
  }

  private markServed(known: KnownFile, size: number): void {
    if (this.servedShas.has(known.sha256)) return;
    this.servedShas.add(known.sha256);
    this.served.push({
      project: known.project,
      filename: known.filename,
      sha256: known.sha256,
      size,
      locked: known.locked,
      cachePath: this.cache.pathFor(known.sha256),
    });
    // Investigate serves nothing the lock pins: the report lists every served file and its sha256.
    if (!known.locked && !this.unlocked && !this.buildOnlyShas.has(known.sha256)) {
      this.addFinding(
        finding(
          'integrity.build-requirement',
          'info',
          `served build requirement ${known.filename}, which neither the lock's build pins nor the policy pins`,
          { project: known.project, filename: known.filename, sha256: known.sha256, pinned: false },
          known.project,
        ),
      );
    }
  }
}

function kindIsWheel(filename: string): boolean {
  return filename.toLowerCase().endsWith('.whl');
}

function pageFile(link: UpstreamLink & { sha256: string }): PageFile {
  return { filename: link.filename, sha256: link.sha256, requiresPython: link.requiresPython, yanked: link.yanked };
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

function safeDecode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

/** Remove a socket file left by a dead proxy; refuse to touch anything else or a live socket. */
async function removeStaleSocket(socketPath: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(socketPath)).isSocket();
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!isSocket) {
    throw new EnvironmentError('proxy-socket-path', `${socketPath} exists and is not a socket`, { hint: 'choose another path' });
  }
  const alive = await new Promise<boolean>((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new EnvironmentError('proxy-socket-in-use', `another process is listening on ${socketPath}`);
  await unlink(socketPath);
}
