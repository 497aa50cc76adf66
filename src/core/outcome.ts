/**
 * What one sandbox run hands on to be judged: how pip ended, what the supervisor, the tracer and
 * the monitor recorded, and the container's diff. sandbox/ produces it, observe/ reads it; it lives
 * here so neither imports the other.
 */
import { z } from 'zod';
import type { Finding } from './finding.js';

/** A filesystem change of the sandbox container, as the engine's diff reports it. */
export type ChangeKind = 'modified' | 'added' | 'deleted';
export interface FsChange {
  path: string;
  kind: ChangeKind;
}

export interface Limits {
  timeoutMs: number;
  memoryBytes: number;
  pids: number;
  nanoCpus: number;
  /** What the sandbox may write to its own filesystem, checked every DISK_POLL_MS and at the end. */
  diskBytes: number;
}

export const DEFAULT_LIMITS: Limits = {
  timeoutMs: 600_000,
  memoryBytes: 2 * 1024 ** 3,
  pids: 512,
  nanoCpus: 2e9,
  // Real builds fit: scipy's sdist build writes about 1.5 GB; the cap protects the host's disk.
  diskBytes: 10 * 1024 ** 3,
};

const Proc = z.object({ pid: z.number().int(), ppid: z.number().int(), argv: z.array(z.string()) });

/**
 * What the supervisor wrote in the sandbox's state dir (see images/supervisor.py). Python's side of
 * the boundary: parsed, never trusted by shape. A status that does not parse counts as missing,
 * which fails the run as monitor.tampered.
 */
export const SupervisorStatus = z.looseObject({
  /** When the phase's command started and when the supervisor was done with it (epoch seconds). */
  started: z.number().optional(),
  ended: z.number().optional(),
  rootPid: z.number().int().nullable(),
  pip: z.object({ how: z.enum(['exited', 'killed']), value: z.union([z.number(), z.string()]) }).nullable(),
  tracerIntact: z.boolean(),
  tracerExit: z.number().int().nullable(),
  lingering: z.array(Proc),
  /** Processes found re-parented to the supervisor while pip ran, each killed when seen. */
  detached: z.array(Proc.extend({ at: z.number() })).optional(),
  /** The tracer did not end within 10 s of pip and the sandbox user's processes being killed. */
  tracerForcedStop: z.boolean().optional(),
  /** The supervisor's own deadline (--timeout and a margin) ended the phase: the engine had not stopped the sandbox. */
  timedOut: z.boolean().optional(),
  /** Executed paths that are the same file as a watched program, by that program's name. */
  execAliases: z.record(z.string(), z.string()).optional(),
  /** A build phase's wheels, copied out of the sandbox user's reach after it succeeded (PhaseSpec.after.keep). */
  kept: z.object({ files: z.number().int(), bytes: z.number(), error: z.string().optional() }).optional(),
  /** What the build left in pip's temp dirs, removed after it succeeded (PhaseSpec.after.scrub). */
  scrubbed: z.object({ removed: z.number().int(), error: z.string().optional() }).optional(),
});
export type SupervisorStatus = z.infer<typeof SupervisorStatus>;

/** A phase of a run: one traced command in the sandbox (DESIGN.md "Pipeline and phases"). */
export const PhaseName = z.enum(['build', 'install', 'startup', 'import', 'resolve']);
export type PhaseName = z.infer<typeof PhaseName>;

/**
 * A phase as the supervisor runs it, by a name unique in the run (its trace file is named after it):
 * the phase's own name, or for the second and later locked sdists, each built by a phase of its
 * own, `build-<n>`. Reported by phaseKind, as `build`.
 */
export const PlannedPhase = z.union([PhaseName, z.string().regex(/^build-[1-9][0-9]{0,3}$/)]);
export type PlannedPhase = z.infer<typeof PlannedPhase>;

/** The phase a planned phase reports as: `build-2` is a `build`. */
export function phaseKind(name: PlannedPhase): PhaseName {
  return name.startsWith('build-') ? 'build' : (name as PhaseName);
}

export interface PhaseSpec {
  name: PlannedPhase;
  argv: string[];
  /**
   * What the supervisor does once the phase succeeded and every process of the sandbox user is
   * dead: `keep` copies the regular files at the top of `from` into `to` (root-owned, read-only to
   * the sandbox user), `scrub` removes the user's entries of /tmp whose names start with it.
   */
  after?: { keep?: { from: string; to: string }; scrub?: string };
}

/** status.json: one entry per phase the supervisor ran, in order, written after each. */
export const RunStatus = z.looseObject({ phases: z.array(SupervisorStatus.extend({ phase: PlannedPhase })) });
export type RunStatus = z.infer<typeof RunStatus>;

/**
 * What the monitor keeps of what reaches its fake services and its sinkhole (images/monitor.py
 * STREAM_CAP, DATAGRAM_CAP, RUN_CAP; outcome.test.ts checks the two agree). Why these sizes is
 * said there.
 */
export const MONITOR_CAPTURE = {
  /** Bytes of one TCP connection. */
  streamBytes: 1 << 20,
  /** Bytes of one datagram: every datagram IPv4 can carry, whole. */
  datagramBytes: 65535,
  /** Bytes over the whole run, every connection and datagram together. */
  runBytes: 32 << 20,
} as const;

const at = { time: z.number() };
const peer = { dst: z.string(), src: z.string(), port: z.number().int() };
/** Base64 of at most `bytes` bytes: a longer one is not what the monitor prints. */
const base64Of = (bytes: number) =>
  z
    .string()
    .max(4 * Math.ceil(bytes / 3))
    .regex(/^[A-Za-z0-9+/]*={0,2}$/);
