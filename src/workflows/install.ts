/**
 * The main job as a plain function: the locked pipeline (workflows/locked-run.ts) with one phase,
 * `install`, publishing the installed site-packages. It knows no commander and writes nothing to
 * stdout; the engine comes in through `deps`, so a fake backend drives it in unit tests. Exit 0
 * only when exported.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { EnvironmentError, InstallError } from '../errors.js';
import { completeStage, diskFullOr, extractStaged, MANIFEST_NAME, stagingDir, type ShippedFile, type Staging, type StagedTree } from '../export/publish.js';
import type { Policy } from '../policy/schema.js';
import type { Report } from '../report/schema.js';
import { startupPhase, type SandboxSession } from '../sandbox/session.js';
import { lockedRun, rejudge, type LockedRunRequest, type TreeStage } from './locked-run.js';
import { prepareBuildImage, prepareImage, writeReport, type WorkflowDeps, type WorkflowResult } from './steps.js';

export interface InstallRequest extends LockedRunRequest {
  /** Run in the build image (a C compiler from Debian) rather than the plain sandbox image. */
  buildImage?: boolean;
}

export type InstallResult = WorkflowResult;

export function install(request: InstallRequest, deps: WorkflowDeps): Promise<InstallResult> {
  return lockedRun<Staged>(
    request,
    {
      doing: 'installing in the sandbox',
      publishes: (policy) => policy.export,
      image: (_lock, _upstreams, log) => (request.buildImage ? prepareBuildImage(request.image, deps, log) : prepareImage(request.image, deps, log)),
      after: () => [startupPhase()],
      stage: (session) => stageTree(request.output, session),
      publish: (_session, _lock, report, policy, log, staged, _built, verified) => exportTree(request, report, policy, deps, log, staged, verified),
    },
    deps,
  );
}

/** The installed tree extracted into the staging dir while the scan read it, or why that failed. */
type Staged = { staging: Staging; extracted: StagedTree } | { staging: Staging; failed: unknown };

/**
 * The staging dir beside the output (private, 0700, recorded for `gc` before it exists), and the
 * extraction into it that reads the installed tree alongside the scan. A failure to extract (the
 * host's disk full) does not stop the scan: it is about the export, so it is thrown only when there
 * is something to export, as it was when the export read the tree itself. Disposing removes the dir
 * however the run ends; after a publication it is gone already.
 */
async function stageTree(output: string, session: SandboxSession): Promise<TreeStage<Staged>> {
  const staging = await stagingDir(output, session.makeDir);
  return {
    read: (archive) =>
      extractStaged(archive, staging).then(
        (extracted) => ({ staging, extracted }),
        (failed: unknown) => ({ staging, failed }),
      ),
    [Symbol.asyncDispose]: staging.discard,
  };
}

/**
 * Finish the staged tree (compile, manifest), re-judge what staging found, write the report, and
 * only then publish: the report says what will be published, and a report that cannot be written
 * stops the export.
 */
async function exportTree(
  request: InstallRequest,
  report: Report,
  policy: Policy,
  deps: WorkflowDeps,
  log: Logger,
  tree: Staged | null,
  verified: ReadonlyMap<string, ShippedFile>,
): Promise<void> {
  if (tree === null) throw new InstallError('export.not-staged', 'the installed tree was not staged for export');
  if ('failed' in tree) throw diskFullOr(tree.failed, tree.staging.target);
  const staged = await completeStage(tree.staging, tree.extracted, { signal: deps.signal, verified });
  if (staged.bytecode?.skipped) log.warn({ reason: staged.bytecode.skipped }, 'exporting without bytecode; Python compiles it at first import');
  if (staged.findings.length > 0) {
    // What the export finds (a source that does not compile, an unsafe entry) is about the tree the
    // install phase produced. An entry extraction refused is never published (nothing was listed);
    // a source that cannot run (static.inert-source) is published with its warning.
    rejudge(
      report,
      staged.findings.map((f) => ({ ...f, phase: 'install' })),
      policy,
    );
    if (report.verdict === 'fail' || tree.extracted.findings.length > 0) {
      await staged.discard();
      return;
    }
  }
  if (deps.signal.aborted) {
    // Interrupted while the staged tree was listed: nothing is published.
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
