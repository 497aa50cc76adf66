/**
 * Steps every workflow shares: the engine and image, observing a run phase by phase, how a phase's
 * command failed, and writing the report. Plain functions; the engine comes in through `deps`.
 */
import { homedir } from 'node:os';
import path from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { finding, type Finding } from '../core/finding.js';
import { DEFAULT_LIMITS, errorText, type CollectFailure, type InstallOutcome, type Limits, type RunOutcome } from '../core/outcome.js';
import { EnvironmentError, EXIT, InputError, InterruptedError, SandboxError } from '../errors.js';
import { mergeBuildPins, type BuildPin, type BuildRequirements } from '../lock/build-pins.js';
import type { LockedRequirement, LockPlan } from '../lock/types.js';
import type { Judgement } from '../policy/evaluate.js';
import type { Policy } from '../policy/schema.js';
import { pipConfiguredUpstreams, redactUrl, type LocalFile, type ServedFile, type Upstreams } from '../proxy/index.js';
import { versionFromFilename } from '../proxy/names.js';
import { sdistOnly, type LockedFile } from '../proxy/locked-files.js';
import { sandboxPython, wheelSupported } from '../lock/wheel-tags.js';
import { SandboxSession } from '../sandbox/session.js';
import { attributeByWriter, observe, writerIn, type Observation, type ObserveInput, type PathWriter } from '../observe/index.js';
import type { BuildFootprint } from '../observe/meddling.js';
import { serializeReport } from '../report/bound.js';
import type { Report } from '../report/schema.js';
import { buildVariantTag, defaultImageTag, ensureBuildVariant, ensureImage } from '../runtime/image.js';
import type { ContainerClient } from '../runtime/port.js';
import { chooseTarget, hostPython311, labelledPython, pipTarget, type PythonTarget } from './target-python.js';
import { teeInto, type Consumer } from './tee.js';

export interface WorkflowDeps {
  engine: ContainerClient;
  logger: Logger;
  /** Aborted by SIGINT/SIGTERM/SIGHUP (an InterruptedError as reason): every step stops, cleanup runs. */
  signal: AbortSignal;
  /** The host's python3.11 version, null when there is none (the target when no --python-version is given); default: hostPython311. */
  hostPython?: () => Promise<string | null>;
}

/**
 * The run's target Python, chosen before any container (workflows/target-python.ts): refused here
 * when its major.minor is not the image's.
 */
export function chooseRunTarget(requested: string | undefined, image: string | undefined, deps: WorkflowDeps): ReturnType<typeof chooseTarget> {
  return chooseTarget(requested, deps.hostPython ?? (() => hostPython311(deps.signal)), async () =>
    labelledPython(deps.engine, image ?? (await defaultImageTag())),
  );
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
  if (outcome.timedOut || outcome.diskExceeded !== null || outcome.pipExitCode === 0) return [];
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
 * with the install phase.
 */
export async function observePhases(run: RunOutcome, shared: Omit<ObserveInput, 'outcome'>): Promise<Observation> {
  const all: Observation = { findings: [], network: [], filesystem: [], processes: [], timeline: [] };
  let siteOwners: ReadonlyMap<string, string> | undefined;
  const writers: Array<ReadonlyMap<string, PathWriter>> = [];
  const main = mainPhase(run);
  // Each build phase is held to the builds before it (fs.build-meddling), by what each made.
  const builds: BuildFootprint[] = [];
  for (const outcome of run.phases) {
    const build = outcome.phase === 'build' ? { name: builds.length === 0 ? 'build' : `build-${builds.length + 1}`, earlier: [...builds] } : undefined;
    const seen = await observe({ ...shared, outcome, archive: outcome === main ? shared.archive : null, siteOwners, build });
    if (seen.footprint) builds.push(seen.footprint);
    // The tree is scanned with the first phase; the later ones attribute by its owners.
    siteOwners ??= seen.siteOwners;
    all.verified ??= seen.verified;
    const phase = outcome.phase;
    all.findings.push(...seen.findings.map((f) => ({ ...f, phase })));
    if (seen.siteWriters) writers.push(seen.siteWriters);
    all.network.push(...seen.network.map((e) => ({ ...e, phase })));
    all.filesystem.push(...seen.filesystem.map((e) => ({ ...e, phase })));
    all.processes.push(...seen.processes.map((e) => ({ ...e, phase })));
    all.timeline.push(...seen.timeline.map((e) => ({ ...e, phase })));
  }
  // A file the scan found that no RECORD claims may have been written in another phase (a build
  // before the install): the package of whichever phase's process wrote it last.
  all.findings = attributeByWriter(all.findings, (full) => {
    return writers
      .map((phase) => writerIn(phase, full))
      .filter((w) => w?.package != null)
      .at(-1);
  });
  return all;
}

/** What the report says of each phase that ran, in order. */
export function phaseSummaries(run: RunOutcome): NonNullable<Report['phases']> {
  return run.phases.map((phase) => ({
    name: phase.phase,
    exitCode: phase.pipExitCode,
    timedOut: phase.timedOut,
    traceBytes: phase.trace === null ? null : Buffer.byteLength(phase.trace),
    ...phaseMs(phase),
  }));
}

/** A phase's duration from the supervisor's own clock (status.json is hostile input: only a sane span counts). */
function phaseMs(phase: InstallOutcome): { ms?: number } {
  const started = phase.status?.started;
  const ended = phase.status?.pipEnded ?? phase.status?.ended;
  if (typeof started !== 'number' || typeof ended !== 'number' || !(ended >= started) || ended - started > 86_400) return {};
  return { ms: Math.round((ended - started) * 1000) };
}

export async function writeReport(file: string | undefined, report: Report): Promise<void> {
  if (!file) return;
  // Its directory too (`--report out/run.json` on a fresh clone, before any export made out/): a
  // run that failed must still leave its report.
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, serializeReport(report));
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
  /** --timeout; default: the policy's limits.timeoutSeconds, else DEFAULT_TIMEOUT_SECONDS. */
  timeoutSeconds?: number;
  unlocked?: { localFiles: LocalFile[] };
  /** lock: the first phase resolves these requirements instead of installing the plan. */
  resolve?: { requirements: string };
  /** A locked run installs wheels only, building these locked sdists first (SessionOptions.build). */
  build?: { requirements: LockedRequirement[] };
  /** The build requirements the proxy may serve (SessionOptions.buildRequirements). */
  buildRequirements?: BuildRequirements;
  /** The Python the run installs for, and the image's (workflows/target-python.ts). Absent: the image's own. */
  python?: PythonTarget;
}

