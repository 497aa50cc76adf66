/**
 * `investigate`: install one suspicious thing (a name==version, a local wheel or sdist, or a
 * lockfile) in the sandbox, then import every module and submodule of everything installed the way
 * an application would, each top-level module in its own traced process, and report what every
 * package did, phase by phase, and what the imports covered. Canaries are planted as in every run.
 * Nothing is ever exported. Exit 0 when the policy (`investigate` by default) passes (no behaviour
 * it fails was observed: not a proof of innocence), 1 when findings fail it, 4 when the run could
 * not say.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { TOOL_VERSION } from '../core/version.js';
import { InputError } from '../errors.js';
import { normalizeName } from '../lock/normalize.js';
import { buildRequirementsFor, readBuildPins } from '../lock/build-pins.js';
import { readLock } from '../lock/parse.js';
import { noPipOptions } from '../lock/pip-options.js';
import type { LockPlan } from '../lock/types.js';
import { evaluate } from '../policy/evaluate.js';
import { loadPolicy } from '../policy/load.js';
import { pipConfiguredUpstreams, redactUrl, type LocalFile, type ServedFile } from '../proxy/index.js';
import { versionFromFilename } from '../proxy/names.js';
import { emptyReport, type Report } from '../report/schema.js';
import { importPhase, startupPhase, type ImportOptions } from '../sandbox/session.js';
import { parseImportCoverage } from '../core/import-coverage.js';

export { DEFAULT_LINGER_SECONDS, DEFAULT_MAX_MODULES } from '../sandbox/session.js';
import { exitCodeOf, observeRun, openSession, phaseFailure, prepareImage, recordRun, withReport, type WorkflowDeps, type WorkflowResult } from './steps.js';

export interface InvestigateRequest {
  /** `name==version`, a local `.whl` / `.tar.gz` / `.zip`, or a lockfile. */
  target: string;
  indexUrl?: string;
  extraIndexUrls: string[];
  policy: string;
  report?: string;
  /** --timeout; default: the policy's limits, else DEFAULT_TIMEOUT_SECONDS. */
  timeoutSeconds?: number;
  /** How the import phase imports: the limit on each module, the linger window, the bound, the clock. */
  imports: ImportOptions;
  image?: string;
  cacheDir?: string;
}

export type InvestigateTarget =
  { kind: 'pin'; name: string; version: string } | { kind: 'file'; file: string; name: string; version: string } | { kind: 'lock'; file: string };

const PIN = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)$/;
const DIST_FILE = /\.(whl|tar\.gz|zip)$/;

/** The name and version a distribution's filename gives (a wheel's first two fields, an sdist's last dash). */
export function distOfFilename(filename: string): { name: string; version: string } | null {
  const match = DIST_FILE.exec(filename);
  if (!match) return null;
  const stem = filename.slice(0, -match[0].length);
  const [name, version] = match[1] === 'whl' ? stem.split('-') : [stem.slice(0, stem.lastIndexOf('-')), stem.slice(stem.lastIndexOf('-') + 1)];
  if (!name || !version || !PIN.test(`${name}==${version}`)) return null;
  return { name, version };
}

/** What the target names. A file that exists wins over the pin syntax. */
export async function parseTarget(target: string): Promise<InvestigateTarget> {
  const info = await stat(target).catch(() => null);
  if (info?.isFile()) {
    if (!DIST_FILE.test(target)) return { kind: 'lock', file: target };
    const dist = distOfFilename(path.basename(target));
    if (!dist) throw new InputError('target.invalid', `${target}: cannot read a project name and version from the file name`);
    return { kind: 'file', file: path.resolve(target), ...dist };
  }
  const pin = PIN.exec(target);
  if (pin) return { kind: 'pin', name: pin[1]!, version: pin[2]! };
  throw new InputError('target.invalid', `${target}: not a name==version, nor a wheel, sdist or lockfile that exists`, {
    hint: 'investigate requests==2.32.3, investigate ./pkg-1.0-py3-none-any.whl, or investigate requirements.lock',
  });
}

/** One unhashed pin, for pip to resolve through the unlocked proxy. */
function pinPlan(target: string, name: string, version: string): LockPlan {
  return {
    file: target,
    requirements: [{ name: normalizeName(name), rawName: name, version, extras: [], marker: null, sha256: [], line: 1 }],
    indexUrl: null,
    extraIndexUrls: [],
    pipOptions: noPipOptions(),
  };
}

