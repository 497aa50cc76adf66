/**
 * The pipeline `install` and `wheelhouse` share, as named steps: plan (lock, policy, what can be
 * refused before any container), upstreams, what the policy refuses by the lock alone, the image,
 * one sandbox running `install` and the workflow's further phases, observe, judge, publish only on
 * pass, and the report whatever happens. A workflow gives only what differs: its phases, its image
 * choice, findings of its own, and how it publishes.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { Finding } from '../core/finding.js';
import type { PhaseSpec } from '../core/outcome.js';
import { TOOL_VERSION } from '../core/version.js';
import { InputError } from '../errors.js';
import { hostPython } from '../export/bytecode.js';
import { assertReplaceable, MANIFEST_NAME } from '../export/publish.js';
import { buildRequirementsFor, readBuildPins, type BuildPin } from '../lock/build-pins.js';
import { readLock } from '../lock/parse.js';
import type { LockedRequirement, LockPlan } from '../lock/types.js';
import { evaluate } from '../policy/evaluate.js';
import { loadPolicy } from '../policy/load.js';
import type { Policy } from '../policy/schema.js';
import { redactUrl, type ServedFile, type Upstreams } from '../proxy/index.js';
import { lockedFiles } from '../proxy/locked-files.js';
import { emptyReport, type Report } from '../report/schema.js';
import { conflictsWithOnlyBinaryPolicy } from '../sandbox/requirements.js';
import type { SandboxSession } from '../sandbox/session.js';
import { labelledPython, withImage } from './target-python.js';
import {
  chooseRunTarget,
  exitCodeOf,
  failClosed,
  lockedPackages,
  lockedUpstreams,
  lockIndexFindings,
  observeRun,
  observeRunReading,
  openSession,
  phaseFailure,
  recordRun,
  sdistFindings,
  sdistsToBuild,
  treeInstalled,
  withReport,
  type WorkflowDeps,
  type WorkflowResult,
} from './steps.js';
import { builtAll, readBuiltWheels, type BuiltWheel } from './built-wheels.js';
import { collectFindings } from '../observe/index.js';
import type { VerifiedFile } from '../observe/provenance.js';
import type { Consumer } from './tee.js';

export interface LockedRunRequest {
  lockfile: string;
  indexUrl?: string;
  extraIndexUrls: string[];
  /** A preset name or a policy file. */
  policy: string;
  /** Where the workflow publishes (site-packages, a wheelhouse). */
  output: string;
  /** Where the JSON report goes, whatever the verdict. */
  report?: string;
  /** --timeout; default: the policy's limits, else DEFAULT_TIMEOUT_SECONDS. */
  timeoutSeconds?: number;
  /** The sandbox image; default: the tag of images/, built when missing. */
  image?: string;
  cacheDir?: string;
  /** --python-version: the Python the export is for; absent: the host's python3.11, else the image's. */
  pythonVersion?: string;
}

/**
 * What a workflow reads of the installed tree in the pass the static scan makes (install: the
 * extraction into its staging dir). Disposed however the run ends, after a publication too.
 */
export interface TreeStage<S> extends AsyncDisposable {
  read: Consumer<S>;
}

/** What a locked workflow adds to the shared pipeline; `S`, what it reads of the installed tree alongside the scan. */
export interface LockedWorkflow<S = never> {
  /** For the log: what the sandbox does. */
  doing: string;
  /** Whether this policy lets the workflow publish at all (install: `export`; wheelhouse: always). */
  publishes(policy: Policy): boolean;
  /** The image to run in (built when missing); `builds`: the locked sdists the build phase will build. */
  image(lock: LockPlan, upstreams: Upstreams, log: Logger, builds: LockedRequirement[]): Promise<string>;
  /** Phases after `install`, in the same sandbox. */
  after(session: SandboxSession): PhaseSpec[];
  /**
   * For a policy that publishes and an install that succeeded: get ready to read the installed tree
   * in the same pass as the static scan (one read from the engine). What it read goes to `publish`.
   */
  stage?(session: SandboxSession): Promise<TreeStage<S>>;
  /**
   * Publish after a pass: stage (or finish what `stage` read), re-judge what staging found (setting
   * the report's verdict and findings), write the report, and only then make the output appear.
   */
  publish(
    session: SandboxSession,
    lock: LockPlan,
    report: Report,
    policy: Policy,
    log: Logger,
    staged: S | null,
    built: BuiltWheel[],
    verified: ReadonlyMap<string, VerifiedFile>,
  ): Promise<void>;
}

