/**
 * `lock`: resolve a requirements.in inside the sandbox and write a hashed lock, without running
 * any sdist's build code on the host (pip-compile runs it there). pip's resolver runs as the run's
 * only phase, `resolve` (`pip install --dry-run --report`), against the proxy in its unlocked mode,
 * and every sdist's metadata build is traced and judged like an install. The lock is written only
 * when the verdict is pass; otherwise nothing is written and the findings say why. Exit 0 only
 * when the lock was written.
 *
 * The resolve runs twice, in two independent sessions (fresh canaries, another hostname): the
 * second is reported as phase `resolve-check`, both are judged, and any difference in what the two
 * sandboxes asked the proxy for, or in what pip resolved, is `integrity.resolve-divergence`
 * (divergence.ts): build code chose what the upstream was asked, perhaps from a secret.
 *
 * What the lock lists for each resolved name==version is read on the host from the upstream pages,
 * never from the sandbox: every file of that version whose sha256 the index gives, keeping the
 * wheels the sandbox's interpreter can install (CPython 3.11 on glibc Linux) and the sdists. pip's
 * report only says which versions it picked and which file it used; that file must be one the
 * proxy served, and one the page lists.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { finding, type Finding } from '../core/finding.js';
import { TOOL_VERSION } from '../core/version.js';
import { EnvironmentError, InputError } from '../errors.js';
import { BUILD_PINS_TITLE, buildPinsHeader, buildPinsPath, renderBuildPins, type BuildPin } from '../lock/build-pins.js';
import { isPylockName } from '../lock/parse.js';
import { parsePipReport, ReportProblem, type ResolvedDist, type Resolution } from '../lock/pip-report.js';
import { readRequirementsIn, renderRequirementsIn, type RequirementsIn } from '../lock/requirements-in.js';
import type { LockPlan } from '../lock/types.js';
import { SANDBOX_GLIBC, wheelSupported, type LinuxCPython } from '../lock/wheel-tags.js';
import { renderPylock, renderRequirementsLock, type LockedDist, type LockEntry } from '../lock/write.js';
import { evaluate } from '../policy/evaluate.js';
import { loadPolicy } from '../policy/load.js';
import type { Policy } from '../policy/schema.js';
import { pipConfiguredUpstreams, redactUrl, type ServedFile, type Upstreams } from '../proxy/index.js';
import { canonicalVersion, isSafeFilename, versionFromFilename } from '../proxy/names.js';
import type { UpstreamLink } from '../proxy/pages.js';
import { UpstreamClient } from '../proxy/upstream-client.js';
import { emptyReport, type Report } from '../report/schema.js';
import { conflictsWithOnlyBinaryPolicy } from '../sandbox/requirements.js';
import type { RunOutcome } from '../core/outcome.js';
import type { Observation } from '../observe/index.js';
import type { SandboxSession } from '../sandbox/session.js';
import { divergence } from './divergence.js';
import { labelledPython, withImage } from './target-python.js';
import {
  chooseRunTarget,
  exitCodeOf,
  observeRun,
  openSession,
  phaseFailure,
  phaseSummaries,
  pinsOfServed,
  prepareImage,
  recordRun,
  withReport,
  type WorkflowDeps,
  type WorkflowResult,
} from './steps.js';

export type LockFormat = 'requirements' | 'pylock';

/** --lock-format when given; else pylock when -o names a pylock.toml, else a requirements lock. */
export function lockFormatFor(output: string | undefined, given: LockFormat | undefined): LockFormat {
  return given ?? (output !== undefined && isPylockName(output) ? 'pylock' : 'requirements');
}

export interface LockRequest {
  /** The requirements.in. */
  requirementsIn: string;
  /** Where the lock goes; written only on pass. */
  output: string;
  format: LockFormat;
  indexUrl?: string;
  extraIndexUrls: string[];
  policy: string;
  report?: string;
  timeoutSeconds?: number;
  image?: string;
  cacheDir?: string;
  /** --python-version: the Python the lock is for; absent: the host's python3.11, else the image's. */
  pythonVersion?: string;
  /** The date the header gives; default: now. */
  now?: Date;
}

