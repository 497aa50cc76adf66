/**
 * Steps every workflow shares: the engine and image, observing a run phase by phase, how a phase's
 * command failed, and writing the report. Plain functions; the engine comes in through `deps`.
 */
import { homedir } from 'node:os';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { finding, type Finding } from '../core/finding.js';
import { DEFAULT_LIMITS, type InstallOutcome, type RunOutcome } from '../core/outcome.js';
import { EXIT } from '../errors.js';
import type { LockPlan } from '../lock/types.js';
import type { Judgement } from '../policy/evaluate.js';
import type { Policy } from '../policy/schema.js';
import type { LocalFile, ServedFile, Upstreams } from '../proxy/index.js';
import { SandboxSession } from '../sandbox/session.js';
import { observe, type Observation, type ObserveInput } from '../observe/index.js';
import { serializeReport } from '../report/bound.js';
import type { Report } from '../report/schema.js';
import { defaultImageTag, ensureImage } from '../runtime/image.js';
import type { ContainerClient } from '../runtime/port.js';

export interface WorkflowDeps {
  engine: ContainerClient;
  logger: Logger;
  /** Aborted by SIGINT/SIGTERM (an InterruptedError as reason): every step stops, cleanup runs. */
  signal: AbortSignal;
}

export interface WorkflowResult {
  exitCode: number;
  report: Report;
}

/** The one default of --timeout, for every command that runs a sandbox. */
export const DEFAULT_TIMEOUT_SECONDS = DEFAULT_LIMITS.timeoutMs / 1000;

export function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache');
  return path.join(base, 'sandbox-install');
}

/** The engine answers and the image exists (built when missing). */
export async function prepareImage(requested: string | undefined, deps: WorkflowDeps, log: Logger): Promise<string> {
  await deps.engine.ping();
  const image = requested ?? (await defaultImageTag());
  const built = await ensureImage({
    client: deps.engine,
    tag: image,
    base: 'auto',
    signal: deps.signal,
    progress: (line) => log.info({ image }, `image: ${line}`),
  });
  if (built !== 'existing') log.info({ image, path: built }, `built the sandbox image (${built})`);
  return image;
}

/** A phase whose command failed for a reason no other finding explains. */
export function phaseFailure(outcome: InstallOutcome): Finding[] {
  if (outcome.timedOut || outcome.pipExitCode === 0) return [];
  const lastError = outcome.pipOutput
    .split('\n')
    .filter((line) => line.startsWith('ERROR'))
    .slice(-3)
    .join(' ');
  const what = outcome.phase === 'install' ? 'pip' : `the ${outcome.phase} phase`;
  return [
    finding('install.failed', 'high', `${what} exited with ${outcome.pipExitCode ?? 'no exit code'}${lastError ? `: ${lastError}` : ''}`, {
      exitCode: outcome.pipExitCode,
    }),
  ].map((f) => ({ ...f, phase: outcome.phase }));
}

/**
 * Each phase observed on its own (its trace, its status, the monitor events of its time window),
 * every finding and event tagged with the phase it happened in. The installed tree is judged once,
 * with the first phase.
 */
export async function observePhases(run: RunOutcome, shared: Omit<ObserveInput, 'outcome'>): Promise<Observation> {
  const all: Observation = { findings: [], network: [], filesystem: [], processes: [], timeline: [] };
  for (const [i, outcome] of run.phases.entries()) {
    const seen = await observe({ ...shared, outcome, archive: i === 0 ? shared.archive : null });
    const phase = outcome.phase;
    all.findings.push(...seen.findings.map((f) => ({ ...f, phase })));
    all.network.push(...seen.network.map((e) => ({ ...e, phase })));
    all.filesystem.push(...seen.filesystem.map((e) => ({ ...e, phase })));
    all.processes.push(...seen.processes.map((e) => ({ ...e, phase })));
    all.timeline.push(...seen.timeline.map((e) => ({ ...e, phase })));
  }
  return all;
}

/** What the report says of each phase that ran, in order. */
export function phaseSummaries(run: RunOutcome): NonNullable<Report['phases']> {
  return run.phases.map((phase) => ({
    name: phase.phase,
    exitCode: phase.pipExitCode,
    timedOut: phase.timedOut,
    traceBytes: phase.trace === null ? null : Buffer.byteLength(phase.trace),
  }));
}

export async function writeReport(file: string | undefined, report: Report): Promise<void> {
  if (file) await writeFile(file, serializeReport(report));
}

/**
 * Write the report at the end of a run. Bounded (report/bound.ts): nothing a package floods into it
 * can make serialising throw. A failure here is logged, never thrown: it must not replace the error
 * or the exit code that ended the run.
 */
export async function writeFinalReport(file: string | undefined, report: Report, log: Logger): Promise<void> {
  await writeReport(file, report).catch((error: unknown) => log.error({ err: error, report: file }, 'could not write the report'));
}

export interface SessionRequest {
  image: string;
  plan: LockPlan;
  upstreams: Upstreams;
  policy: Policy;
  cacheDir?: string;
  timeoutSeconds: number;
  unlocked?: { localFiles: LocalFile[] };
}

/** One sandbox session on the injected engine; it removes what it made however the caller's block ends. */
export function openSession(request: SessionRequest, deps: WorkflowDeps, log: Logger): Promise<SandboxSession> {
  return SandboxSession.open({
    client: deps.engine,
    image: request.image,
    plan: request.plan,
    upstreams: request.upstreams,
    policy: request.policy,
    cacheDir: request.cacheDir ?? defaultCacheDir(),
    limits: { ...DEFAULT_LIMITS, timeoutMs: request.timeoutSeconds * 1000 },
    logger: log,
    signal: deps.signal,
    ...(request.unlocked ? { unlocked: request.unlocked } : {}),
  });
}

/**
 * Observe a finished run: the installed tree when pip succeeded (judged with the first phase), the
 * served wheels `wheel` picks held to what they installed, and every phase.
 */
export async function observeRun(
  session: SandboxSession,
  run: RunOutcome,
  shared: Pick<ObserveInput, 'distributions' | 'policy' | 'reservedNames'>,
  wheel: (file: ServedFile) => boolean,
): Promise<Observation> {
  const archive = run.phases[0]?.pipExitCode === 0 ? await session.siteArchive() : null;
  const wheels = session.proxyRecords.served
    .filter((file) => file.filename.endsWith('.whl') && wheel(file))
    .map((file) => ({ filename: file.filename, sha256: file.sha256, file: file.cachePath }));
  return observePhases(run, { ...shared, archive, wheels, canaries: session.canaries });
}

/** What every workflow's report says of a run it observed and judged. */
export function recordRun(report: Report, run: RunOutcome, observed: Observation, judgement: Judgement, session: SandboxSession): void {
  report.verdict = judgement.verdict;
  report.findings = judgement.findings;
  report.proxy = session.proxyRecords.requests;
  report.network = observed.network;
  report.filesystem = observed.filesystem;
  report.processes = observed.processes;
  const install = run.phases[0]!;
  report.install = {
    pipExitCode: install.pipExitCode,
    timedOut: install.timedOut,
    // The sandbox's last lines, whichever phase printed them.
    output: run.phases.map((phase) => phase.pipOutput).join(''),
    traceBytes: install.trace === null ? null : Buffer.byteLength(install.trace),
  };
  report.phases = phaseSummaries(run);
}

/** The exit code a verdict gives. */
export function exitCodeOf(verdict: Report['verdict']): number {
  return { pass: EXIT.pass, fail: EXIT.policyFail, error: EXIT.install }[verdict];
}