/** Every file the proxy served, by project, with its sha256: what was investigated, exactly. */
function servedPackages(served: ServedFile[]): Report['packages'] {
  const byProject = new Map<string, ServedFile[]>();
  for (const file of served) byProject.set(file.project, [...(byProject.get(file.project) ?? []), file]);
  return [...byProject].map(([name, files]) => ({
    name,
    version: versionFromFilename(name, files[0]!.filename) ?? '?',
    marker: null,
    files: files.map(({ filename, sha256, size }) => ({ filename, sha256, size })),
  }));
}

export async function investigate(request: InvestigateRequest, deps: WorkflowDeps): Promise<WorkflowResult> {
  const started = performance.now();
  const timings: Record<string, number> = {};
  // Step 1: what to install, and how strictly.
  const target = await parseTarget(request.target);
  const policy = await loadPolicy(request.policy);
  const lock = target.kind === 'lock' ? await readLock(target.file) : pinPlan(request.target, target.name, target.version);
  // A lock is investigated with its build pins, as it would be installed (pip builds its sdists in the install phase).
  const lockPins = target.kind === 'lock' ? ((await readBuildPins(target.file))?.pins ?? []) : [];
  const localFiles: LocalFile[] =
    target.kind === 'file' ? [{ project: normalizeName(target.name), filename: path.basename(target.file), path: target.file }] : [];
  const upstreams = await pipConfiguredUpstreams({ indexUrl: request.indexUrl, extraIndexUrls: request.extraIndexUrls });
  const log = deps.logger.child({ target: request.target });

  // Step 2: engine and image.
  let t = performance.now();
  const image = await prepareImage(request.image, deps, log);
  timings.image = Math.round(performance.now() - t);

  const report = emptyReport({ version: TOOL_VERSION, lockfile: request.target, policy: policy.name, image, timings });
  return withReport(request.report, report, started, log, async () => {
    // Step 3: install, then import, in one sandbox.
    await using session = await openSession(
      {
        image,
        plan: lock,
        upstreams,
        policy,
        cacheDir: request.cacheDir,
        timeoutSeconds: request.timeoutSeconds,
        ...(target.kind === 'lock' ? { buildRequirements: buildRequirementsFor(policy.build, lockPins, true) } : { unlocked: { localFiles } }),
      },
      deps,
      log,
    );
    log.info(
      { target: target.kind, upstreams: { indexUrl: redactUrl(upstreams.indexUrl), extraIndexUrls: upstreams.extraIndexUrls.map(redactUrl) } },
      'investigating in the sandbox',
    );
    const run = await session.run([startupPhase(), importPhase(request.imports)]);
    Object.assign(timings, run.timings);
    deps.signal.throwIfAborted();

    // Step 4: observe each phase. Every wheel served is held to what it installed.
    t = performance.now();
    const served = session.proxyRecords.served;
    const distributions = [...new Set([...lock.requirements.map((r) => r.name), ...(target.kind === 'lock' ? [] : served.map((file) => file.project))])];
    const observed = await observeRun(session, run, { distributions, policy, reservedNames: [] }, () => true);
    timings.observe = Math.round(performance.now() - t);
    // Interrupted while the run was observed: no verdict, nothing published.
    deps.signal.throwIfAborted();

    // Step 5: judge. Nothing is exported, whatever the verdict.
    const judgement = evaluate(
      {
        findings: [...observed.findings, ...run.phases.flatMap(phaseFailure)],
        packages: distributions,
        installSucceeded: run.phases.every((phase) => phase.pipExitCode === 0),
      },
      policy,
    );
    recordRun(report, run, observed, judgement, session);
    report.packages = servedPackages(served);
    report.timeline = observed.timeline.map((entry) => ({ ...entry, phase: entry.phase ?? 'install' }));
    // What the imports covered, as the importer printed it last (hostile input: parsed with caps,
    // never part of the verdict). Null when the phase did not run or its line is missing.
    const imported = run.phases.find((phase) => phase.phase === 'import');
    report.importCoverage = imported ? parseImportCoverage(imported.pipOutput) : null;
    if (report.importCoverage?.clockSkewUnavailable) log.warn('--clock-skew asked for, but the image has no libfaketime: the imports ran on the real clock');
    return exitCodeOf(report.verdict);
  });
}