/** pip's report holds every resolved project's whole metadata (descriptions included). */
const MAX_REPORT_BYTES = 64 * 1024 ** 2;
const PAGE_TIMEOUT_MS = 30_000;
const MAX_PAGE_BYTES = 64 * 1024 ** 2;

/** Step 1: the requirements, the policy and the output, refused before any container starts. */
async function plan(
  request: LockRequest,
  deps: WorkflowDeps,
): Promise<{ input: RequirementsIn; policy: Policy; target: Awaited<ReturnType<typeof chooseRunTarget>> }> {
  const target = await chooseRunTarget(request.pythonVersion, request.image, deps);
  const input = await readRequirementsIn(request.requirementsIn);
  const policy = await loadPolicy(request.policy);
  const conflict = policy.onlyBinary ? conflictsWithOnlyBinaryPolicy(input.pipOptions) : null;
  if (conflict !== null) throw new InputError('lock.invalid', `${request.requirementsIn}: ${conflict.replaceAll('lockfile', 'requirements.in')}`);
  const name = path.basename(request.output);
  if (request.format === 'pylock' && !isPylockName(name)) {
    throw new InputError('options.invalid', `--output ${request.output}: a PEP 751 lock must be named pylock.toml or pylock.<name>.toml`);
  }
  const dir = await stat(path.dirname(path.resolve(request.output))).catch(() => null);
  if (!dir?.isDirectory()) throw new InputError('options.invalid', `--output ${request.output}: its directory does not exist`);
  return { input, policy, target };
}

