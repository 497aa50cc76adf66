/**
 * Which files a lock names, read on the host before any container starts: each requirement's
 * hashes matched against its upstream project page, so a workflow knows which entries are wheels
 * and which only sdists (strict refuses those; wheelhouse needs a compiler for them). A pylock.toml
 * names its files itself, so its entries need no page.
 */
import { EnvironmentError } from '../errors.js';
import type { LockPlan } from '../lock/types.js';
import type { Upstreams } from './upstream.js';
import { redactUrl, UpstreamClient } from './upstream-client.js';
import { DEFAULT_RETRY } from './upstream-faults.js';

export type DistKind = 'wheel' | 'sdist';

export interface LockedFile {
  filename: string;
  sha256: string;
  kind: DistKind;
}

/** The pages of a lock are small; the proxy's own cap is far larger. */
const PREFLIGHT_PAGE_BYTES = 16 * 1024 * 1024;
const PREFLIGHT_TIMEOUT_MS = 30_000;

export function kindOf(filename: string): DistKind {
  return filename.toLowerCase().endsWith('.whl') ? 'wheel' : 'sdist';
}

/**
 * Each requirement's locked files (normalised name → files whose sha256 the lock lists), from the
 * first upstream that has the project. A requirement none of whose hashes an upstream lists maps to
 * an empty array: the run reports that one itself (integrity.unlocked-request / install.failed).
 */
export async function lockedFiles(plan: LockPlan, upstreams: Upstreams, signal: AbortSignal): Promise<Map<string, LockedFile[]>> {
  const client = new UpstreamClient({
    timeoutMs: PREFLIGHT_TIMEOUT_MS,
    maxPageBytes: PREFLIGHT_PAGE_BYTES,
    userAgent: 'sandbox-install-preflight',
    retry: DEFAULT_RETRY,
  });
  const urls = [...new Set([upstreams.indexUrl, ...upstreams.extraIndexUrls])];
  const result = new Map<string, LockedFile[]>();
  for (const req of plan.requirements) {
    const named = req.files?.filter((file): file is typeof file & { filename: string } => file.filename !== null);
    if (named && named.length === req.files?.length) {
      result.set(req.name, [...(result.get(req.name) ?? []), ...named.map(({ filename, sha256 }) => ({ filename, sha256, kind: kindOf(filename) }))]);
      continue;
    }
    const hashes = new Set(req.sha256);
    let found: LockedFile[] = [];
    // An upstream that cannot be read is passed over when a later one lists the locked files, as
    // pip and the proxy do (a configured index that is offline, with a mirror as an extra index);
    // when none lists them, the first failure ends the run: the lock may be fine, the machine is not.
    let failure: EnvironmentError | null = null;
    for (const url of urls) {
      const page = await client.fetchProject(url, req.name, signal).catch((error: unknown) => {
        signal.throwIfAborted();
        failure ??= new EnvironmentError('upstream.unreachable', `cannot read ${req.name}'s page from ${redactUrl(url)}: ${(error as Error).message}`, {
          cause: error,
          hint: 'check the index URL (sandbox-install doctor)',
        });
        return null;
      });
      found = (page?.links ?? [])
        .filter((link) => link.sha256 !== null && hashes.has(link.sha256))
        .map((link) => ({ filename: link.filename, sha256: link.sha256!, kind: kindOf(link.filename) }));
      if (found.length > 0) break;
    }
    if (found.length === 0 && failure !== null) throw failure;
    result.set(req.name, [...(result.get(req.name) ?? []), ...found]);
  }
  return result;
}

/** Requirements whose locked files are all sdists (none of them a wheel). */
export function sdistOnly(plan: LockPlan, files: ReadonlyMap<string, LockedFile[]>): LockPlan['requirements'] {
  return plan.requirements.filter((req) => {
    const own = (files.get(req.name) ?? []).filter((file) => req.sha256.includes(file.sha256));
    return own.length > 0 && own.every((file) => file.kind === 'sdist');
  });
}