/** The run's limits: the defaults, then the policy's, then --timeout. */
export function runLimits(policy: Policy, timeoutSeconds: number | undefined): Limits {
  const { limits } = policy;
  return {
    ...DEFAULT_LIMITS,
    ...(limits.memoryMb === undefined ? {} : { memoryBytes: limits.memoryMb * 1024 ** 2 }),
    ...(limits.pids === undefined ? {} : { pids: limits.pids }),
    ...(limits.diskMb === undefined ? {} : { diskBytes: limits.diskMb * 1024 ** 2 }),
    timeoutMs: (timeoutSeconds ?? limits.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS) * 1000,
  };
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
    limits: runLimits(request.policy, request.timeoutSeconds),
    logger: log,
    signal: deps.signal,
    ...(request.unlocked ? { unlocked: request.unlocked } : {}),
    ...(request.resolve ? { resolve: request.resolve } : {}),
    ...(request.build ? { build: request.build } : {}),
    ...(request.buildRequirements ? { buildRequirements: request.buildRequirements } : {}),
    ...pythonOptions(request.python),
  });
}

/** What a session takes of the run's Python target: the release pip evaluates for, when not the image's; the image's own. */
function pythonOptions(python: PythonTarget | undefined): { pythonTarget?: string; imagePython?: string } {
  if (python === undefined) return {};
  const target = pipTarget(python);
  return { ...(target === null ? {} : { pythonTarget: target }), ...(python.image === null ? {} : { imagePython: python.image }) };
}

/**
 * Observe a finished run: the installed tree when pip succeeded (judged with the first phase), the
 * served wheels `wheel` picks held to what they installed, and every phase.
 */
export async function observeRun(session: SandboxSession, run: RunOutcome, shared: Shared, wheel: (file: ServedFile) => boolean): Promise<Observation> {
  const { built, ...common } = shared;
  const rest = { ...common, wheels: observedWheels(session, wheel, built), canaries: session.canaries };
  if (!treeInstalled(run)) return observePhases(run, { ...rest, archive: null });
  return failClosed(
    session,
    'site-archive',
    async () => observePhases(run, { ...rest, archive: await session.siteArchive() }),
    (failure) => observePhases(withCollectFailure(run, failure), { ...rest, archive: null }),
  );
}

/**
 * `read`, a step that reads what the stopped sandbox left; when it fails while the engine still
 * answers, `instead` with the failure (which observe/ judges monitor.tampered), so every finding
 * and event already gathered is kept. An engine that stopped answering is engine.lost; an
 * interruption, or the host's own failure (its disk full while staging), is thrown as it is.
 */