/** Read the lock and the policy, and refuse what cannot be honoured before any container starts. */
async function plan<S>(request: LockedRunRequest, workflow: LockedWorkflow<S>): Promise<{ lock: LockPlan; policy: Policy; lockPins: BuildPin[] }> {
  const lock = await readLock(request.lockfile);
  const lockPins = (await readBuildPins(request.lockfile))?.pins ?? [];
  const policy = await loadPolicy(request.policy);
  const conflict = policy.onlyBinary ? conflictsWithOnlyBinaryPolicy(lock.pipOptions) : null;
  if (conflict !== null) throw new InputError('lock.invalid', `${request.lockfile}: ${conflict}`);
  if (workflow.publishes(policy)) await assertReplaceable(path.resolve(request.output));
  return { lock, policy, lockPins };
}

export async function lockedRun<S>(request: LockedRunRequest, workflow: LockedWorkflow<S>, deps: WorkflowDeps): Promise<WorkflowResult> {
  const started = performance.now();
  const timings: Record<string, number> = {};
  // The target Python is asked of the host's python3.11 (0.17 s through a pyenv shim here) while
  // the lock is read and its pages fetched; it is refused, if it is, before the image step.
  const targetChosen = chooseRunTarget(request.pythonVersion, request.image, deps);
  targetChosen.catch(() => undefined);
  const { lock, policy, lockPins } = await plan(request, workflow);
  const upstreams = await lockedUpstreams(request, lock, policy);
  const log = deps.logger.child({ lockfile: request.lockfile });
  const distributions = lock.requirements.map((r) => r.name);

  // Every locked project's page, read on the host before any container: what the policy refuses
  // by the lock alone (no engine, no container), and which locked sdists are built, once.
  // An index that cannot be read ends the run here, before any container, with the report saying why (exit 3).
  const files = await lockedFiles(lock, upstreams, deps.signal).catch(async (error: unknown) => {
    const report = emptyReport({ version: TOOL_VERSION, lockfile: request.lockfile, policy: policy.name, image: null, timings });
    return withReport(request.report, report, started, log, () => Promise.reject(error)).then(() => {
      throw error;
    });
  });
  const target = await targetChosen;
  const refused = sdistFindings(lock, policy, files);
  if (refused.length > 0) {
    const report = emptyReport({ version: TOOL_VERSION, lockfile: request.lockfile, policy: policy.name, image: null, timings });
    const judgement = evaluate({ findings: refused, packages: distributions, installSucceeded: false }, policy);
    report.verdict = judgement.verdict;
    report.findings = judgement.findings;
    report.packages = lockedPackages(lock, []);
    log.warn({ refused: refused.length }, 'refused before any container started');
    return withReport(request.report, report, started, log, () => Promise.resolve(exitCodeOf(report.verdict)));
  }

  let t = performance.now();
  const builds = sdistsToBuild(lock, policy, files);
  const image = await workflow.image(lock, upstreams, log, builds);
  const python = withImage(target, await labelledPython(deps.engine, image));
  timings.image = Math.round(performance.now() - t);

  const report = emptyReport({ version: TOOL_VERSION, lockfile: request.lockfile, policy: policy.name, image, timings });
  report.python = { image: python.image, target: python.target };
  return withReport(request.report, report, started, log, async () => {
    // The run. The session removes its containers and temp dirs however this block ends.
    await using session = await openSession(
      {
        image,
        plan: lock,
        upstreams,
        policy,
        cacheDir: request.cacheDir,
        timeoutSeconds: request.timeoutSeconds,
        build: { requirements: builds },
        // Only a run that builds an sdist may be served a build requirement: pinned, or the policy's opt-in.
        buildRequirements: buildRequirementsFor(policy.build, lockPins, builds.length > 0),
        python,
      },
      deps,
      log,
    );
    log.info(
      {
        packages: lock.requirements.length,
        python: { ...python },
        upstreams: { indexUrl: redactUrl(upstreams.indexUrl), extraIndexUrls: upstreams.extraIndexUrls.map(redactUrl) },
      },
      workflow.doing,
    );
    const after = workflow.after(session);
    // The host's Python compiles the exported tree: found while pip runs in the sandbox, which has
    // one CPU of its own (images/supervisor.py), rather than while the engine starts containers.
    const run = await session.run(after, () => {
      if (workflow.publishes(policy)) hostPython().catch(() => undefined);
    });
    Object.assign(timings, run.timings);
    deps.signal.throwIfAborted();

    // Observe, phase by phase. The installed tree is held to the locked wheels and the built ones
    // (brought to the host first: what was installed is what a wheelhouse publishes); a workflow
    // that publishes the tree reads it in the same pass (nothing appears at the output before the verdict).
    t = performance.now();
    // Wheels that cannot be read back fail the run closed (monitor.tampered, phase build); nothing is published.
    const built =
      builds.length > 0 && builtAll(run)
        ? await failClosed(
            session,
            'wheel-archive',
            () => readBuiltWheels(session, builds),
            async (failure) => ({ wheels: [], findings: collectFindings([failure]).map((f) => ({ ...f, phase: 'build' as const })) }),
            deps.signal,
          )
        : { wheels: [], findings: [] };
    await using stage = workflow.stage && workflow.publishes(policy) && treeInstalled(run) ? await workflow.stage(session) : null;
    const shared = { distributions, policy, reservedNames: [MANIFEST_NAME], built: built.wheels };
    const locked = (file: ServedFile): boolean => file.locked;
    const { observed, read } = stage
      ? await observeRunReading(session, run, shared, locked, stage.read, deps.signal)
      : { observed: await observeRun(session, run, shared, locked), read: null };
    timings.observe = Math.round(performance.now() - t);
    // Interrupted while the run was observed: no verdict, nothing published.
    deps.signal.throwIfAborted();

    // Judge. Every phase must have run and succeeded for a pass.
    const judgement = evaluate(
      {
        findings: [...lockIndexFindings(lock, policy.allowLockIndexUrl), ...observed.findings, ...built.findings, ...run.phases.flatMap(phaseFailure)],
        packages: distributions,
        installSucceeded: run.phases.length === builds.length + 1 + after.length && run.phases.every((phase) => phase.pipExitCode === 0),
      },
      policy,
    );
    recordRun(report, run, observed, judgement, session);
    report.packages = lockedPackages(lock, session.proxyRecords.served);

    // Publish, only on pass.
    if (report.verdict === 'pass' && workflow.publishes(policy)) {
      deps.signal.throwIfAborted();
      t = performance.now();
      await workflow.publish(session, lock, report, policy, log, read, built.wheels, observed.verified ?? new Map());
      timings.export = Math.round(performance.now() - t);
    }
    return exitCodeOf(report.verdict);
  });
}

/** What staging found, judged and added to the report: any failing finding stops the publication. */
export function rejudge(report: Report, found: Finding[], policy: Policy): void {
  // The run's own findings are judged already (expired suppressions reported once, with them).
  const extra = evaluate({ findings: found, packages: [], installSucceeded: true }, { ...policy, expiredSuppressions: [] });
  report.findings = [...report.findings, ...extra.findings];
  if (extra.verdict === 'fail') report.verdict = 'fail';
}
