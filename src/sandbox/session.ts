/**
 * One sandbox run: the index proxy on a private unix socket, the monitor container that owns the
 * network namespace, and the sandbox container that runs pip under the tracer. A session is an
 * AsyncDisposable: `await using` removes both containers (waiting on the engine only so long),
 * closes the proxy and deletes every temp dir, whatever happened. The dirs it makes are recorded on
 * disk before they exist (core/run-record.ts), so `gc` finds them after a `kill -9`.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { EnvironmentError, InstallError, SandboxError } from '../errors.js';
import { canaryMatcher, makeCanaries, type CanarySet } from '../core/canary.js';
import { machineName } from '../core/machine-name.js';
import { defaultRunsDir, RunRecord, type MakeRunDir } from '../core/run-record.js';
import { readSingleFile } from '../core/single-file.js';
import type { BuildRequirements } from '../lock/build-pins.js';
import type { LockedRequirement, LockPlan } from '../lock/types.js';
import type { Policy } from '../policy/schema.js';
import { startProxy, type IndexProxy, type LocalFile, type Upstreams } from '../proxy/index.js';
import { LABEL, runOwner, type ContainerClient, type MonitorListener, type SandboxRun } from '../runtime/port.js';
import { SANDBOX_PROFILE } from '../runtime/seccomp.js';
import {
  errorText,
  phaseKind,
  readMonitorLine,
  RunStatus,
  type CollectFailure,
  type InstallOutcome,
  type Limits,
  type MonitorEvent,
  type PhaseSpec,
  type RunOutcome,
} from '../core/outcome.js';
import {
  HOME,
  buildLockPath,
  INPUT_BUILT_PINS,
  INPUT_LOCK,
  INPUT_PHASES,
  INSTALLER_PYTHON,
  PIP_AS,
  PIP_RUNNER,
  RELAY_PORT,
  RESOLVE_REPORT,
  SANDBOX_UID,
  SANDBOX_USER,
  SITE_PACKAGES,
  STATE_DIR,
  TARGET,
  WHEEL_DIR,
  BUILT_DIR,
  PIP_TEMP_PREFIX,
} from '../core/layout.js';
import { renderPin } from '../lock/pin.js';
import { pipArgsFor, renderRequirements } from './requirements.js';

const PROXY_MOUNT = '/run/sandbox-install-proxy';

const STACK_BYTES = 8 * 1024 ** 2;

/**
 * Bytecode is never exported from the sandbox (export/ compiles verified sources on the host), so
 * compiling here would only be time spent under the tracer.
 */
const NO_COMPILE = '--no-compile';

export interface SessionOptions {
  client: ContainerClient;
  image: string;
  plan: LockPlan;
  upstreams: Upstreams;
  policy: Policy;
  cacheDir: string;
  limits: Limits;
  logger: Logger;
  /** Aborted by SIGINT/SIGTERM/SIGHUP: every wait stops and cleanup runs. */
  signal: AbortSignal;
  /**
   * Investigate a name==version or a local file: the proxy serves any project (and these local
   * files) unhashed and records what it served, and pip installs the plan's pins without hashes.
   */
  unlocked?: { localFiles: LocalFile[] };
  /**
   * Lock: the first phase is `resolve` instead of `install`, pip's resolver on these requirements
   * (a requirements.in, already checked and rendered by the caller) with `--dry-run --report`. Use
   * with `unlocked`: nothing is installed, and the proxy serves what pip picks.
   */
  resolve?: { requirements: string };
  /**
   * A locked run that installs wheels only: the install phase runs pip with `--only-binary :all:`,
   * and the requirements named here (the locked sdists pip would build) are built first, once, into
   * WHEEL_DIR in a `build` phase (`pip wheel --no-deps`), then installed from there by hash
   * (images/install-built.py). Without it, pip installs the lock as it is (investigate, lock).
   */
  build?: { requirements: LockedRequirement[] };
  /**
   * The build requirements the proxy may serve (buildRequirementsFor in workflows/steps.ts): none
   * in a locked run that builds nothing. Default: every pin and name the policy allows.
   */
  buildRequirements?: BuildRequirements;
  /**
   * The Python release pip evaluates markers and Requires-Python for (`3.11.7`), when it is not the
   * image's own: pip runs through images/pip-as.py. Absent: pip runs as it is, for the image's.
   */
  pythonTarget?: string;
  /**
   * The image's own interpreter version, what build-environment pips (pip's subprocesses, on the
   * image's interpreter) hold Requires-Python to: the proxy picks an unpinned build requirement's
   * release for it. Default SANDBOX_PYTHON_VERSION.
   */
  imagePython?: string;
  /** Where the run's record of the directories it makes goes (for `gc` after a kill); default defaultRunsDir(). */
  runsDir?: string;
  /** How long removing the containers may take at the end before the run gives up on it (an engine that stopped answering). */
  removeTimeoutMs?: number;
}

