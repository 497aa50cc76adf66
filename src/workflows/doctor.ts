/**
 * `doctor`: what works on this machine and what does not, one check at a time, each with a hint
 * saying how to fix it. A plain function like the other workflows (the engine comes in through
 * `deps`, nothing is printed). Every check is time-limited and they run side by side, so doctor
 * answers within about one time limit however many things are down.
 */
import { constants } from 'node:fs';
import { access, lstat, readdir, readFile, stat, statfs } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EXIT, SandboxError } from '../errors.js';
import { DEFAULT_INDEX_URL, loadPipConfigFiles, redactUrl, resolveUpstreams, type PipConfigFile } from '../proxy/index.js';
import { deadline, parseUpstreamUrl, UpstreamClient } from '../proxy/upstream-client.js';
import { BUILD_PATH_LABEL, defaultImageTag, PYTHON_LABEL, PYTHON_RELEASE } from '../runtime/image.js';
import type { ContainerClient } from '../runtime/port.js';
import { defaultCacheDir } from './steps.js';

export interface DoctorCheck {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  /** How to fix it; null when there is nothing to do. */
  hint: string | null;
  /** A failure of a required check makes doctor exit 3: runs cannot work until it is fixed. */
  required: boolean;
}

export interface DoctorRequest {
  indexUrl?: string;
  extraIndexUrls: string[];
  image?: string;
  cacheDir?: string;
}

export interface DoctorDeps {
  engine: ContainerClient;
  /** Aborted by SIGINT/SIGTERM/SIGHUP: doctor stops and rejects with its reason. */
  signal: AbortSignal;
  /** Where pip's configuration is read from; the process's by default. */
  env?: NodeJS.ProcessEnv;
  /** Reads one pip config file, null when it is missing or unreadable; the file system by default. */
  readPipConfig?: (file: string) => Promise<string | null>;
  /** The limit on each check. */
  timeoutMs?: number;
  now?: () => number;
}

export interface DoctorResult {
  checks: DoctorCheck[];
  exitCode: number;
}

export const CHECK_TIMEOUT_MS = 5_000;
/** Free space under which a run is likely to fail (a wheel cache, an export, pip's temp files). */
export const DISK_FAIL_BYTES = 200e6;
export const DISK_WARN_BYTES = 2e9;
/** The cache walk stops counting here, so a huge cache does not stall doctor. */
export const CACHE_WALK_MAX_FILES = 100_000;
export const CACHE_WARN_BYTES = 20e9;

const ENGINE_HINT = `an engine that does not answer in time may be hung: restart dockerd (or Podman's socket) and check DOCKER_HOST`;
const IMAGE_HINT = 'sandbox-install image build --bootstrap debian';

export type Outcome = Pick<DoctorCheck, 'status' | 'detail' | 'hint'>;

/** A check's outcome, or, when it threw, a failure saying so. An interrupt is rethrown. */
async function guarded(name: string, required: boolean, signal: AbortSignal, run: () => Promise<Outcome>): Promise<DoctorCheck> {
  try {
    return { name, required, ...(await run()) };
  } catch (error: unknown) {
    if (signal.aborted) throw signal.reason;
    return { name, required, status: required ? 'fail' : 'warn', detail: `could not check: ${describeError(error)}`, hint: null };
  }
}

/**
 * `work` within `ms`: it gets a signal that aborts at the limit (or on an interrupt), and is raced
 * against it for backends that ignore the signal. An interrupt rejects with its own reason.
 */
async function within<T>(parent: AbortSignal, ms: number, what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const limit = deadline(parent, ms, what);
  try {
    const stopped = new Promise<never>((_, reject) => {
      if (limit.signal.aborted) reject(limit.signal.reason);
      limit.signal.addEventListener('abort', () => reject(limit.signal.reason), { once: true });
    });
    return await Promise.race([work(limit.signal), stopped]);
  } finally {
    limit.done();
  }
}

/** An error's message and its cause's (fetch says `fetch failed`; the cause says why), with any `user:password@` removed. */
function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : null;
  const text = cause && !message.includes(cause) ? `${message}: ${cause}` : message;
  return text.replace(/\/\/[^/@\s]*@/g, '//');
}

export function formatBytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

export function formatAge(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return 'age unknown';
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'} old`;
  if (ms < 60_000) return 'less than a minute old';
  if (ms < 3_600_000) return plural(Math.floor(ms / 60_000), 'minute');
  if (ms < 48 * 3_600_000) return plural(Math.floor(ms / 3_600_000), 'hour');
  return plural(Math.floor(ms / 86_400_000), 'day');
}

export function diskStatus(freeBytes: number): DoctorCheck['status'] {
  return freeBytes < DISK_FAIL_BYTES ? 'fail' : freeBytes < DISK_WARN_BYTES ? 'warn' : 'ok';
}

