/**
 * The main job as a plain function: plan, prepare the engine and image, run pip in the sandbox,
 * observe, judge, export only on pass, and write the report. It knows no commander and writes
 * nothing to stdout; the engine comes in through `deps`, so a fake backend drives it in unit tests.
 * Exit 0 only when exported.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { finding, type Finding } from '../core/finding.js';
import { TOOL_VERSION } from '../core/version.js';
import { EnvironmentError, InputError, SandboxError } from '../errors.js';
import { assertReplaceable, MANIFEST_NAME, stageExport } from '../export/publish.js';
import { readLock } from '../lock/parse.js';
import type { LockPlan } from '../lock/types.js';
import { evaluate } from '../policy/evaluate.js';
import { loadPolicy } from '../policy/load.js';
import type { Policy } from '../policy/schema.js';
import { pipConfiguredUpstreams, redactUrl } from '../proxy/index.js';
import { emptyReport, type Report } from '../report/schema.js';
import { conflictsWithOnlyBinaryPolicy } from '../sandbox/requirements.js';
import type { SandboxSession } from '../sandbox/session.js';
import {
  exitCodeOf,
  observeRun,
  openSession,
  phaseFailure,
  prepareImage,
  recordRun,
  writeFinalReport,
  writeReport,
  type WorkflowDeps,
  type WorkflowResult,
} from './steps.js';

export interface InstallRequest {
  lockfile: string;
  indexUrl?: string;
  extraIndexUrls: string[];
  /** A preset name or a policy file. */
  policy: string;
  output: string;
  /** Where the JSON report goes, whatever the verdict. */
  report?: string;
  timeoutSeconds: number;
  /** The sandbox image; default: the tag of images/, built when missing. */
  image?: string;
  cacheDir?: string;
}

export type InstallResult = WorkflowResult;

/** Step 1: read the lock and the policy, and refuse what cannot be honoured before any container starts. */
async function plan(request: InstallRequest): Promise<{ plan: LockPlan; policy: Policy }> {
  const plan = await readLock(request.lockfile);
  const policy = await loadPolicy(request.policy);
  const conflict = policy.onlyBinary ? conflictsWithOnlyBinaryPolicy(plan.pipOptions) : null;
  if (conflict !== null) throw new InputError('lock.invalid', `${request.lockfile}: ${conflict}`);
  if (policy.export) await assertReplaceable(path.resolve(request.output));
  return { plan, policy };
}

/** A lockfile's own index lines are reported, and honoured only when the policy allows it. */
function lockIndexFindings(plan: LockPlan, allowed: boolean): Finding[] {
  return [plan.indexUrl, ...plan.extraIndexUrls]
    .filter((url): url is string => url !== null)
    .map(redactUrl)
    .map((url) =>
      finding(
        'lock.index-url',
        'info',
        allowed ? `the lockfile names index ${url}; honoured by policy` : `the lockfile names index ${url}; ignored (policy does not allow lockfile indexes)`,
        { url },
      ),
    );
}

function packagesOf(plan: LockPlan, served: Array<{ project: string; filename: string; sha256: string; size: number; locked: boolean }>): Report['packages'] {
  return plan.requirements.map((req) => ({
    name: req.name,
    version: req.version,
    marker: req.marker,
    files: served
      .filter((file) => file.locked && file.project === req.name && req.sha256.includes(file.sha256))
      .map(({ filename, sha256, size }) => ({ filename, sha256, size })),
  }));
}