export async function lock(request: LockRequest, deps: WorkflowDeps): Promise<WorkflowResult> {
  const started = performance.now();
  const timings: Record<string, number> = {};
  const { input, policy, target } = await plan(request, deps);
  const upstreams = await pipConfiguredUpstreams({ indexUrl: request.indexUrl, extraIndexUrls: request.extraIndexUrls });
  const log = deps.logger.child({ requirements: request.requirementsIn });

  // Step 2: engine and image.
  let t = performance.now();
  const image = await prepareImage(request.image, deps, log);
  const python = withImage(target, await labelledPython(deps.engine, image));
  timings.image = Math.round(performance.now() - t);

  const report = emptyReport({ version: TOOL_VERSION, lockfile: request.requirementsIn, policy: policy.name, image, timings });
  report.python = { image: python.image, target: python.target };
  return withReport(request.report, report, started, log, async () => {
    // Step 3: resolve in the sandbox, against the unlocked proxy, twice: in two independent sessions
    // (each its own proxy, fresh canaries and another hostname, drawn per session by core/machine-name.ts), so
    // build code that chooses what pip asks for from a secret or the machine asks differently.
    const resolvePlan: LockPlan = { file: request.requirementsIn, requirements: [], indexUrl: null, extraIndexUrls: [], pipOptions: input.pipOptions };
    const sessionRequest = {
      image,
      plan: resolvePlan,
      upstreams,
      policy,
      cacheDir: request.cacheDir,
      timeoutSeconds: request.timeoutSeconds,
      unlocked: { localFiles: [] },
      resolve: { requirements: renderRequirementsIn(input) },
      python,
    };
    await using first = await openSession(sessionRequest, deps, log);
    await using second = await openSession(sessionRequest, deps, log);
    log.info(
      {
        requirements: input.requirements.length,
        upstreams: { indexUrl: redactUrl(upstreams.indexUrl), extraIndexUrls: upstreams.extraIndexUrls.map(redactUrl) },
      },
      'resolving in the sandbox, twice',
    );
    const [run, check] = await resolveTwice(first, second);
    Object.assign(timings, run.timings, prefixed(RESOLVE_CHECK, check.timings));
    deps.signal.throwIfAborted();

    // Step 4: what pip resolved (hostile input), and every file of it, from the upstream pages.
    t = performance.now();
    const served = first.proxyRecords.served;
    const resolvedOk = run.phases[0]?.pipExitCode === 0;
    const resolution = resolvedOk ? readResolution(await first.resolveReport(MAX_REPORT_BYTES)) : null;
    const checked = check.phases[0]?.pipExitCode === 0 ? readResolution(await second.resolveReport(MAX_REPORT_BYTES)) : null;
    const locked =
      resolution !== null && !(resolution instanceof ReportProblem)
        ? await lockEntries(resolution, served, await upstreamPages(resolution.dists, upstreams, deps.signal))
        : { entries: [], problems: resolution instanceof ReportProblem ? [resolution] : [] };
    timings.lockFiles = Math.round(performance.now() - t);

    // Step 5: observe both resolves; nothing was installed, so no wheel is held to a tree.
    t = performance.now();
    const resolved = resolution !== null && !(resolution instanceof ReportProblem) ? resolution.dists : [];
    const resolvedCheck = checked !== null && !(checked instanceof ReportProblem) ? checked.dists : [];
    const distributions = [
      ...new Set([...resolved, ...resolvedCheck].map((d) => d.name).concat([...served, ...second.proxyRecords.served].map((file) => file.project))),
    ];
    const shared = { distributions, policy, reservedNames: [] };
    const observed = await observeRun(first, run, shared, () => false);
    const observedCheck = renamePhase(await observeRun(second, check, shared, () => false), RESOLVE_CHECK);
    timings.observe = Math.round(performance.now() - t);
    // Interrupted while the run was observed: no verdict, nothing published.
    deps.signal.throwIfAborted();

    // Step 6: judge both runs, and what differs between them.
    const problems = locked.problems.map(problemFinding);
    const diverged = divergence(
      { requests: first.proxyRecords.requests, resolved: resolutionSet(resolution) },
      { requests: second.proxyRecords.requests, resolved: resolutionSet(checked) },
      ['resolve', RESOLVE_CHECK],
      RESOLVE_CHECK,
    );
    const judgement = evaluate(
      {
        findings: [
          ...observed.findings,
          ...run.phases.flatMap(phaseFailure),
          ...problems,
          ...observedCheck.findings,
          ...check.phases.flatMap(phaseFailure).map((f) => ({ ...f, phase: RESOLVE_CHECK })),
          ...diverged,
        ],
        packages: distributions,
        installSucceeded: resolvedOk && problems.length === 0,
      },
      policy,
    );
    recordRun(report, run, observed, judgement, first);
    report.proxy = [
      ...first.proxyRecords.requests.map((r) => ({ ...r, phase: 'resolve' })),
      ...second.proxyRecords.requests.map((r) => ({ ...r, phase: RESOLVE_CHECK })),
    ];
    report.network.push(...observedCheck.network);
    report.filesystem.push(...observedCheck.filesystem);
    report.processes.push(...observedCheck.processes);
    report.phases = [...(report.phases ?? []), ...phaseSummaries(check).map((p) => ({ ...p, name: RESOLVE_CHECK }))];
    report.packages = resolvedPackages(resolved, served);
    report.timeline = [...observed.timeline, ...observedCheck.timeline].map((entry) => ({ ...entry, phase: entry.phase ?? 'resolve' }));

    // Step 7: the lock, only on pass.
    if (report.verdict === 'pass' && resolution !== null && !(resolution instanceof ReportProblem)) {
      const provenance = {
        toolVersion: TOOL_VERSION,
        source: request.requirementsIn,
        date: (request.now ?? new Date()).toISOString().slice(0, 10),
        pipVersion: resolution.pipVersion,
        // The release markers were evaluated for: the target (pip's report says the same when it
        // ran through images/pip-as.py), else what pip's report says it ran on.
        pythonVersion: python.target ?? resolution.pythonVersion,
        machine: resolution.machine,
        indexes: [upstreams.indexUrl, ...upstreams.extraIndexUrls].map(redactUrl),
        command: `sandbox-install lock ${request.requirementsIn} -o ${request.output}${request.format === 'pylock' ? ' --lock-format pylock' : ''}`,
      };
      const text = request.format === 'pylock' ? renderPylock(locked.entries, provenance) : renderRequirementsLock(locked.entries, provenance);
      // The build requirements pip fetched for the sdists' metadata builds: every served file that is
      // not the one a resolved distribution used. Written first, so whoever reads the new lock finds its pins.
      const used = new Set(resolution.dists.map((dist) => dist.used.sha256));
      const buildPins = pinsOfServed(served.filter((file) => !used.has(file.sha256)));
      await writeBuildPinsBeside(request.output, buildPins, `lock on ${provenance.date}`);
      await writeAtomically(request.output, text);
      report.exported = path.resolve(request.output);
      log.info({ lock: request.output, packages: locked.entries.length, buildPins: buildPins.length }, 'wrote the lock');
    }
    return exitCodeOf(report.verdict);
  });
}