// --- engine and image -------------------------------------------------------------------------

async function checkEngine(engine: ContainerClient, signal: AbortSignal, ms: number): Promise<{ check: DoctorCheck; answered: boolean }> {
  let answered = false;
  const check = await guarded('engine', true, signal, async () => {
    try {
      // version() answers both questions, and takes the signal, so a hung engine is not left waited on.
      const version = engine.version
        ? await within(signal, ms, 'container engine', (s) => engine.version!(s))
        : await within(signal, ms, 'container engine', () => engine.ping()).then(() => null);
      answered = true;
      return { status: 'ok', detail: version ? `${version.engine} (API ${version.api})` : 'answers (this backend does not report its version)', hint: null };
    } catch (error: unknown) {
      if (signal.aborted) throw signal.reason;
      const hint = error instanceof SandboxError && error.hint ? error.hint : ENGINE_HINT;
      return { status: 'fail', detail: describeError(error), hint };
    }
  });
  return { check, answered };
}

async function checkImage(request: DoctorRequest, engine: ContainerClient, signal: AbortSignal, ms: number, now: number): Promise<DoctorCheck> {
  return guarded('image', false, signal, async () => {
    const ref = request.image ?? (await defaultImageTag());
    const info = await within(signal, ms, `inspecting ${ref}`, () => engine.inspectImage(ref));
    if (!info) return { status: 'warn', detail: `${ref} is not built yet (it is built on first use)`, hint: IMAGE_HINT };
    const built = info.labels[BUILD_PATH_LABEL];
    const how = built ? `built by ${built}` : 'build path unknown (built before labels)';
    // The image's interpreter, as read from it when it was built (runtime/image.ts, labelPython).
    const label = info.labels[PYTHON_LABEL];
    const python = label !== undefined && PYTHON_RELEASE.test(label) ? `Python ${label}` : 'Python version unknown (built before its label)';
    return { status: 'ok', detail: `${ref}: ${formatAge(now - Date.parse(info.created))}, ${formatBytes(info.sizeBytes)}, ${how}, ${python}`, hint: null };
  });
}

// --- upstreams --------------------------------------------------------------------------------

/** The URL as it may be shown: credentials removed, and said to be there. */
function shownUrl(url: string): string {
  let hasCredentials: boolean;
  try {
    const parsed = new URL(url);
    hasCredentials = parsed.username !== '' || parsed.password !== '';
  } catch {
    hasCredentials = /\/\/[^/@]*@/.test(url);
  }
  return hasCredentials ? `${redactUrl(url)} (credentials hidden)` : redactUrl(url);
}

/** Whether one index answers: a file:// directory that can be read, or an HTTP index that answers for `pip/`. */
async function probeUpstream(url: string, client: UpstreamClient, signal: AbortSignal): Promise<{ ok: boolean; detail: string }> {
  const shown = shownUrl(url);
  let parsed: URL;
  try {
    parsed = parseUpstreamUrl(url);
  } catch (error: unknown) {
    return { ok: false, detail: `${shown} is not a usable index URL: ${describeError(error)}` };
  }
  try {
    if (parsed.protocol === 'file:') {
      const dir = fileURLToPath(parsed);
      if (!(await stat(dir)).isDirectory()) return { ok: false, detail: `${shown} is not a directory` };
      await access(dir, constants.R_OK | constants.X_OK);
      return { ok: true, detail: `${shown}: a readable directory` };
    }
    const page = await client.fetchProject(url, 'pip', signal);
    return { ok: true, detail: page ? `${shown} answers (${page.links.length} files for pip)` : `${shown} answers (no page for pip)` };
  } catch (error: unknown) {
    if (signal.aborted) throw signal.reason;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { ok: false, detail: `${shown}: no such directory` };
    if (code === 'EACCES') return { ok: false, detail: `${shown}: not readable` };
    return { ok: false, detail: `${shown} unreachable: ${describeError(error)}` };
  }
}

/**
 * The index and each extra index. The proxy needs one upstream that answers: the index failing is
 * a required failure only when no extra index answers either; an extra failing is a warning.
 */