/** An engine that does not remove two containers in this long is not answering: the run ends, and `gc` removes them later. */
const REMOVE_TIMEOUT_MS = 30_000;

/**
 * The engine failed while the sandbox ran (its socket closed, it restarted, the container vanished):
 * the run cannot be judged, and the machine, not a package, is at fault (exit 3).
 */
function engineLost(error: unknown): SandboxError {
  if (error instanceof SandboxError) return error;
  return new EnvironmentError('engine.lost', `the container engine went away while the sandbox ran (${(error as Error)?.message ?? String(error)})`, {
    cause: error,
    hint: 'check the engine (docker info) and run again; `sandbox-install gc` removes what this run left',
  });
}

/**
 * `call` to the engine, its failure as engine.lost. An engine stopped with SIGTERM (restarted, or
 * shut down) first closes its socket to new requests, then stops the containers and answers the
 * wait in progress with their exit (137 after the stop timeout): the reads that follow are refused,
 * and the run is one the engine broke, not one that failed.
 */
function onEngine<T>(call: Promise<T>): Promise<T> {
  return call.catch((error: unknown) => {
    throw engineLost(error);
  });
}

/** A call the engine never answered: its socket gone, refused or reset (an answer, even an error, has a status code). */
function unanswered(error: unknown): boolean {
  const e = error as (NodeJS.ErrnoException & { statusCode?: unknown }) | null;
  return e?.statusCode === undefined && ['ENOENT', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(String(e?.code));
}

/** `promise`, or an EnvironmentError after `ms`: cleanup waits on an engine only so long. */
function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new EnvironmentError('engine.lost', `${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The supervisor's --deadline: --timeout, on its own clock. It stops the run inside the sandbox at
 * once (kill(-1) as the sandbox user), whatever the engine does: under load Docker has taken 9.6 s
 * to stop the sandbox after it was asked (0.2–0.4 s otherwise), and a trace flood went on meanwhile
 * past the 256 MiB the host reads (engine-faults "trace flood"; at 20 s the trace is already 218–245
 * MB). Its clock starts before the host's (the engine answers the start after the supervisor runs),
 * so it usually ends the phase first; the host's timeout stays as the backstop, and either way the
 * phase is `resource.timeout`.
 */
function supervisorDeadline(limits: Limits): string[] {
  return ['--deadline', String(limits.timeoutMs / 1000)];
}

/** How investigate's import phase imports (images/importer.py). */
export interface ImportOptions {
  /** How long one module's import may go without progress before its process is killed. */
  secondsPerModule: number;
  /** How long each import process stays alive after its imports, so threads and timers act, traced. */
  lingerSeconds: number;
  /** The bound on modules and submodules imported in the run. */
  maxModules: number;
  /** How far ahead the import processes' wall clock runs (libfaketime); 0: the real clock. */
  clockSkewSeconds: number;
}

export const DEFAULT_LINGER_SECONDS = 2;
export const DEFAULT_MAX_MODULES = 2000;

/**
 * The import phase: every top-level module imported with its submodules, each top-level module in
 * a process of its own that runs like an application (images/importer.py).
 */
export function importPhase(options: ImportOptions): PhaseSpec {
  return {
    name: 'import',
    argv: [
      'python3',
      '-I',
      '-S',
      '/opt/sandbox-install/importer.py',
      SITE_PACKAGES,
      String(options.secondsPerModule),
      '--linger',
      String(options.lingerSeconds),
      '--max-modules',
      String(options.maxModules),
      '--clock-skew',
      String(Math.round(options.clockSkewSeconds)),
      // Between two import processes, whatever is left below the importer is killed: nothing one
      // import left running acts during the next and is charged to it.
      '--reap',
    ],
  };
}

/** How long each of the startup phase's two interpreter starts may take before it is killed. */
export const STARTUP_SECONDS = 10;

/**
 * The startup phase: the target interpreter started twice with the installed tree (as a site
 * directory, then on PYTHONPATH), importing nothing beyond `site` (images/startup.py). What a `.pth`,
 * a startup hook or a stdlib-named module does at an interpreter's start happens here, traced.
 */
export function startupPhase(): PhaseSpec {
  return { name: 'startup', argv: ['python3', '-I', '-S', '/opt/sandbox-install/startup.py', SITE_PACKAGES, String(STARTUP_SECONDS)] };
}

function elapsed(since: number): number {
  return Math.round(performance.now() - since);
}

export class SandboxSession implements AsyncDisposable {
  readonly id = randomUUID();
  /** The sandbox's host name: a plausible machine's, a different one each run (core/machine-name.ts). */
  readonly hostname = machineName();
  /** Fake credentials planted in this run's sandbox, fresh random values each run. */
  readonly canaries: CanarySet = makeCanaries({ hostname: this.hostname });
  /** The directories this run makes on the host (its temp dirs, and the staging dirs made through `makeDir`), on disk for `gc`. */
  private readonly record: RunRecord;
  private proxy: IndexProxy | null = null;
  private sandbox: SandboxRun | null = null;
  private readonly monitorEvents: MonitorEvent[] = [];
  private readonly log: Logger;

  private constructor(private readonly options: SessionOptions) {
    this.log = options.logger.child({ run: this.id.slice(0, 8) });
    this.record = new RunRecord(path.join(options.runsDir ?? defaultRunsDir(), `${this.id}.json`), (error) =>
      this.log.warn({ err: error }, 'cannot record the run for `sandbox-install gc`; a killed run would leave its temp dirs'),
    );
  }

  /**
   * Makes a directory this run owns (an export's staging dir): recorded for `gc` before it exists,
   * and removed at the end of the run if it is still there (a published one was renamed away).
   */
  get makeDir(): MakeRunDir {
    return this.record.makeDir;
  }

  static async open(options: SessionOptions): Promise<SandboxSession> {
    return new SandboxSession(options);
  }

  get proxyRecords(): Pick<IndexProxy, 'requests' | 'served' | 'findings'> {
    return this.proxy ?? { requests: [], served: [], findings: [] };
  }

  /** On everything the run makes; the engine adds each part's role. */
  private labels(): Record<string, string> {
    return { [LABEL.tool]: '1', [LABEL.session]: this.id, [LABEL.owner]: runOwner() };
  }

  private async tempDir(prefix: string, mode: number): Promise<string> {
    const dir = await this.record.makeDir(tmpdir(), `sandbox-install-${prefix}-`);
    await chmod(dir, mode);
    return dir;
  }

  /**
   * Run the phases in the sandbox, `install` (pip) first and then `after` in order, and collect
   * everything each did. Does not judge. A phase that fails ends the run. `onStarted` is told once
   * the sandbox has started (the first phase is running).
   */
  async run(after: PhaseSpec[] = [], onStarted?: () => void): Promise<RunOutcome> {
    const { client, image, plan, policy, limits, signal } = this.options;
    const timings: Record<string, number> = {};

    let t = performance.now();
    // The proxy socket lives in a dir only the monitor container mounts. 0711: the monitor's
    // uid can reach the (randomly named) socket but cannot list the dir.
    const proxyDir = await this.tempDir('proxy', 0o711);
    const socketName = `proxy-${randomBytes(8).toString('hex')}.sock`;
    const carriesCanary = canaryMatcher(this.canaries.canaries);
    const unlocked = this.options.unlocked;
    this.proxy = await startProxy({
      // Unlocked, the plan's pins are pip's to resolve, not hashes for the proxy to hold it to.
      plan: unlocked ? { ...plan, requirements: [] } : plan,
      unlocked: unlocked !== undefined,
      localFiles: unlocked?.localFiles ?? [],
      upstreams: this.options.upstreams,
      cacheDir: this.options.cacheDir,
      listen: { socketPath: path.join(proxyDir, socketName) },
      buildPins: (this.options.buildRequirements ?? policy.build).pins,
      buildAllow: this.options.buildRequirements?.unpinned ?? policy.build.allow,
      ...(this.options.imagePython === undefined ? {} : { buildPython: this.options.imagePython }),
      // A request carrying a canary is refused and recorded: the secret never goes upstream.
      refuseTarget: (target) => carriesCanary(target).length > 0,
      logger: this.log.child({ component: 'proxy' }),
    });
    timings.proxyStart = elapsed(t);
    if (!unlocked) {
      // Guarantee 4e: every locked page and file the run may serve is fetched now, before any
      // container, so what the upstream is asked follows from the lock alone; an upstream that
      // cannot give one ends the run here (EnvironmentError, exit 3).
      t = performance.now();
      await this.proxy.prefetch(signal);
      timings.prefetch = elapsed(t);
    }
    // Interrupted before the containers (while the image was checked, or the proxy started): none is made.
    signal.throwIfAborted();

    t = performance.now();
    const pipArgs = this.pipArgv(['install', '--prefix', TARGET, NO_COMPILE]);
    const ready = this.monitorReady();
    ready.promise.catch(() => undefined); // awaited below; never an unhandled rejection if startRun throws
    const sandbox = await client.startRun(
      {
        id: this.id,
        image,
        labels: this.labels(),
        proxySocketDir: { host: proxyDir, at: PROXY_MOUNT },
        // No options: `attempts:1 timeout:2` marked the sandbox, and the sinkhole answers every
        // well-formed query at once, so the resolver's defaults never wait.
        dns: { servers: ['127.0.0.53'], options: [] },
        hostname: this.hostname,
        monitor: {
          cmd: ['python3', '-I', '-S', '/opt/sandbox-install/monitor.py', '--relay-port', String(RELAY_PORT), '--proxy-socket', `${PROXY_MOUNT}/${socketName}`],
          user: 'simonitor',
          capDrop: ['ALL'],
          securityOpt: ['no-new-privileges'],
          // The sandbox's profile (runtime/seccomp.ts): the relay, the resolver and the fake
          // services need nothing it refuses.
          seccompProfile: SANDBOX_PROFILE,
          sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' },
          readonlyRootfs: true,
          pidsLimit: 128,
          memoryBytes: 256 * 1024 ** 2,
        },
        sandbox: {
          cmd: [
            'python3',
            '-I',
            '-S',
            '/opt/sandbox-install/supervisor.py',
            '--watch',
            policy.process.execWatch.join(','),
            ...supervisorDeadline(limits),
            '--plan',
            INPUT_PHASES,
          ],
          // Root without capabilities, except what the tracer needs to ptrace and drop to `sandbox`.
          user: '0:0',
          env: [
            `HOME=${HOME}`,
            `USER=${SANDBOX_USER}`,
            `LOGNAME=${SANDBOX_USER}`,
            'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
            'LANG=C.UTF-8',
            'PIP_NO_CACHE_DIR=1',
            // No pip configuration file at all: every option pip takes is on its command line, and a
            // pip.conf a build writes into the home must not change how a later phase's pip runs.
            'PIP_CONFIG_FILE=/dev/null',
            'PIP_DISABLE_PIP_VERSION_CHECK=1',
            'PIP_ROOT_USER_ACTION=ignore',
            ...this.canaries.env,
          ],
          workingDir: HOME,
          capDrop: ['ALL'],
          // DAC_READ_SEARCH: strace -y reads /proc/<pid>/fd/<n> of the sandbox user's processes,
          // whose fd directories are 0500 and theirs. None of these reach pip's side: after the drop
          // to `user` its sets are empty, and no-new-privileges bars file capabilities and setuid.
          capAdd: ['SYS_PTRACE', 'SETUID', 'SETGID', 'DAC_READ_SEARCH'],
          securityOpt: ['no-new-privileges'],
          // The engine's default profile, tightened (runtime/seccomp.ts, core/seccomp.ts): no
          // io_uring, pidfd_getfd, userfaultfd, bpf, perf_event_open, keyrings, persona changes or
          // non-native ABIs. It leaves ptrace and process_vm_readv/writev to the tracer; the
          // tracer's own filter (images/tracee-filter.py) refuses them to everything it traces.
          seccompProfile: SANDBOX_PROFILE,
          pidsLimit: limits.pids,
          memoryBytes: limits.memoryBytes,
          nanoCpus: limits.nanoCpus,
          // The kernel takes at most a quarter of the stack limit for argv and environment: 2 MiB
          // here, so no execve can print a trace line of many megabytes (a hard limit the sandbox
          // cannot raise). Real builds fit: 8 MiB is every distribution's default.
          ulimits: { stack: STACK_BYTES },
        },
      },
      ready.listener,
    );
    this.sandbox = sandbox;
    // Copied in, not bind-mounted: the lock is root-owned and read-only to the sandbox user, and
    // no host path appears in the sandbox's /proc/self/mountinfo. Into the made (not yet started)
    // sandbox, while the monitor starts.
    const phases: PhaseSpec[] = [...this.firstPhases(pipArgs), ...after];
    const seeded = (async () => {
      await onEngine(sandbox.putFiles([...this.inputFiles(), { path: INPUT_PHASES, content: JSON.stringify(phases), mode: 0o644 }]));
      // The canaries look like the user's own: theirs, 0600, in directories only they can list.
      await onEngine(
        sandbox.putFiles(
          this.canaries.files.map((file) => ({
            path: `${HOME}/${file.path}`,
            content: file.content,
            mode: 0o600,
            uid: SANDBOX_UID,
            gid: SANDBOX_UID,
            // Weeks or months old, as a user's own credentials are, not written when the run began.
            mtime: file.mtime,
          })),
          HOME,
        ),
      );
    })();
    seeded.catch(() => undefined); // awaited below; never an unhandled rejection if the monitor fails first
    await ready.promise;
    timings.monitorStart = elapsed(t);

    t = performance.now();
    await seeded;
    await onEngine(sandbox.startSandbox());
    timings.containerStart = elapsed(t);
    onStarted?.();

    t = performance.now();
    const timeout = AbortSignal.timeout(limits.timeoutMs);
    let pipExitCode: number | null = null;
    let timedOut = false;
    const disk = watchDisk(sandbox, limits.diskBytes, this.log);
    try {
      pipExitCode = await sandbox.waitSandbox(AbortSignal.any([signal, timeout]));
    } catch (error: unknown) {
      if (signal.aborted) throw error;
      if (!timeout.aborted) throw engineLost(error);
      timedOut = true;
      const killing = performance.now();
      this.log.debug({ afterMs: elapsed(t) }, 'the timeout fired: stopping the sandbox');
      await onEngine(sandbox.killSandbox());
      this.log.debug({ killMs: elapsed(killing) }, 'the sandbox stopped');
    } finally {
      await disk.stop();
    }
    // A burst between two looks is caught here, once the sandbox has stopped.
    const diskExceeded = disk.exceeded ?? (await disk.check());
    // The last look, on a stopped sandbox, must measure too: a layer the engine cannot walk hid the run's writes all along.
    const diskUnmeasured = disk.unmeasured ?? disk.lastMiss;
    timings.install = elapsed(t);
    // The host could not hold a download (the cache's disk is full): pip saw only a 502, but the
    // cause is this machine's, not a package's (exit 3).
    if (this.proxy?.environmentError) throw this.proxy.environmentError;

    t = performance.now();
    // Independent reads of a stopped sandbox: the engine serves them concurrently. A backend
    // without a filesystem diff leaves writes to the trace alone.
    // Every phase's trace is read with them; only those of the phases that ran are kept below.
    // A read that fails is kept as a failure, not thrown: what the sandbox left can break a read
    // (a path too long for the engine's own walk of the filesystem), and evidence already gathered
    // must never go with it.
    const failures: CollectFailure[] = [];
    const collected = <T>(step: CollectFailure['step'], read: Promise<T>, instead: T): Promise<T> =>
      read.catch((error: unknown) => {
        // No answer at all (the engine's socket gone, refused or reset): the engine went away, even
        // if a restarted one answers the check below. Only an answer can be the sandbox's doing.
        if (unanswered(error)) throw engineLost(error);
        failures.push({ step, error: errorText(error) });
        return instead;
      });
    const [seenState, status, changes, pipOutput, phaseTraces] = await Promise.all([
      collected('state', sandbox.state(), null),
      this.readStatus(sandbox),
      sandbox.diff ? collected('diff', sandbox.diff(), []) : Promise.resolve([]),
      collected('output', sandbox.sandboxOutput(60), ''),
      Promise.all(phases.map((phase) => this.readText(sandbox, `${STATE_DIR}/${phase.name}.strace.log`))),
    ]);
    // The phases that ran: every one with a status, and the one the timeout (or a dead tracer)
    // cut short, whose trace is there without a status.
    // The supervisor starts the next phase only after one that succeeded.
    const done = status?.phases ?? [];
    const last = done.at(-1)?.pip;
    const nextStarted = done.length === 0 || (last?.how === 'exited' && Number(last.value) === 0);
    const ran = phases.slice(0, Math.min(phases.length, done.length + (nextStarted ? 1 : 0)));
    const traces = phaseTraces.slice(0, ran.length);
    // A read that failed, or a record that could not be read, is the sandbox's doing
    // (monitor.tampered) only while the engine still answers: one that went away meanwhile ends
    // the run as engine.lost. The engine is asked again, about the run's containers.
    const checked = failures.length > 0 || status === null || traces.includes(null) ? await onEngine(sandbox.state()) : null;
    const { monitorRunning, sandbox: state } = (seenState ?? checked)!;
    // The supervisor's own deadline ended the last phase: the engine had not stopped the sandbox in time.
    const cutShort = timedOut || (ran.length === done.length && done.at(-1)?.timedOut === true);
    if (failures.length > 0) this.log.warn({ failures }, 'reading what the sandbox left failed while the engine answers: the run fails closed');
    timings.collect = elapsed(t);

    // A phase owns what happened from its start until the next phase's start: the first phase also
    // what came before it, and a phase cut short (no status) everything after the one before it
    // ended. Whatever has no usable time goes to the first phase: nothing is dropped.
    const starts = ran.map((_, i) =>
      i === 0 ? Number.NEGATIVE_INFINITY : (status?.phases[i]?.started ?? status?.phases[i - 1]?.ended ?? Number.NEGATIVE_INFINITY),
    );
    const phaseAt = (time: number): number => (Number.isFinite(time) ? starts.reduce((owner, start, i) => (start <= time ? i : owner), 0) : 0);
    const timeOf = (f: { evidence: Record<string, unknown> }) => (typeof f.evidence.time === 'string' ? Date.parse(f.evidence.time) / 1000 : Number.NaN);
    const outcomes = ran.map((phase, i): InstallOutcome => {
      const own = status?.phases[i] ?? null;
      const last = i === ran.length - 1;
      let exitCode: number | null = own?.pip?.how === 'exited' ? Number(own.pip.value) : own?.pip?.how === 'killed' ? 128 : null;
      if (cutShort && last) exitCode = null;
      return {
        phase: phaseKind(phase.name),
        pipExitCode: own === null && !cutShort && last ? pipExitCode : exitCode,
        timedOut: cutShort && last,
        oomKilled: state.oomKilled && last,
        diskExceeded: last ? diskExceeded : null,
        ...(last && diskUnmeasured !== null ? { diskUnmeasured } : {}),
        monitorAlive: monitorRunning,
        pipOutput: last ? pipOutput : '',
        findings: this.proxyRecords.findings.filter((f) => phaseAt(timeOf(f)) === i),
        limits,
        monitorEvents: this.monitorEvents.filter((e) => phaseAt(e.type === 'ready' ? Number.NaN : e.time) === i),
        status: own,
        trace: traces[i] ?? null,
        // The container's diff is one for the whole run; the first phase's trace names its writers.
        changes: i === 0 ? changes : [],
        // With the phase that holds what failed: the diff with the first, the rest with the last.
        collectFailures: failures.filter((f) => (f.step === 'diff' ? i === 0 : last)),
        diffUnread: failures.some((f) => f.step === 'diff'),
        timings: i === 0 ? timings : {},
      };
    });
    return { phases: outcomes, timings };
  }

  /** The requirements the build phase builds (none: no build phase). */
  private get built(): LockedRequirement[] {
    return this.options.build?.requirements ?? [];
  }

  /** The phases before the workflow's own: resolve (lock), or [build,] install. */
  private firstPhases(pipArgs: string[]): PhaseSpec[] {
    if (this.options.resolve) return [this.resolvePhase()];
    if (!this.options.build) return [{ name: 'install', argv: pipArgs }];
    // Wheels only: the locked wheels through the proxy, the built ones from the wheel dir.
    const wheelsOnly = ['--only-binary', ':all:'];
    if (this.built.length === 0)
      return [{ name: 'install', argv: this.pipArgv(['install', '--prefix', TARGET, NO_COMPILE, ...wheelsOnly], { binary: false }) }];
    const install = this.pipArgv(['install', '--prefix', TARGET, NO_COMPILE, ...wheelsOnly, '--find-links', BUILT_DIR], { binary: false, lock: null });
    // One pip, one phase, per locked sdist: pip prepares every requirement of a run before it builds
    // any, so in one run an sdist's build hooks would find the next sdist unpacked under /tmp and
    // could rewrite it. Here each build starts after the one before it has ended and its processes
    // were killed (the supervisor does, after every phase), and pip unpacks it then, in a directory
    // of a random name. Once a build has succeeded its wheels are copied out of the sandbox user's
    // reach (BUILT_DIR) and everything it left in pip's temp dirs is removed: no build can read or
    // rewrite another's sources or outputs, and one that tries is fs.build-meddling.
    const builds = this.built.map((_, i): PhaseSpec => ({
      name: i === 0 ? 'build' : `build-${i + 1}`,
      argv: this.pipArgv(['wheel', '--no-deps', '--wheel-dir', WHEEL_DIR], { lock: buildLockPath(i) }),
      after: { keep: { from: WHEEL_DIR, to: BUILT_DIR }, scrub: PIP_TEMP_PREFIX },
    }));
    return [
      ...builds,
      {
        name: 'install',
        argv: ['python3', '-I', '-S', '/opt/sandbox-install/install-built.py', BUILT_DIR, INPUT_BUILT_PINS, INPUT_LOCK, '--', ...install, '-r'],
      },
    ];
  }

  /** What the run's phases read, copied into the sandbox before it starts (root-owned, read-only to the sandbox user). */
  private inputFiles(): Array<{ path: string; content: string; mode: number }> {
    const { plan, resolve } = this.options;
    if (resolve) return [{ path: INPUT_LOCK, content: resolve.requirements, mode: 0o644 }];
    const built = new Set(this.built);
    if (built.size === 0) return [{ path: INPUT_LOCK, content: renderRequirements(plan), mode: 0o644 }];
    return [
      // What is not built is installed as locked; what is built is pinned to its wheels by install-built.py.
      { path: INPUT_LOCK, content: renderRequirements({ requirements: plan.requirements.filter((req) => !built.has(req)) }), mode: 0o644 },
      ...this.built.map((req, i) => ({ path: buildLockPath(i), content: renderRequirements({ requirements: [req] }), mode: 0o644 })),
      { path: INPUT_BUILT_PINS, content: JSON.stringify(this.built.map((req) => ({ name: req.name, line: renderPin(req) }))), mode: 0o644 },
    ];
  }

  /**
   * pip's command line for a phase, `verb` being pip's command and its own options: the installer
   * interpreter, the proxy as the only index, the policy's and then the lockfile's options, the lock.
   * Every phase that runs pip on the lock runs it through here, so they cannot drift apart.
   */
  private pipArgv(verb: string[], how: { binary?: boolean; lock?: string | null } = {}): string[] {
    const { plan, policy, unlocked } = this.options;
    const lock = how.lock === undefined ? INPUT_LOCK : how.lock;
    return [
      // The installer interpreter, not the target's: build hooks must never run the target's
      // site-packages (a planted .pth would run inside the next package's build). pip's runner
      // script, as `pip --python` would re-execute it, minus that first interpreter start; or the
      // launcher that runs it for the run's target Python (images/pip-as.py).
      INSTALLER_PYTHON,
      ...(this.options.pythonTarget === undefined ? [PIP_RUNNER] : [PIP_AS, this.options.pythonTarget]),
      ...verb,
      ...(unlocked ? [] : ['--require-hashes']),
      '--no-input',
      '--progress-bar',
      'off',
      '--index-url',
      `http://127.0.0.1:${RELAY_PORT}/simple/`,
      ...(policy.onlyBinary ? ['--only-binary', ':all:'] : []),
      // The lockfile's own choices (--pre, --prefer-binary, --only-binary, --no-binary), after the
      // policy's: a lock may narrow what pip takes, and install.ts refuses one that would widen it.
      // A wheels-only install leaves out the lock's --no-binary/--only-binary: they chose what the
      // build phase builds, and the built wheels are what this phase must take.
      ...(how.binary === false ? pipArgsFor({ ...plan.pipOptions, onlyBinary: [], noBinary: [], preferBinary: false }) : pipArgsFor(plan.pipOptions)),
      ...(lock === null ? [] : ['-r', lock]),
    ];
  }

  /**
   * The resolve phase (lock): `pip install --dry-run --ignore-installed --report` on the
   * requirements, through the same proxy with the same options as the install phase, so every
   * sdist's metadata build runs under the same tracer and policy. Nothing is installed.
   */
  private resolvePhase(): PhaseSpec {
    return { name: 'resolve', argv: this.pipArgv(['install', '--dry-run', '--ignore-installed', '--report', RESOLVE_REPORT]) };
  }

  /** pip's resolution report as the resolve phase left it, or null when it cannot be read (hostile input: parse with caps). */
  async resolveReport(maxBytes: number): Promise<string | null> {
    if (!this.sandbox) throw new InstallError('session.no-sandbox', 'no sandbox container to read the resolution from');
    return this.readText(this.sandbox, RESOLVE_REPORT, maxBytes);
  }

  /** What the build phases left in BUILT_DIR, as a tar stream (hostile input: read it with export/wheelhouse only). */
  async wheelArchive(): Promise<Readable> {
    if (!this.sandbox) throw new InstallError('session.no-sandbox', 'no sandbox container to read the wheels from');
    return this.sandbox.readArchive(BUILT_DIR);
  }

  /**
   * Whether the engine still answers about this run, after a read of what the sandbox left failed:
   * resolves when it does (the failure is the sandbox's doing, monitor.tampered), rejects with
   * engine.lost when it does not.
   */
  async engineAnswers(): Promise<void> {
    if (!this.sandbox) throw new InstallError('session.no-sandbox', 'no sandbox container to ask about');
    await onEngine(this.sandbox.state());
  }

  /** The target site-packages as a tar stream (hostile input: extract it with export/ only). */
  async siteArchive(): Promise<Readable> {
    if (!this.sandbox) throw new InstallError('session.no-sandbox', 'no sandbox container to export from');
    return this.sandbox.readArchive(SITE_PACKAGES);
  }

  /**
   * The listener for the monitor's output (events kept, `ready` awaited) and the promise that it
   * said `ready`: rejected after 20 s, or with the signal's reason when interrupted.
   */
  private monitorReady(): { listener: MonitorListener; promise: Promise<void> } {
    const { signal } = this.options;
    let timer: NodeJS.Timeout | undefined;
    let onAbort = () => {};
    let resolveReady = () => {};
    const promise = new Promise<void>((resolve, reject) => {
      resolveReady = resolve;
      signal.throwIfAborted();
      timer = setTimeout(() => reject(new InstallError('monitor.not-ready', 'the monitor did not start within 20 s')), 20_000);
      onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
    }).finally(() => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    });
    const listener: MonitorListener = {
      onLine: (line) => {
        const event = readMonitorLine(line);
        if (event.type === 'ready') resolveReady();
        else this.monitorEvents.push(event);
      },
      onStderr: (line) => this.log.warn({ line: line.slice(0, 500) }, 'monitor stderr'),
    };
    return { listener, promise };
  }

  private async readText(run: SandboxRun, file: string, maxBytes = 256 * 1024 ** 2): Promise<string | null> {
    try {
      return await readSingleFile(await run.readArchive(file), maxBytes);
    } catch (error: unknown) {
      this.log.debug({ file, err: error }, 'could not read file from the sandbox');
      return null;
    }
  }

  /** The supervisor's status.json, or null when it is missing or not what the supervisor writes. */
  private async readStatus(run: SandboxRun): Promise<RunStatus | null> {
    const text = await this.readText(run, `${STATE_DIR}/status.json`, 16 * 1024 ** 2);
    if (text === null) return null;
    try {
      const parsed = RunStatus.safeParse(JSON.parse(text));
      if (parsed.success) return parsed.data;
      this.log.warn({ issues: parsed.error.issues.slice(0, 5) }, "the supervisor's status does not parse");
    } catch {
      this.log.warn("the supervisor's status is not JSON");
    }
    return null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    const problems: unknown[] = [];
    if (this.sandbox) {
      await bounded(this.sandbox.remove(), this.options.removeTimeoutMs ?? REMOVE_TIMEOUT_MS, "removing the run's containers").catch((error: unknown) =>
        problems.push(error),
      );
    }
    await this.proxy?.close().catch((error: unknown) => problems.push(error));
    let dirsLeft = false;
    for (const dir of this.record.dirs) {
      await rm(dir, { recursive: true, force: true }).catch((error: unknown) => {
        dirsLeft = true;
        problems.push(error);
      });
    }
    // Kept while a directory is left, so `gc` can finish the job.
    if (!dirsLeft) await this.record.close().catch((error: unknown) => problems.push(error));
    if (problems.length > 0) this.log.error({ problems: problems.map(String) }, 'cleanup was incomplete; run `sandbox-install gc`');
  }
}

