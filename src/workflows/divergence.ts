/**
 * Unlocked runs (lock, investigate name==version) let the sandbox choose what the proxy asks the
 * upstream for, so build code that picks a project name or version from a secret or from the
 * machine it runs on would tell whoever reads the upstream's logs. Such a run is repeated in a
 * second, independent session (fresh canaries, another hostname), and what the two sandboxes asked
 * the proxy for is compared here: pip on the same input against the same upstream asks for the same
 * pages and files, so any difference is build code's choice (or an upstream that changed between
 * the runs) and is `integrity.resolve-divergence`. What pip resolved is compared too.
 *
 * Pure: request records and resolutions in, findings out.
 */
import { finding, type Finding } from '../core/finding.js';
import { isValidProjectName, normalizeName } from '../proxy/names.js';
import { MAX_REQUEST_RECORDS } from '../proxy/server.js';

/** What one run's sandbox asked the proxy for, and what it resolved (null: pip did not resolve). */
export interface RunRequests {
  requests: ReadonlyArray<{ method: string; path: string }>;
  /** `name==version` of each resolved distribution, or null when the run resolved nothing readable. */
  resolved: readonly string[] | null;
}

/** How many differing entries of each side the evidence lists; the counts are always whole. */
export const MAX_LISTED = 20;

/**
 * The proxy stops recording at this many requests: past it a request in only one run could hide,
 * so a full log is a divergence that cannot be ruled out.
 */
export const REQUEST_LOG_CAP = MAX_REQUEST_RECORDS;

/**
 * One request as the upstream would see its consequence: the method and a normalised target. A
 * project page is one target however pip spelled the name (`/simple/Foo` is redirected to
 * `/simple/foo/`); a file is its sha256 and filename; anything else is kept as sent. Status and
 * time are left out: an upstream that answered 502 once is not a different request.
 */
export function requestTarget(request: { method: string; path: string }): string {
  const method = request.method.toUpperCase();
  const target = request.path;
  if (target === '/simple' || target === '/simple/') return `${method} /simple/`;
  const project = /^\/simple\/([^/?#]+)\/?$/.exec(target);
  if (project?.[1] !== undefined) {
    const name = safeDecode(project[1]);
    if (name !== null && isValidProjectName(name)) return `${method} /simple/${normalizeName(name)}/`;
  }
  const file = /^\/files\/([0-9a-fA-F]{64})\/([^/?#]+)$/.exec(target);
  if (file?.[1] !== undefined && file[2] !== undefined) return `${method} /files/${file[1].toLowerCase()}/${safeDecode(file[2]) ?? file[2]}`;
  return `${method} ${target}`;
}

function safeDecode(text: string): string | null {
  try {
    return decodeURIComponent(text);
  } catch {
    return null;
  }
}

/** What is in `a` and not in `b`, sorted. */
function minus(a: ReadonlySet<string>, b: ReadonlySet<string>): string[] {
  return [...a].filter((x) => !b.has(x)).sort();
}

function listed(items: string[]): { items: string[]; count: number } {
  return { items: items.slice(0, MAX_LISTED), count: items.length };
}

/**
 * The divergence findings of two runs of one unlocked resolve: at most one for the requests (the
 * distinct request targets seen in only one run, or a request log that filled up) and one for the
 * resolutions (the name==version seen in only one, or one run resolving and the other not).
 * `names` are the two runs' phase names, for the message and the evidence.
 */
export function divergence(first: RunRequests, second: RunRequests, names: readonly [string, string], phase: string): Finding[] {
  const found: Finding[] = [];
  const [one, two] = names;
  const a = new Set(first.requests.map(requestTarget));
  const b = new Set(second.requests.map(requestTarget));
  const onlyFirst = minus(a, b);
  const onlySecond = minus(b, a);
  const full = [first, second].some((run) => run.requests.length >= REQUEST_LOG_CAP);
  if (onlyFirst.length > 0 || onlySecond.length > 0 || full) {
    const left = listed(onlyFirst);
    const right = listed(onlySecond);
    const what = full
      ? `the proxy's request log filled up (${REQUEST_LOG_CAP} requests), so a request made in only one of the runs cannot be ruled out`
      : `the sandbox asked the proxy for ${left.count} thing(s) only in ${one} and ${right.count} only in ${two}`;
    found.push({
      ...finding(
        'integrity.resolve-divergence',
        'high',
        `two independent resolves of the same input differ: ${what}; build code chose what the upstream was asked for (it saw ${one}'s requests before the comparison)`,
        {
          kind: 'requests',
          runs: [one, two],
          onlyFirst: left.items,
          onlyFirstCount: left.count,
          onlySecond: right.items,
          onlySecondCount: right.count,
          ...(full ? { logFull: true } : {}),
        },
      ),
      phase,
    });
  }
  if (first.resolved !== null || second.resolved !== null) {
    const ra = new Set(first.resolved ?? []);
    const rb = new Set(second.resolved ?? []);
    const onlyA = minus(ra, rb);
    const onlyB = minus(rb, ra);
    const oneFailed = (first.resolved === null) !== (second.resolved === null);
    if (onlyA.length > 0 || onlyB.length > 0 || oneFailed) {
      const left = listed(onlyA);
      const right = listed(onlyB);
      const what = oneFailed
        ? `${first.resolved === null ? one : two} resolved nothing and ${first.resolved === null ? two : one} did`
        : `${left.count} name==version only in ${one}, ${right.count} only in ${two}`;
      found.push({
        ...finding('integrity.resolve-divergence', 'high', `two independent resolves of the same input resolved differently: ${what}`, {
          kind: 'resolution',
          runs: [one, two],
          onlyFirst: left.items,
          onlyFirstCount: left.count,
          onlySecond: right.items,
          onlySecondCount: right.count,
          resolvedFirst: first.resolved !== null,
          resolvedSecond: second.resolved !== null,
        }),
        phase,
      });
    }
  }
  return found;
}