/**
 * What arrived (`bytes`), what of it was kept (`payload`, base64), and whether anything was not
 * (`cut`: past a cap of MONITOR_CAPTURE, or still sending after the monitor's deadline).
 */
const capture = (cap: number) => ({ bytes: z.number().int().nonnegative(), payload: base64Of(cap), cut: z.boolean() });
/**
 * One line the monitor prints (images/monitor.py). Whatever a package sends shows up only inside
 * these fields (as bounded strings); a line of any other shape is the monitor failing or being
 * tampered with.
 */
export const MonitorEvent = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('ready'), relayPort: z.number(), dns: z.string(), ports: z.array(z.number()) }),
  z.looseObject({
    type: z.literal('dns'),
    name: z.string(),
    qtype: z.number(),
    answer: z.string().nullable(),
    src: z.string(),
    ...capture(MONITOR_CAPTURE.datagramBytes),
    ...at,
  }),
  z.looseObject({ type: z.literal('dns-map'), name: z.string(), address: z.string(), ...at }),
  z.looseObject({ type: z.literal('dns-malformed'), src: z.string(), ...capture(MONITOR_CAPTURE.datagramBytes), ...at }),
  z.looseObject({
    type: z.literal('http'),
    ...peer,
    method: z.string(),
    path: z.string(),
    host: z.string().nullable(),
    ...capture(MONITOR_CAPTURE.streamBytes),
    ...at,
  }),
  z.looseObject({ type: z.literal('tls'), ...peer, sni: z.string().nullable(), ...capture(MONITOR_CAPTURE.streamBytes), ...at }),
  z.looseObject({ type: z.literal('tcp'), ...peer, firstBytes: z.string(), ...capture(MONITOR_CAPTURE.streamBytes), ...at }),
  z.looseObject({ type: z.literal('udp'), ...peer, firstBytes: z.string(), ...capture(MONITOR_CAPTURE.datagramBytes), ...at }),
  z.looseObject({ type: z.literal('truncated'), limit: z.number(), ...at }),
  z.looseObject({ type: z.literal('monitor-error'), error: z.string(), ...at }),
  z.looseObject({ type: z.literal('relay-error'), error: z.string(), ...at }),
]);
export type MonitorEvent = z.infer<typeof MonitorEvent>;

/**
 * A monitor line as an event: a line that is not JSON or not an event becomes a `monitor-error`,
 * which observe/ judges as monitor.tampered.
 */
export function readMonitorLine(line: string): MonitorEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch {
    raw = undefined;
  }
  const parsed = MonitorEvent.safeParse(raw);
  if (parsed.success) return parsed.data;
  return { type: 'monitor-error', error: `the monitor printed a line that is not an event: ${line.slice(0, 200)}`, time: Date.now() / 1000 };
}

/**
 * One phase of a run as observe/ judges it: that phase's trace and status, the monitor events and
 * proxy findings of its time window. (The name is the install phase's, the first and most common.)
 */
export interface InstallOutcome {
  phase: PhaseName;
  /** The phase command's exit code, or null when the run was cut short (timeout) or its end is unknown. */
  pipExitCode: number | null;
  limits: Limits;
  timedOut: boolean;
  oomKilled: boolean;
  /** Bytes the sandbox had written when it passed limits.diskBytes and was stopped; null when it did not. */
  diskExceeded: number | null;
  /** Why the sandbox's writes could not be measured (the disk cap could not hold), when they could not: it was stopped. */
  diskUnmeasured?: string;
  /** The monitor was still running when the install ended (it must never die first). */
  monitorAlive: boolean;
  /** The last lines pip printed. */
  pipOutput: string;
  /** What the proxy found (integrity.*). Everything else is judged by observe/. */
  findings: Finding[];
  monitorEvents: MonitorEvent[];
  status: SupervisorStatus | null;
  trace: string | null;
  changes: FsChange[];
  /** Reads of the stopped sandbox that failed while the engine still answered (observe/ fails them closed). */
  collectFailures?: CollectFailure[];
  /** The engine's diff could not be read: observe/ judges writes by what this phase's trace changed instead. */
  diffUnread?: boolean;
  timings: Record<string, number>;
}

/**
 * A step that collects what a run left, failed after the sandbox ran while the engine still
 * answered: something the sandbox made broke it (a path too long for the engine's own walk of the
 * filesystem), so the run cannot be vouched for (monitor.tampered), and every finding is kept.
 * `diff`, `state` and `output` are the session's reads; `site-archive` and `wheel-archive` the
 * workflows' reads of the installed tree and the built wheels.
 */
export interface CollectFailure {
  step: 'state' | 'diff' | 'output' | 'site-archive' | 'wheel-archive';
  /** What failed, as the engine or the reader said it (bounded). */
  error: string;
}

/**
 * An error's message for a report, bounded: an engine's message can quote a path the sandbox made
 * (4 KiB and more). Its start and its end are kept, where an engine says what it did and why it failed.
 */
export function errorText(error: unknown, max = 512): string {
  const text = error instanceof Error ? error.message : String(error);
  if (text.length <= max) return text;
  const half = Math.floor((max - 1) / 2);
  return `${text.slice(0, half)}…${text.slice(text.length - half)}`;
}

/** A whole run: its phases in the order they ran (a phase cut short by the timeout included). */
export interface RunOutcome {
  phases: InstallOutcome[];
  timings: Record<string, number>;
}
