/**
 * The main job as a plain function: the locked pipeline (workflows/locked-run.ts) with one phase,
 * `install`, publishing the installed site-packages. It knows no commander and writes nothing to
 * stdout; the engine comes in through `deps`, so a fake backend drives it in unit tests. Exit 0
 * only when exported.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { EnvironmentError } from '../errors.js';
import { MANIFEST_NAME, stageExport } from '../export/publish.js';
import type { Policy } from '../policy/schema.js';
import type { Report } from '../report/schema.js';
import type { SandboxSession } from '../sandbox/session.js';
import { lockedRun, rejudge, type LockedRunRequest } from './locked-run.js';
import { prepareBuildImage, prepareImage, writeReport, type WorkflowDeps, type WorkflowResult } from './steps.js';

export interface InstallRequest extends LockedRunRequest {
  /** Run in the build image (a C compiler from Debian) rather than the plain sandbox image. */
  buildImage?: boolean;
}

export type InstallResult = WorkflowResult;

export function install(request: InstallRequest, deps: WorkflowDeps): Promise<InstallResult> {
  return lockedRun(
    request,
    {
      doing: 'installing in the sandbox',
      publishes: (policy) => policy.export,
      image: (_lock, _upstreams, log) => (request.buildImage ? prepareBuildImage(request.image, deps, log) : prepareImage(request.image, deps, log)),
      after: () => [],
      publish: (session, _lock, report, policy, log) => exportTree(session, request, report, policy, deps, log),
    },
    deps,
  );
}

/**
 * Stage the archive, re-judge what staging found, write the report, and only then publish: the
 * report says what will be published, and a report that cannot be written stops the export.
 */
async function exportTree(session: SandboxSession, request: InstallRequest, report: Report, policy: Policy, deps: WorkflowDeps, log: Logger): Promise<void> {
  const staged = await stageExport(await session.siteArchive(), request.output, { makeDir: session.makeDir });
  if (staged.bytecode?.skipped) log.warn({ reason: staged.bytecode.skipped }, 'exporting without bytecode; Python compiles it at first import');
  if (staged.findings.length > 0) {
    await staged.discard();
    // What the export finds (a source that does not compile, an unsafe entry) is about the tree the
    // install phase produced.
    rejudge(
      report,
      staged.findings.map((f) => ({ ...f, phase: 'install' })),
      policy,
    );
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