export async function failClosed<T>(
  session: SandboxSession,
  step: CollectFailure['step'],
  read: () => Promise<T>,
  instead: (failure: CollectFailure) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  try {
    return await read();
  } catch (error: unknown) {
    // What the host, the user or a signal caused stays what it is; a malformed or broken archive
    // (InstallError observe.scan-failed, or the engine's own error) is the sandbox's.
    if (error instanceof EnvironmentError || error instanceof InputError || error instanceof InterruptedError || signal?.aborted) throw error;
    await session.engineAnswers();
    return instead({ step, error: errorText(error) });
  }
}

/** The run with `failure` on its main phase (the one the installed tree is judged with). */
export function withCollectFailure(run: RunOutcome, failure: CollectFailure): RunOutcome {
  const main = mainPhase(run);
  return { ...run, phases: run.phases.map((phase) => (phase === main ? { ...phase, collectFailures: [...(phase.collectFailures ?? []), failure] } : phase)) };
}

/** What observing a run takes besides the run: `built`, the wheels the build phase made, held like the locked ones. */
type Shared = Pick<ObserveInput, 'distributions' | 'policy' | 'reservedNames'> & { built?: ObserveInput['wheels'] };

/**
 * The phase that made the installed tree: `install` when it ran; otherwise the last phase that ran
 * (a build that failed, or `resolve`), whose end is the run's.
 */
export function mainPhase(run: RunOutcome): InstallOutcome | undefined {
  return run.phases.find((phase) => phase.phase === 'install') ?? run.phases.at(-1);
}

/** pip succeeded: there is an installed tree to read, judged with the install phase. */
export const treeInstalled = (run: RunOutcome): boolean => {
  const main = mainPhase(run);
  return main?.phase === 'install' && main.pipExitCode === 0;
};

/** The wheels the tree is held to: those the proxy served (verified against the lock), and those the build phases made. */
function observedWheels(session: SandboxSession, wheel: (file: ServedFile) => boolean, built: Shared['built']): ObserveInput['wheels'] {
  const served = session.proxyRecords.served
    .filter((file) => file.filename.endsWith('.whl') && wheel(file))
    .map((file) => ({ filename: file.filename, sha256: file.sha256, file: file.cachePath }));
  return [...served, ...(built ?? []).map((w) => ({ filename: w.filename, sha256: w.sha256, file: w.file, built: true }))];
}

/**
 * observeRun for a run whose installed tree (pip succeeded: treeInstalled) `read` also reads, the
 * export's staging: the archive comes out of the sandbox once and both read it in the same pass
 * (workflows/tee.ts). A failure of either stops both and is thrown; an interruption stops both and
 * throws the signal's reason.
 */
export async function observeRunReading<T>(
  session: SandboxSession,
  run: RunOutcome,
  shared: Shared,
  wheel: (file: ServedFile) => boolean,
  read: Consumer<T>,
  signal: AbortSignal,
): Promise<{ observed: Observation; read: T | null }> {
  const { built, ...common } = shared;
  const rest = { ...common, wheels: observedWheels(session, wheel, built), canaries: session.canaries };
  return failClosed<{ observed: Observation; read: T | null }>(
    session,
    'site-archive',
    async () => {
      const [observed, done] = await teeInto<[Observation, T]>(
        await session.siteArchive(),
        [(archive) => observePhases(run, { ...rest, archive }), read],
        signal,
      );
      return { observed, read: done };
    },
    // Nothing was read to publish: the run fails.
    async (failure) => ({ observed: await observePhases(withCollectFailure(run, failure), { ...rest, archive: null }), read: null }),
    signal,
  );
}

