/**
 * What one sandbox run hands on to be judged: how pip ended, what the supervisor, the tracer and
 * the monitor recorded, and the container's diff. sandbox/ produces it, observe/ reads it; it lives
 * here so neither imports the other.
 */
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
}

export const DEFAULT_LIMITS: Limits = {
  timeoutMs: 600_000,
  memoryBytes: 2 * 1024 ** 3,
  pids: 512,
  nanoCpus: 2e9,
};

/** What the supervisor wrote in the sandbox's state dir (see images/supervisor.py). */
export interface SupervisorStatus {
  rootPid: number | null;
  pip: { how: 'exited' | 'killed'; value: number | string } | null;
  tracerIntact: boolean;
  tracerExit: number | null;
  lingering: Array<{ pid: number; ppid: number; argv: string[] }>;
  /** Processes found re-parented to the supervisor while pip ran, each killed when seen. */
  detached?: Array<{ pid: number; ppid: number; argv: string[]; at: number }>;
  /** The tracer did not end within 10 s of pip and the sandbox user's processes being killed. */
  tracerForcedStop?: boolean;
  /** Executed paths that are the same file as a watched program, by that program's name. */
  execAliases?: Record<string, string>;
}

export interface InstallOutcome {
  /** pip's exit code, or null when the run was cut short (timeout) or pip's end is unknown. */
  pipExitCode: number | null;
  limits: Limits;
  timedOut: boolean;
  oomKilled: boolean;
  /** The monitor was still running when the install ended (it must never die first). */
  monitorAlive: boolean;
  /** The last lines pip printed. */
  pipOutput: string;
  /** What the proxy found (integrity.*). Everything else is judged by observe/. */
  findings: Finding[];
  monitorEvents: Array<Record<string, unknown>>;
  status: SupervisorStatus | null;
  trace: string | null;
  changes: FsChange[];
  timings: Record<string, number>;
}