export async function install(request: InstallRequest, deps: WorkflowDeps): Promise<InstallResult> {
  const started = performance.now();
  const timings: Record<string, number> = {};
  const { plan: lock, policy } = await plan(request);
  const cli = {
    indexUrl: request.indexUrl ?? (policy.allowLockIndexUrl ? (lock.indexUrl ?? undefined) : undefined),
    extraIndexUrls: [...request.extraIndexUrls, ...(policy.allowLockIndexUrl ? lock.extraIndexUrls : [])],
  };
  const upstreams = await pipConfiguredUpstreams(cli);
  const log = deps.logger.child({ lockfile: request.lockfile });

  let t = performance.now();
  const image = await prepareImage(request.image, deps, log);
  timings.image = Math.round(performance.now() - t);

  const report = emptyReport({ version: TOOL_VERSION, lockfile: request.lockfile, policy: policy.name, image, timings });
  let exitCode: number;
  try {
    // Step 3: the run. The session removes its containers and temp dirs however this block ends.
    await using session = await openSession(
      { image, plan: lock, upstreams, policy, cacheDir: request.cacheDir, timeoutSeconds: request.timeoutSeconds },
      deps,
      log,
    );
    log.info(
      { packages: lock.requirements.length, upstreams: { indexUrl: redactUrl(upstreams.indexUrl), extraIndexUrls: upstreams.extraIndexUrls.map(redactUrl) } },
      'installing in the sandbox',
    );
    const run = await session.run();
    Object.assign(timings, run.timings);
    deps.signal.throwIfAborted();

    // Step 4: observe, phase by phase. The installed tree is held to the locked wheels.
    t = performance.now();
    const distributions = lock.requirements.map((r) => r.name);
    const observed = await observeRun(session, run, { distributions, policy, reservedNames: [MANIFEST_NAME] }, (file) => file.locked);
    timings.observe = Math.round(performance.now() - t);

    // Step 5: judge.
    const failures = run.phases.flatMap(phaseFailure);
    const judgement = evaluate(
      {
        findings: [...lockIndexFindings(lock, policy.allowLockIndexUrl), ...observed.findings, ...failures],
        packages: distributions,
        installSucceeded: run.phases.every((phase) => phase.pipExitCode === 0),
      },
      policy,
    );
    recordRun(report, run, observed, judgement, session);
    report.packages = packagesOf(lock, session.proxyRecords.served);

    // Step 6: export, only on pass.
    if (report.verdict === 'pass' && policy.export) {
      deps.signal.throwIfAborted();
      t = performance.now();
      await exportTree(session, request, report, policy, deps, log);
      timings.export = Math.round(performance.now() - t);
    }
    exitCode = exitCodeOf(report.verdict);
  } catch (error: unknown) {
    report.error = error instanceof SandboxError ? error.toJSON() : { message: String(error) };
    throw error;
  } finally {
    // Step 7: the report, with the end state, whatever happened.
    timings.total = Math.round(performance.now() - started);
    await writeFinalReport(request.report, report, log);
  }
  return { exitCode, report };
}

/**
 * Stage the archive, re-judge what staging found, write the report, and only then publish: the
 * report says what will be published, and a report that cannot be written stops the export.
 */
async function exportTree(session: SandboxSession, request: InstallRequest, report: Report, policy: Policy, deps: WorkflowDeps, log: Logger): Promise<void> {
  const staged = await stageExport(await session.siteArchive(), request.output);
  if (staged.bytecode?.skipped) log.warn({ reason: staged.bytecode.skipped }, 'exporting without bytecode; Python compiles it at first import');
  if (staged.findings.length > 0) {
    await staged.discard();
    // What the export finds (a source that does not compile, an unsafe entry) is about the tree the
    // install phase produced.
    const found = staged.findings.map((f) => ({ ...f, phase: 'install' }));
    const again = evaluate({ findings: [...report.findings, ...found], packages: [], installSucceeded: true }, policy);
    report.verdict = again.verdict;
    report.findings = again.findings;
    return;
  }
  if (deps.signal.aborted) {
    // Interrupted while extracting: nothing is published.
    await staged.discard();
    deps.signal.throwIfAborted();
  }
  report.exported = path.resolve(request.output);
  report.manifest = path.join(report.exported, MANIFEST_NAME);
  try {
    await writeReport(request.report, report);
  } catch (error: unknown) {
    report.exported = null;
    report.manifest = null;
    await staged.discard();
    throw new EnvironmentError('report.unwritable', `could not write the report to ${request.report}; nothing was exported`, { cause: error });
  }
  try {
    await staged.publish();
  } catch (error: unknown) {
    report.exported = null;
    report.manifest = null;
    throw error;
  }
}