/** The second resolve's phase, as the report names it (in the sandbox it is `resolve` too). */
export const RESOLVE_CHECK = 'resolve-check';

/**
 * Both resolves, one after the other. Each is a whole session (its own proxy, canaries and
 * containers), so the sandbox of one can learn nothing of the other. Sequential, though running
 * both at once was faster (measured 2026-12-07, 2 cores: a wheels-only input 2.5 s alone, 4.5 s
 * sequential, 3.0 s concurrent; two sdists 7.1 s, 12.4 s, 10.4 s): concurrent doubles the peak
 * memory and pids of a run and slows each by contention toward --timeout, and only sequential runs
 * leave room to serve the second one from what the first fetched, which would close the hole an
 * upstream that relays the first run's choice to the second leaves (README, "Locking in the sandbox").
 */
async function resolveTwice(first: SandboxSession, second: SandboxSession): Promise<[RunOutcome, RunOutcome]> {
  const run = await first.run();
  return [run, await second.run()];
}

/** `timings` with each key prefixed, `resolve-check.install` for the second run's `install`. */
function prefixed(prefix: string, timings: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(timings).map(([key, ms]) => [`${prefix}.${key}`, ms]));
}

/** An observation of the second resolve, its `resolve` phase named `phase` wherever it is tagged. */
function renamePhase(observed: Observation, phase: string): Observation {
  const rename = <T extends { phase?: string | null }>(entry: T): T => (entry.phase === 'resolve' ? { ...entry, phase } : entry);
  return {
    ...observed,
    findings: observed.findings.map(rename),
    network: observed.network.map(rename),
    filesystem: observed.filesystem.map(rename),
    processes: observed.processes.map(rename),
    timeline: observed.timeline.map(rename),
  };
}

/** A resolution as `name==version` strings (canonical versions), or null when there is none to compare. */
function resolutionSet(resolution: Resolution | ReportProblem | null): string[] | null {
  if (resolution === null || resolution instanceof ReportProblem) return null;
  return resolution.dists.map((d) => `${d.name}==${canonicalVersion(d.version)}`);
}

/** The report's text parsed, or the problem with it: a report that cannot be read is no resolution. */
export function readResolution(text: string | null): Resolution | ReportProblem {
  if (text === null) return new ReportProblem("pip's resolution report is missing or not a plain file of at most 64 MiB");
  try {
    return parsePipReport(text);
  } catch (error: unknown) {
    if (error instanceof ReportProblem) return error;
    throw error;
  }
}

function problemFinding(problem: ReportProblem): Finding {
  return { ...finding('install.failed', 'high', `${problem.message}; no lock was written`, {}, problem.project), phase: 'resolve' };
}

/**
 * The links every upstream lists for each resolved project, in upstream order (the index first), as
 * the unlocked proxy merged them for pip. An upstream that does not answer is skipped; a project no
 * upstream answers for is an environment error.
 */
export async function upstreamPages(dists: ResolvedDist[], upstreams: Upstreams, signal: AbortSignal): Promise<Map<string, UpstreamLink[]>> {
  const client = new UpstreamClient({ timeoutMs: PAGE_TIMEOUT_MS, maxPageBytes: MAX_PAGE_BYTES, userAgent: 'sandbox-install-lock' });
  const urls = [...new Set([upstreams.indexUrl, ...upstreams.extraIndexUrls])];
  const pages = new Map<string, UpstreamLink[]>();
  for (const dist of dists) {
    const links: UpstreamLink[] = [];
    const failures: string[] = [];
    for (const url of urls) {
      try {
        links.push(...((await client.fetchProject(url, dist.name, signal))?.links ?? []));
      } catch (error: unknown) {
        signal.throwIfAborted();
        failures.push(`${redactUrl(url)}: ${(error as Error).message}`);
      }
    }
    if (failures.length === urls.length) {
      throw new EnvironmentError('upstream.unreachable', `cannot read ${dist.name}'s page again to list its files: ${failures.join('; ')}`, {
        hint: 'check the index URL (sandbox-install doctor)',
      });
    }
    pages.set(dist.name, links);
  }
  return pages;
}

