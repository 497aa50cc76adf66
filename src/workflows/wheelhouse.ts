/**
 * `wheelhouse`: everything `install` does (the locked sdists built once, in the build phase, and
 * installed as built; the locked wheels installed as verified). Only when the verdict is pass is
 * `<output>` written, staged beside it and renamed into place: the locked wheels from the host's
 * verified cache, the built wheels exactly as installed and scanned, a requirements.lock re-hashed
 * to exactly those files, the manifest and the JSON report. Exit 0 only when written.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { finding } from '../core/finding.js';
import { EnvironmentError, SandboxError } from '../errors.js';
import { isWheel, stageWheelhouse, WHEELHOUSE_LOCK, type WheelSelection } from '../export/wheelhouse.js';
import type { LockedRequirement, LockPlan } from '../lock/types.js';
import type { Policy } from '../policy/schema.js';
import type { ServedFile } from '../proxy/index.js';
import { serializeReport } from '../report/bound.js';
import type { Report } from '../report/schema.js';
import { startupPhase, type SandboxSession } from '../sandbox/session.js';
import type { BuiltWheel } from './built-wheels.js';
import { lockedRun, rejudge, type LockedRunRequest } from './locked-run.js';
import { pinsOfServed, prepareBuildImage, prepareImage, writeReport, type WorkflowDeps, type WorkflowResult } from './steps.js';

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

/** The locked files the proxy served for a requirement, one per filename. */
function servedFor(req: LockedRequirement, served: ServedFile[]): ServedFile[] {
  const own = served.filter((file) => file.locked && file.project === req.name && req.sha256.includes(file.sha256));
  return [...new Map(own.map((file) => [file.filename, file])).values()];
}

/**
 * What goes into the wheelhouse: for each requirement the build phase built, its built wheel (the
 * bytes the install phase installed and the scan judged); for every other one, the locked wheels
 * the proxy served it (their bytes come from the verified cache). A requirement nothing was served
 * or built for is skipped (its marker is false in the sandbox); one that was served only an sdist
 * and has no built wheel is `install.failed`.
 */
export function selectWheels(plan: LockPlan, served: ServedFile[], built: BuiltWheel[]): WheelSelection {
  const selection: WheelSelection = { locked: [], built: [], skipped: [], findings: [] };
  for (const req of plan.requirements) {
    const own = built.filter((wheel) => wheel.requirement === req.name);
    if (own.length > 0) {
      selection.built.push(...own.map(({ filename, requirement, sha256, file }) => ({ filename, requirement, sha256, file })));
      continue;
    }
    const files = servedFor(req, served);
    const wheels = files.filter((file) => isWheel(file.filename));
    if (files.length === 0) selection.skipped.push(req);
    else if (wheels.length === 0) {
      selection.findings.push(
        finding(
          'install.failed',
          'high',
          `no wheel of ${req.name}==${req.version} was installed: its sdist was served, and no wheel built from it`,
          {},
          req.name,
        ),
      );
    }
    for (const file of wheels) selection.locked.push({ filename: file.filename, requirement: req.name, sha256: file.sha256, cachePath: file.cachePath });
  }
  return selection;
}

/** The image: the build image when asked, or (by default) when the build phase has sdists to build. */
function chooseImage(request: WheelhouseRequest, builds: LockedRequirement[], deps: WorkflowDeps, log: Logger): Promise<string> {
  let build = request.buildImage;
  if (build === undefined && request.image === undefined) {
    build = builds.length > 0;
    if (build) log.info({ sdists: builds.map((req) => `${req.name}==${req.version}`) }, 'the lock has sdists to build: using the build image');
  }
  return build ? prepareBuildImage(request.image, deps, log) : prepareImage(request.image, deps, log);
}

export function wheelhouse(request: WheelhouseRequest, deps: WorkflowDeps): Promise<WorkflowResult> {
  return lockedRun(
    request,
    {
      doing: 'installing and building wheels in the sandbox',
      publishes: () => true,
      image: (_lock, _upstreams, log, builds) => chooseImage(request, builds, deps, log),
      after: () => [startupPhase()],
      publish: (session, lock, report, policy, log, _staged, built) => writeWheelhouse(session, request, lock, report, policy, deps, log, built),
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
  built: BuiltWheel[],
): Promise<void> {
  const staged = await stageWheelhouse({
    output: request.output,
    plan: lock,
    selection: selectWheels(lock, session.proxyRecords.served, built),
    // What built its sdists, pinned beside its lock: a later run from that lock builds with the same files.
    buildPins: pinsOfServed(session.proxyRecords.served.filter((file) => !file.locked)),
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