async function checkUpstreams(request: DoctorRequest, files: PipConfigFile[], env: NodeJS.ProcessEnv, signal: AbortSignal, ms: number): Promise<DoctorCheck[]> {
  const upstreams = resolveUpstreams({ cli: { indexUrl: request.indexUrl, extraIndexUrls: request.extraIndexUrls }, env, files });
  const client = new UpstreamClient({ timeoutMs: ms, maxPageBytes: 32 * 1024 * 1024, userAgent: 'sandbox-install-doctor' });
  const urls = [upstreams.indexUrl, ...upstreams.extraIndexUrls];
  const probes = await Promise.all(urls.map((url) => within(signal, ms, shownUrl(url), (s) => probeUpstream(url, client, s)).catch(unanswered(url, signal))));
  const anyAnswered = probes.some((p) => p.ok);
  return probes.map((probe, i): DoctorCheck => {
    const index = i === 0;
    const check = { name: index ? 'upstream' : 'extra-index', required: index, detail: probe.detail };
    if (probe.ok) return { ...check, status: 'ok', hint: null };
    const flag = index ? '--index-url' : '--extra-index-url';
    const hint = `check that ${redactUrl(urls[i]!)} is up and is the index you mean, or pass another with ${flag} <url>`;
    return { ...check, status: index && !anyAnswered ? 'fail' : 'warn', hint: anyAnswered ? `${hint} (another upstream answers, so runs still work)` : hint };
  });
}

function unanswered(url: string, signal: AbortSignal) {
  return (error: unknown): { ok: boolean; detail: string } => {
    if (signal.aborted) throw signal.reason;
    return { ok: false, detail: `${shownUrl(url)} unreachable: ${describeError(error)}` };
  };
}

// --- pip configuration ------------------------------------------------------------------------

type IndexKey = 'index-url' | 'extra-index-url';
const PROBE_INDEX = 'doctor-probe:index';
const PROBE_EXTRA = 'doctor-probe:extra';
const PROBE: PipConfigFile = { path: '(probe)', text: `[global]\nindex-url = ${PROBE_INDEX}\nextra-index-url = ${PROBE_EXTRA}\n` };

/**
 * The index keys one layer (a config file, or one PIP_ variable) sets, read by pip's own rules in
 * `resolveUpstreams`: on top of a probe layer, whatever the layer changes, it sets.
 */
function keysSet(layer: { files: PipConfigFile[]; env: NodeJS.ProcessEnv }): IndexKey[] {
  const got = resolveUpstreams({ cli: {}, env: layer.env, files: [PROBE, ...layer.files] });
  const keys: IndexKey[] = [];
  if (got.indexUrl !== PROBE_INDEX) keys.push('index-url');
  if (got.extraIndexUrls.join(' ') !== PROBE_EXTRA) keys.push('extra-index-url');
  return keys;
}

/** Which pip setting gives the index and the extra indexes: the last layer to set a key wins, as in pip. */
export function pipIndexSources(files: PipConfigFile[], env: NodeJS.ProcessEnv): Partial<Record<IndexKey, string>> {
  const layers = [
    ...files.map((file) => ({ source: file.path, files: [file], env: {} })),
    ...Object.entries(env)
      .filter(([key]) => key.startsWith('PIP_'))
      .map(([key, value]) => ({ source: key, files: [], env: { [key]: value } })),
  ];
  const sources: Partial<Record<IndexKey, string>> = {};
  for (const layer of layers) for (const key of keysSet(layer)) sources[key] = layer.source;
  return sources;
}

export function checkPipConfig(request: DoctorRequest, files: PipConfigFile[], env: NodeJS.ProcessEnv): Outcome {
  const sources = pipIndexSources(files, env);
  const read = files.length > 0 ? ` (read: ${files.map((f) => f.path).join(', ')})` : ' (no config file found)';
  const overridden = (key: IndexKey, cli: boolean) => {
    const from = sources[key];
    if (!from) return null;
    return `${key} from ${from}${cli ? `, overridden by --${key}` : ''}`;
  };
  const said = [overridden('index-url', request.indexUrl !== undefined), overridden('extra-index-url', request.extraIndexUrls.length > 0)].filter(
    (s): s is string => s !== null,
  );
  if (said.length > 0 && !sources['index-url'] && request.indexUrl === undefined) said.push(`index-url not set (the default, ${DEFAULT_INDEX_URL})`);
  if (said.length > 0) return { status: 'ok', detail: said.join('; '), hint: null };
  if (request.indexUrl !== undefined) return { status: 'ok', detail: `no pip configuration sets an index${read}; --index-url is used`, hint: null };
  return {
    status: 'warn',
    detail: `no pip configuration sets an index${read}; the default index is used`,
    hint: 'pass --index-url <url>, or set one for pip and sandbox-install alike: pip config set global.index-url <url>',
  };
}

// --- cache and disk ---------------------------------------------------------------------------

/** Bytes and files under `dir`, stopping at `maxFiles` files or at `until` (then `complete` is false). */
export async function cacheSize(dir: string, opts: { maxFiles: number; until: number; now: () => number; signal: AbortSignal }) {
  let bytes = 0;
  let files = 0;
  const stack = [dir];
  while (stack.length > 0) {
    opts.signal.throwIfAborted();
    const current = stack.pop()!;
    const entries = await readdir(current, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      if (files >= opts.maxFiles || opts.now() > opts.until) return { bytes, files, complete: false };
      const file = path.join(current, entry.name);
      if (entry.isDirectory()) stack.push(file);
      else if (entry.isFile()) {
        bytes += await lstat(file).then(
          (st) => st.size,
          () => 0,
        );
        files += 1;
      }
    }
  }
  return { bytes, files, complete: true };
}

