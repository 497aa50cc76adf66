/**
 * `wheelhouse`: everything `install` does, then a `wheel` phase in the same sandbox under the same
 * monitoring (`pip wheel --no-deps` on the same lock through the same proxy: locked wheels copied,
 * locked sdists built). Only when the verdict is pass is `<output>` written, staged beside it and
 * renamed into place: the locked wheels from the host's verified cache, the built wheels as built,
 * a requirements.lock re-hashed to exactly those files, the manifest and the JSON report. Exit 0
 * only when written.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { HOME, WHEEL_DIR } from '../core/layout.js';
import { finding, type Finding } from '../core/finding.js';
import type { RunOutcome } from '../core/outcome.js';
import { EnvironmentError, SandboxError } from '../errors.js';
import { isWheel, stageWheelhouse, WHEELHOUSE_LOCK, type WheelDirEntry, type WheelSelection } from '../export/wheelhouse.js';
import { normalizeName } from '../lock/normalize.js';
import type { LockedRequirement, LockPlan } from '../lock/types.js';
import { installerPids, packageOfProcess } from '../observe/attribution.js';
import { targetTamperFindings } from '../observe/filesystem.js';
import { parseTrace } from '../observe/trace.js';
import type { Policy } from '../policy/schema.js';
import type { ServedFile, Upstreams } from '../proxy/index.js';
import { lockedFiles, sdistOnly } from '../proxy/locked-files.js';
import { canonicalVersion, isSafeFilename } from '../proxy/names.js';
import { serializeReport } from '../report/bound.js';
import type { Report } from '../report/schema.js';
import { startupPhase, type SandboxSession } from '../sandbox/session.js';
import { lockedRun, rejudge, type LockedRunRequest } from './locked-run.js';
import { prepareBuildImage, prepareImage, writeReport, type WorkflowDeps, type WorkflowResult } from './steps.js';

export interface WheelhouseRequest extends LockedRunRequest {
  /**
   * true: run in the build image (a C compiler); false: the plain sandbox image; undefined: the
   * build image when some requirement's locked files are all sdists (read from the upstream pages
   * on the host before the run).
   */
  buildImage?: boolean;
  /** Written into the re-hashed lock's header; default now. */
  now?: () => Date;
}

const sameVersion = (a: string, b: string): boolean => canonicalVersion(a) === canonicalVersion(b);

/** Name and version of a wheel filename (`name-version(-build)?-py-abi-plat.whl`), or null. */
export function wheelNameVersion(filename: string): { name: string; version: string } | null {
  if (!isWheel(filename)) return null;
  const parts = filename.slice(0, -4).split('-');
  if (parts.length !== 5 && parts.length !== 6) return null;
  const [name, version] = parts as [string, string];
  return name && version ? { name: normalizeName(name), version } : null;
}

/** The locked files the proxy served for a requirement, one per filename. */
function servedFor(req: LockedRequirement, served: ServedFile[]): ServedFile[] {
  const own = served.filter((file) => file.locked && file.project === req.name && req.sha256.includes(file.sha256));
  return [...new Map(own.map((file) => [file.filename, file])).values()];
}

/** The files of the wheel dir worth reading: wheels with safe names that are not locked wheels (those come from the cache). */
export function builtCandidate(served: ServedFile[]): (name: string) => boolean {
  const locked = new Set(served.filter((file) => file.locked && isWheel(file.filename)).map((file) => file.filename));
  return (name) => isWheel(name) && isSafeFilename(name) && !locked.has(name);
}

/**
 * Which files of the wheel dir go into the wheelhouse. A wheel the proxy served as locked is that
 * locked wheel (its bytes are taken from the verified cache). Otherwise it must be a wheel named
 * for a locked requirement whose served file was an sdist, its version the locked one, and the only
 * such wheel: that is the built wheel. Anything else is `export.unexpected-file` (`export.unsafe-entry`
 * for what is not a plain file with a safe name), and a requirement pip installed that has no
 * wheel here is `install.failed`. Any finding means nothing is written. A requirement nothing was
 * served for (its marker is false in the sandbox) is skipped.
 */
export function selectWheels(entries: WheelDirEntry[], plan: LockPlan, served: ServedFile[]): WheelSelection {
  const selection: WheelSelection = { locked: [], built: [], skipped: [], findings: [] };
  const lockedWheels = new Map<string, { req: LockedRequirement; file: ServedFile }>();
  const fromSdist: LockedRequirement[] = [];
  for (const req of plan.requirements) {
    const files = servedFor(req, served);
    if (files.length === 0) selection.skipped.push(req);
    for (const file of files) if (isWheel(file.filename)) lockedWheels.set(file.filename, { req, file });
    if (files.some((file) => !isWheel(file.filename))) fromSdist.push(req);
  }
  const covered = new Set<string>();
  for (const entry of entries) {
    if (entry.type !== 'file' || !isSafeFilename(entry.name)) {
      selection.findings.push(
        finding('export.unsafe-entry', 'high', `the wheel dir holds ${entry.type} ${JSON.stringify(entry.name)}, not a plain file with a safe name`, {
          entry: entry.name,
          type: entry.type,
        }),
      );
      continue;
    }
    const locked = lockedWheels.get(entry.name);
    if (locked) {
      selection.locked.push({ filename: entry.name, requirement: locked.req.name, sha256: locked.file.sha256, cachePath: locked.file.cachePath });
      covered.add(locked.req.name);
      continue;
    }
    const dist = wheelNameVersion(entry.name);
    const req = dist ? fromSdist.find((r) => r.name === dist.name && sameVersion(r.version, dist.version)) : undefined;
    if (req && !covered.has(req.name)) {
      selection.built.push({ filename: entry.name, requirement: req.name });
      covered.add(req.name);
      continue;
    }
    const why = req
      ? `a second wheel for ${req.name}==${req.version}`
      : dist
        ? `a wheel of ${dist.name} ${dist.version}, which is not a locked sdist's project and version`
        : 'not a wheel';
    selection.findings.push(
      finding(
        'export.unexpected-file',
        'high',
        `the wheel phase left ${JSON.stringify(entry.name)}: ${why}`,
        { filename: entry.name, size: entry.size },
        dist?.name ?? null,
      ),
    );
  }
  for (const req of plan.requirements) {
    if (covered.has(req.name) || selection.skipped.includes(req)) continue;
    selection.findings.push(finding('install.failed', 'high', `the wheel phase left no wheel for ${req.name}==${req.version}`, {}, req.name));
  }
  selection.findings = selection.findings.map((f) => ({ ...f, phase: 'wheel' }));
  return selection;
}