/** How often the sandbox's writable layer is measured while it runs. */
export const DISK_POLL_MS = 1000;
/** Looks in a row that could not measure the sandbox's writes before it is stopped (watchDisk). */
const DISK_MISSES = 3;

/**
 * Watch what the sandbox writes to its own filesystem and stop it the moment it passes `cap`: the
 * host's free disk then drops by at most the cap plus what one poll interval lets through. A backend
 * without the capability is not watched. `exceeded` is the size seen when it was stopped.
 */
function watchDisk(
  run: SandboxRun,
  cap: number,
  log: Logger,
): { exceeded: number | null; unmeasured: string | null; lastMiss: string | null; check(): Promise<number | null>; stop(): Promise<void> } {
  const measure = run.writableBytes;
  let misses = 0;
  const state = {
    /** Why the latest look could not measure, or null when it could. */
    lastMiss: null as string | null,
    exceeded: null as number | null,
    /**
     * Why the sandbox's writes could not be measured, when DISK_MISSES looks in a row, or the last
     * one, could not: the engine's walk of the layer failed (a path too long for it) or gave no size
     * (SizeRw -1). The cap cannot hold then, so the sandbox is stopped as at the cap.
     */
    unmeasured: null as string | null,
    async check(): Promise<number | null> {
      if (!measure) return null;
      const bytes = await measure().then(
        (n) => (Number.isFinite(n) && n >= 0 ? n : `the engine gave no size (${n})`),
        (error: unknown) => `measuring failed: ${errorText(error)}`,
      );
      state.lastMiss = typeof bytes === 'string' ? bytes : null;
      if (typeof bytes === 'string') {
        misses += 1;
        if (misses >= DISK_MISSES) state.unmeasured ??= bytes;
        return null;
      }
      misses = 0;
      return bytes > cap ? bytes : null;
    },
    stop: async () => {},
  };
  if (!measure) return state;
  let polling: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    polling = polling.then(async () => {
      if (state.exceeded !== null || state.unmeasured !== null) return;
      const bytes = await state.check();
      if (bytes === null && state.unmeasured === null) return;
      state.exceeded = bytes;
      log.warn(
        { bytes, cap, unmeasured: state.unmeasured },
        state.unmeasured ? "the sandbox's writes cannot be measured; stopping it" : 'the sandbox passed the disk cap; stopping it',
      );
      await run.killSandbox().catch(() => undefined);
    });
  }, DISK_POLL_MS);
  state.stop = async () => {
    clearInterval(timer);
    // A look in progress is waited for, but not on an engine that stopped answering.
    await bounded(polling, 5 * DISK_POLL_MS, 'measuring the sandbox').catch(() => undefined);
  };
  return state;
}