async function nearestExisting(target: string): Promise<string> {
  let current = path.resolve(target);
  for (;;) {
    try {
      await stat(current);
      return current;
    } catch {
      const up = path.dirname(current);
      if (up === current) return current;
      current = up;
    }
  }
}

const writable = (dir: string) =>
  access(dir, constants.W_OK | constants.X_OK).then(
    () => true,
    () => false,
  );

async function checkCache(dir: string, signal: AbortSignal, ms: number, now: () => number): Promise<Outcome> {
  const hint = (what: string) => `${what}, or pass --cache-dir <dir>`;
  const st = await stat(dir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return null;
    throw error;
  });
  if (st === null) {
    const parent = await nearestExisting(dir);
    if (!(await writable(parent))) return { status: 'warn', detail: `${dir} does not exist and ${parent} is not writable`, hint: hint(`make ${dir} writable`) };
    return { status: 'ok', detail: `${dir} (not created yet: made on first use)`, hint: null };
  }
  if (!st.isDirectory()) return { status: 'warn', detail: `${dir} is not a directory`, hint: hint(`remove ${dir}`) };
  if (!(await writable(dir))) return { status: 'warn', detail: `${dir} is not writable`, hint: hint(`make ${dir} writable`) };
  const size = await cacheSize(dir, { maxFiles: CACHE_WALK_MAX_FILES, until: now() + ms, now, signal });
  const counted = `${formatBytes(size.bytes)} in ${size.files} file${size.files === 1 ? '' : 's'}`;
  const amount = size.complete ? counted : `at least ${counted} (stopped counting)`;
  if (size.bytes > CACHE_WARN_BYTES) {
    return {
      status: 'warn',
      detail: `${dir}: ${amount}`,
      hint: `remove ${dir} while no run is going to reclaim the space (files are fetched and verified again)`,
    };
  }
  return { status: 'ok', detail: `${dir}: ${amount}`, hint: null };
}

async function checkDisk(cacheDir: string): Promise<Outcome> {
  const places = [
    { what: 'cache', dir: await nearestExisting(cacheDir) },
    { what: 'temp', dir: await nearestExisting(os.tmpdir()) },
  ];
  const measured = await Promise.all(
    places.map(async (place) => {
      const fs = await statfs(place.dir);
      const free = fs.bavail * fs.bsize;
      return { ...place, free, status: diskStatus(free) };
    }),
  );
  const rank = { ok: 0, warn: 1, fail: 2 } as const;
  const worst = measured.reduce((a, b) => (rank[b.status] > rank[a.status] ? b : a));
  const detail = measured.map((m) => `${m.what} ${m.dir}: ${formatBytes(m.free)} free`).join('; ');
  if (worst.status === 'ok') return { status: 'ok', detail, hint: null };
  return {
    status: worst.status,
    detail,
    hint: `free space on ${worst.dir} (${formatBytes(DISK_WARN_BYTES)} or more), or point --cache-dir or TMPDIR at a disk with room`,
  };
}

// --- all together -----------------------------------------------------------------------------

/** Every check, in a fixed order; exit 3 when a required one failed. */
export async function doctor(request: DoctorRequest, deps: DoctorDeps): Promise<DoctorResult> {
  const { engine, signal } = deps;
  signal.throwIfAborted();
  const env = deps.env ?? process.env;
  const ms = deps.timeoutMs ?? CHECK_TIMEOUT_MS;
  const now = deps.now ?? Date.now;
  const cacheDir = request.cacheDir ?? defaultCacheDir();
  const readPipConfig = deps.readPipConfig ?? ((file: string) => readFile(file, 'utf8').catch(() => null));
  const pipFiles = await loadPipConfigFiles({ env, homedir: env.HOME || os.homedir(), readFile: readPipConfig });

  const [engineChecks, upstreamChecks, pip, cache, disk] = await Promise.all([
    checkEngine(engine, signal, ms).then(async ({ check, answered }) => (answered ? [check, await checkImage(request, engine, signal, ms, now())] : [check])),
    checkUpstreams(request, pipFiles, env, signal, ms),
    guarded('pip-config', false, signal, async () => checkPipConfig(request, pipFiles, env)),
    guarded('cache', false, signal, () => checkCache(cacheDir, signal, ms, now)),
    guarded('disk', true, signal, () => checkDisk(cacheDir)),
  ]);
  const checks = [...engineChecks, ...upstreamChecks, pip, cache, disk];
  return { checks, exitCode: checks.some((c) => c.required && c.status === 'fail') ? EXIT.environment : EXIT.pass };
}