/**
 * Only pip's installer may write into the wheel dir, and only in the wheel phase: a build hook (or
 * anything in the install phase) that creates, renames or links a file there is planting a wheel
 * pip did not build. Read from each phase's trace, as fs.target-tamper.
 */
export function wheelDirWriters(run: RunOutcome): Finding[] {
  return run.phases.flatMap((outcome) => {
    if (outcome.trace === null) return [];
    const trace = parseTrace(outcome.trace, { initialCwd: HOME });
    const installers = outcome.phase === 'wheel' ? installerPids(trace) : new Set<number>();
    return targetTamperFindings({
      trace,
      target: WHEEL_DIR,
      installers,
      packageOf: (pid) => packageOfProcess(trace, pid),
      argvOf: (pid) => trace.processes.get(pid)?.argv ?? [],
    }).map((f) => ({ ...f, phase: outcome.phase }));
  });
}

/** The image: the build image when asked, or (by default) when some requirement is locked to sdists only. */
async function chooseImage(request: WheelhouseRequest, lock: LockPlan, upstreams: Upstreams, deps: WorkflowDeps, log: Logger): Promise<string> {
  let build = request.buildImage;
  if (build === undefined && request.image === undefined) {
    const sdists = sdistOnly(lock, await lockedFiles(lock, upstreams, deps.signal));
    build = sdists.length > 0;
    if (build)
      log.info({ sdists: sdists.map((req) => `${req.name}==${req.version}`) }, 'the lock has sdists only for some requirements: using the build image');
  }
  return build ? prepareBuildImage(request.image, deps, log) : prepareImage(request.image, deps, log);
}

export function wheelhouse(request: WheelhouseRequest, deps: WorkflowDeps): Promise<WorkflowResult> {
  return lockedRun(
    request,
    {
      doing: 'installing and building wheels in the sandbox',
      publishes: () => true,
      image: (lock, upstreams, log) => chooseImage(request, lock, upstreams, deps, log),
      after: (session) => [startupPhase(), session.wheelPhase()],
      // The wheel dir is pip's alone.
      findings: wheelDirWriters,
      publish: (session, lock, report, policy, log) => writeWheelhouse(session, request, lock, report, policy, deps, log),
    },
    deps,
  );
}

/**
 * Stage the wheelhouse, re-judge what staging found, and only then publish, with the report inside
 * saying what was published. A report that cannot be written stops the publication.
 */
async function writeWheelhouse(
  session: SandboxSession,
  request: WheelhouseRequest,
  lock: LockPlan,
  report: Report,
  policy: Policy,
  deps: WorkflowDeps,
  log: Logger,
): Promise<void> {
  const served = session.proxyRecords.served;
  const staged = await stageWheelhouse({
    output: request.output,
    archive: await session.wheelArchive(),
    plan: lock,
    wanted: builtCandidate(served),
    select: (entries) => selectWheels(entries, lock, served),
    date: (request.now ?? (() => new Date()))(),
    makeDir: session.makeDir,
  });
  if (staged.findings.length > 0) {
    await staged.discard();
    rejudge(report, staged.findings, policy);
    return;
  }
  if (deps.signal.aborted) {
    await staged.discard();
    deps.signal.throwIfAborted();
  }
  // Each package lists what it was served and the wheel built from it.
  for (const pkg of report.packages) {
    for (const file of staged.files.filter((f) => f.built && f.requirement === pkg.name))
      pkg.files.push({ filename: file.filename, sha256: file.sha256, size: file.size });
  }
  if (staged.skipped.length > 0) log.info({ skipped: staged.skipped.map((req) => req.name) }, 'not in the wheelhouse: their marker is false in the sandbox');
  report.exported = path.resolve(request.output);
  report.manifest = path.join(report.exported, WHEELHOUSE_LOCK);
  try {
    await writeReport(request.report, report);
    await staged.publish(serializeReport(report));
  } catch (error: unknown) {
    report.exported = null;
    report.manifest = null;
    await staged.discard();
    if (error instanceof SandboxError) throw error;
    throw new EnvironmentError('report.unwritable', `could not write the wheelhouse to ${request.output}: ${(error as Error).message}; nothing was written`, {
      cause: error,
    });
  }
}