const SDIST = /\.(tar\.gz|zip)$/i;

/**
 * Each resolved name==version with every file of that version its pages list with a sha256 that
 * the sandbox platform may install: its wheels for that platform, and its sdists. The file pip used
 * must have been served by the proxy and be on the page; it is always listed. Pure.
 */
export function lockEntries(
  resolution: Resolution,
  served: ServedFile[],
  pages: ReadonlyMap<string, UpstreamLink[]>,
): { entries: LockEntry[]; problems: ReportProblem[] } {
  const [major, minor] = resolution.pythonVersion.split('.').map(Number);
  const target: LinuxCPython = { python: [major ?? 3, minor ?? 11], machine: resolution.machine, glibc: SANDBOX_GLIBC };
  const resolvedNames = new Set(resolution.dists.map((d) => d.name));
  const entries: LockEntry[] = [];
  const problems: ReportProblem[] = [];
  for (const dist of resolution.dists) {
    const { name, version, used } = dist;
    if (!served.some((file) => file.project === name && file.sha256 === used.sha256)) {
      problems.push(new ReportProblem(`pip's resolution report names ${used.filename} for ${name} ${version}, which the proxy never served for ${name}`, name));
      continue;
    }
    const files = new Map<string, LockedDist>();
    for (const link of pages.get(name) ?? []) {
      if (link.sha256 === null || !isSafeFilename(link.filename) || files.has(link.sha256)) continue;
      const linked = versionFromFilename(name, link.filename);
      if (linked === null || canonicalVersion(linked) !== canonicalVersion(version)) continue;
      const wheel = link.filename.toLowerCase().endsWith('.whl');
      if (!(link.sha256 === used.sha256 || (wheel ? wheelSupported(link.filename, target) : SDIST.test(link.filename)))) continue;
      files.set(link.sha256, { filename: link.filename, sha256: link.sha256, url: link.url, kind: wheel ? 'wheel' : 'sdist' });
    }
    if (!files.has(used.sha256)) {
      problems.push(
        new ReportProblem(`${used.filename} (${name} ${version}), which pip resolved with, is no longer on the upstream page with that sha256`, name),
      );
      continue;
    }
    const requiredBy = resolution.dists.filter((other) => other.name !== name && other.requires.includes(name)).map((other) => other.name);
    entries.push({ name, version, requested: dist.requested, requiredBy: requiredBy.filter((n) => resolvedNames.has(n)), files: [...files.values()] });
  }
  return { entries, problems };
}

/** What the report lists as packages: each resolved one with the files the proxy served for it. */
function resolvedPackages(dists: ResolvedDist[], served: ServedFile[]): Report['packages'] {
  return dists.map((dist) => ({
    name: dist.name,
    version: dist.version,
    marker: null,
    files: served.filter((file) => file.project === dist.name).map(({ filename, sha256, size }) => ({ filename, sha256, size })),
  }));
}

/**
 * The lock's build pins into `<lock>.build.txt`; with none, a stale file of ours there is removed
 * (one that does not start with our title is someone else's, and is left).
 */
async function writeBuildPinsBeside(lockfile: string, pins: BuildPin[], writtenBy: string): Promise<void> {
  const file = buildPinsPath(lockfile);
  if (pins.length > 0) {
    await writeAtomically(file, renderBuildPins(pins, buildPinsHeader(path.basename(lockfile), writtenBy)));
    return;
  }
  const existing = await readFile(file, 'utf8').catch(() => null);
  if (existing?.startsWith(`# ${BUILD_PINS_TITLE}`)) await rm(file, { force: true });
}

/** Write beside the target, then rename over it: a reader sees the old lock or the whole new one. */
export async function writeAtomically(file: string, text: string): Promise<void> {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(temp, text, { mode: 0o644, flag: 'wx' });
    await rename(temp, file);
  } catch (error: unknown) {
    await rm(temp, { force: true });
    throw new EnvironmentError('lock.unwritable', `cannot write the lock to ${file}: ${(error as Error).message}`, { cause: error });
  }
}