/** What every workflow's report says of a run it observed and judged. */
export function recordRun(report: Report, run: RunOutcome, observed: Observation, judgement: Judgement, session: SandboxSession): void {
  report.verdict = judgement.verdict;
  report.findings = judgement.findings;
  report.proxy = session.proxyRecords.requests;
  report.network = observed.network;
  report.filesystem = observed.filesystem;
  report.processes = observed.processes;
  const install = mainPhase(run)!;
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

/**
 * The build image (images/build/: the sandbox image plus a C compiler from Debian), built when
 * missing, for runs that build sdists with C extensions. A requested image is used as it is: it
 * is the caller's to give a compiler.
 */
export async function prepareBuildImage(requested: string | undefined, deps: WorkflowDeps, log: Logger): Promise<string> {
  if (requested !== undefined) return prepareImage(requested, deps, log);
  const base = await prepareImage(undefined, deps, log);
  const image = await buildVariantTag(base);
  const started = performance.now();
  const built = await ensureBuildVariant({ client: deps.engine, base, tag: image, progress: (line) => log.info({ image }, `image: ${line}`) });
  if (built !== 'existing') log.info({ image, ms: Math.round(performance.now() - started) }, 'built the build image (a C compiler from Debian)');
  return image;
}

/** Where a locked run fetches from: the flags, else pip's configuration; the lockfile's own index lines only when the policy allows them. */
export function lockedUpstreams(request: { indexUrl?: string; extraIndexUrls: string[] }, lock: LockPlan, policy: Policy): Promise<Upstreams> {
  return pipConfiguredUpstreams({
    indexUrl: request.indexUrl ?? (policy.allowLockIndexUrl ? (lock.indexUrl ?? undefined) : undefined),
    extraIndexUrls: [...request.extraIndexUrls, ...(policy.allowLockIndexUrl ? lock.extraIndexUrls : [])],
  });
}

/** A lockfile's own index lines are reported, and honoured only when the policy allows it. */
export function lockIndexFindings(plan: LockPlan, allowed: boolean): Finding[] {
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

/** Each locked requirement with the locked files the proxy served for it. */
export function lockedPackages(plan: LockPlan, served: ServedFile[]): Report['packages'] {
  return plan.requirements.map((req) => ({
    name: req.name,
    version: req.version,
    marker: req.marker,
    line: req.line,
    files: [
      ...new Map(
        served
          .filter((file) => file.locked && file.project === req.name && req.sha256.includes(file.sha256))
          .map(({ filename, sha256, size }) => [filename, { filename, sha256, size }]),
      ).values(),
    ],
  }));
}

/**
 * A wheels-only policy refuses each lock entry that has only an sdist, read from the upstream pages
 * on the host: no container starts for a lock it would refuse anyway.
 */
export function sdistFindings(plan: LockPlan, policy: Policy, files: ReadonlyMap<string, LockedFile[]>): Finding[] {
  if (!policy.onlyBinary) return [];
  return sdistOnly(plan, files).map((req) =>
    finding(
      'policy.sdist-forbidden',
      'high',
      `${req.name}==${req.version} (${plan.file}:${req.line}) has only an sdist, and policy ${policy.name} installs wheels only`,
      { line: req.line, files: (files.get(req.name) ?? []).filter((f) => req.sha256.includes(f.sha256)).map((f) => f.filename) },
      req.name,
    ),
  );
}

/**
 * The locked requirements pip would build from an sdist, built once in the build phase: those with
 * a locked sdist and no locked wheel the sandbox's interpreter can install (wheel-tags.ts), or that
 * the lock's --no-binary sends to source. None under a wheels-only policy.
 */
export function sdistsToBuild(plan: LockPlan, policy: Policy, files: ReadonlyMap<string, LockedFile[]>): LockedRequirement[] {
  if (policy.onlyBinary) return [];
  const target = sandboxPython();
  const { noBinary, onlyBinary } = plan.pipOptions;
  const fromSource = (name: string) => !onlyBinary.includes(name) && (noBinary.includes(name) || noBinary.includes(':all:'));
  return plan.requirements.filter((req) => {
    const own = (files.get(req.name) ?? []).filter((file) => req.sha256.includes(file.sha256));
    if (!own.some((file) => file.kind === 'sdist')) return false;
    return fromSource(req.name) || !own.some((file) => file.kind === 'wheel' && wheelSupported(file.filename, target));
  });
}

/**
 * Run a workflow's body with its report: whatever happens, the total time is set and the report is
 * written; an error is recorded in it and thrown on. The body returns the exit code.
 */
export async function withReport(file: string | undefined, report: Report, started: number, log: Logger, body: () => Promise<number>): Promise<WorkflowResult> {
  let exitCode: number;
  try {
    exitCode = await body();
  } catch (error: unknown) {
    report.error = error instanceof SandboxError ? error.toJSON() : { message: String(error) };
    throw error;
  } finally {
    report.timings.total = Math.round(performance.now() - started);
    await writeFinalReport(file, report, log);
  }
  return { exitCode, report };
}

/** The pins of files a run served as build requirements; a file whose name gives no version is left out. */
export function pinsOfServed(files: ReadonlyArray<{ project: string; filename: string; sha256: string }>): BuildPin[] {
  return mergeBuildPins(
    files.flatMap((file) => {
      const version = versionFromFilename(file.project, file.filename);
      return version === null ? [] : [{ name: file.project, version, sha256: [file.sha256] }];
    }),
  );
}
