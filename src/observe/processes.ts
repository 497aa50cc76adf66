/**
 * Process findings: shells and network tools run during the install, processes left alive after
 * pip ended, signals aimed at the monitor, calls the sandbox's seccomp filters refuse (ptrace among
 * them) and deaths by a non-native ABI, and fork failures at the pids limit.
 */
import path from 'node:path';
import { finding, type Finding } from '../core/finding.js';
import { PERSONALITY_QUERY } from '../core/seccomp.js';
import { threadsOf, type PackageOf } from './attribution.js';
import type { ProcessInfo, Trace } from './trace.js';

export interface ProcessContext {
  trace: Trace;
  lingering: Array<{ pid: number; ppid: number; argv: string[] }>;
  /** Processes the supervisor found re-parented to it while pip ran, and killed at once. */
  detached: Array<{ pid: number; ppid: number; argv: string[] }>;
  /** Basenames whose execution is `process.exec` (policy). */
  execWatch: string[];
  /**
   * Executed paths that are the same file (device and inode, as the supervisor saw them) as a
   * watched program, by the watched name: `/bin/nc.openbsd` is `nc`, a hard link is its original.
   */
  execAliases?: Record<string, string>;
  /** Directories the sandbox user can write (the install target among them). */
  writable: string[];
  packageOf: PackageOf;
}

/**
 * Where a program may come from that nobody installed in the image: anything the sandbox user can
 * write (a renamed shell, a downloaded binary), /proc's fd links (an fd's file run by name), and
 * memfds. Nothing pip runs legitimately lives there.
 */
const ALWAYS_WRITABLE = ['/tmp/', '/var/tmp/', '/dev/shm/', '/home/', '/run/', '/proc/', '/memfd:'];
/** The dynamic loader run by name (`ld-linux-x86-64.so.2 /tmp/x`) runs whatever file it is handed. */
const LOADER = /^ld(?:-linux[\w.-]*|-musl[\w.-]*)?\.so(?:\.\d+)*$/;

const short = (argv: string[]) => argv.slice(0, 12).join(' ').slice(0, 400);

export function processFindings(ctx: ProcessContext): { findings: Finding[]; events: Array<Record<string, unknown>> } {
  const { trace, packageOf } = ctx;
  const findings: Finding[] = [];
  const events: Array<Record<string, unknown>> = [...trace.processes.values()].map((p) => ({
    pid: p.pid,
    ppid: p.ppid,
    argv: p.argv,
    cwd: p.cwd,
    exitCode: p.exitCode,
    signal: p.signal,
    package: packageOf(p.pid),
  }));
  const watched = new Set(ctx.execWatch);
  const writable = [...ALWAYS_WRITABLE, ...ctx.writable.map((dir) => (dir.endsWith('/') ? dir : `${dir}/`))];
  /** The watched name this exec runs, by its path's name, its argv[0] or the file's identity. */
  const watchedName = (event: Extract<Trace['events'][number], { kind: 'exec' }>): string | null => {
    const names = [path.posix.basename(event.path), path.posix.basename(event.argv[0] ?? ''), ctx.execAliases?.[event.path]];
    return names.find((name): name is string => name !== undefined && watched.has(name)) ?? null;
  };
  const seen = new Set<string>();
  const once = (key: string, make: () => Finding) => {
    if (seen.has(key)) return;
    seen.add(key);
    findings.push(make());
  };
  const argvOf = (pid: number) => short(trace.processes.get(pid)?.argv ?? []);
  /**
   * A call the seccomp filters refuse (core/seccomp.ts): every attempt. One that was not refused
   * means a filter was not in force: the tracer cannot vouch for what it did, so that is tampering too.
   */
  const forbidden = (
    event: { pid: number; time: number; ok: boolean; errno: string | null },
    syscall: string,
    detail: string | null,
    target: number | null,
  ) => {
    const pkg = packageOf(event.pid, event.time);
    const call = `${syscall}${detail === null ? '' : `(${detail})`}`;
    once(`forbidden|${event.pid}|${syscall}|${detail}|${event.ok}`, () =>
      finding(
        'process.forbidden-syscall',
        'high',
        event.ok ? `${call}: a call the sandbox refuses went through` : `${call}: refused by the sandbox's seccomp filter (${event.errno ?? 'failed'})`,
        { syscall, detail, target, errno: event.errno, ok: event.ok, pid: event.pid, argv: argvOf(event.pid) },
        pkg,
      ),
    );
    if (!event.ok || syscall === 'ptrace' || syscall === 'io_uring_setup') return;
    once(`unrefused|${event.pid}|${syscall}`, () =>
      finding(
        'monitor.tampered',
        'critical',
        `${call} went through: the sandbox's seccomp filter is not in force`,
        { syscall, detail, target, ok: true, pid: event.pid, argv: argvOf(event.pid) },
        pkg,
      ),
    );
  };

  for (const event of trace.events) {
    if (event.kind === 'exec') {
      const loader = LOADER.test(path.posix.basename(event.path));
      if (event.viaFd || loader || writable.some((dir) => event.path.startsWith(dir))) {
        // A program run from where the install could have written it (a renamed shell, a
        // downloaded binary, a memfd): its name says nothing, so where it lives must. Attempts
        // count: the file was put there to be run. Except a PATH search's misses: an ENOENT there
        // (nothing at that path) by a process that looked for the same name in a place the install
        // cannot write too, found or not. setuptools' compiler call finds gcc that way through
        // pip's build-env bin dirs; poetry-core's `git check-ignore` finds no git anywhere.
        const base = path.posix.basename(event.path);
        const searched = (e: Trace['events'][number]): boolean =>
          e.kind === 'exec' && e.pid === event.pid && path.posix.basename(e.path) === base && !e.viaFd && !writable.some((dir) => e.path.startsWith(dir));
        if (!event.ok && event.errno === 'ENOENT' && trace.events.some(searched)) continue;
        const where = event.viaFd ? 'a file descriptor' : loader ? 'the dynamic loader' : 'a writable place';
        once(`exec-written|${packageOf(event.pid, event.time)}|${event.path}`, () =>
          finding(
            'process.exec',
            'high',
            `${event.ok ? 'ran' : 'tried to run'} a program from ${where}: ${short(event.argv)}`,
            { path: event.path, argv: short(event.argv), viaFd: event.viaFd, ok: event.ok, errno: event.errno, pid: event.pid },
            packageOf(event.pid, event.time),
          ),
        );
        continue;
      }
      const name = watchedName(event);
      if (name === null) continue;
      // A shell found on the second PATH entry shows up as ENOENT tries first: report what ran,
      // and the attempts only when nothing ran.
      const pkg = packageOf(event.pid, event.time);
      if (!event.ok && trace.events.some((e) => e.kind === 'exec' && e.pid === event.pid && e.ok && watchedName(e) === name)) continue;
      once(`exec|${pkg}|${name}|${event.argv.join('\0')}`, () =>
        finding(
          'process.exec',
          'high',
          `${event.ok ? 'ran' : 'tried to run'} ${name}: ${short(event.argv)}`,
          { path: event.path, argv: short(event.argv), ok: event.ok, errno: event.errno, pid: event.pid },
          pkg,
        ),
      );
    } else if (event.kind === 'kill') {
      // Signals within the sandbox's own processes are its business; anything else (pid 1, the
      // tracer, "every process" with -1) is an attack on the monitor.
      // kill(0) is the caller's own process group: the supervisor starts the tracer in a session of
      // its own, so that group holds sandbox processes only. kill(-pgid) names a group by its leader.
      const ownTarget = event.target === 0 || (event.target !== -1 && trace.processes.has(Math.abs(event.target)));
      if (ownTarget) continue;
      once(`kill|${event.pid}|${event.target}|${event.signal}`, () =>
        finding(
          'monitor.tampered',
          'critical',
          `${event.syscall}(${event.target}, ${event.signal}) aimed at a process outside the sandbox${event.ok ? '' : ` (${event.errno ?? 'failed'})`}`,
          { syscall: event.syscall, target: event.target, signal: event.signal, ok: event.ok, errno: event.errno, pid: event.pid, argv: argvOf(event.pid) },
          packageOf(event.pid, event.time),
        ),
      );
    } else if (event.kind === 'ptrace') {
      forbidden(event, 'ptrace', event.request, event.target);
      // Refused, it reached nothing; one that went through made a tracer inside the sandbox.
      if (!event.ok) continue;
      once(`ptrace|${event.pid}|${event.request}|${event.target}`, () =>
        finding(
          'monitor.tampered',
          'critical',
          `ptrace(${event.request}, ${event.target ?? '?'})`,
          { request: event.request, target: event.target, ok: event.ok, pid: event.pid, argv: argvOf(event.pid) },
          packageOf(event.pid, event.time),
        ),
      );
    } else if (event.kind === 'forbidden') {
      // The persona query changes nothing, and is the one personality() the filters let through.
      if (event.syscall === 'personality' && event.ok && personaQuery(event.detail)) continue;
      forbidden(event, event.syscall, event.detail, event.target);
    } else if (event.kind === 'exit' && event.signal === 'SIGSYS' && !sentSigsys(trace, event.pid)) {
      // Only a seccomp filter kills with SIGSYS that nobody sent: the engine's, for a call through an
      // ABI the profile does not name (int 0x80, x32), and the tracer's, likewise. The tracer
      // records native calls only, so the death is what shows it.
      once(`forbidden|${event.pid}|abi`, () =>
        finding(
          'process.forbidden-syscall',
          'high',
          'a syscall through a non-native ABI (int 0x80, x32): the process was killed (SIGSYS) before it ran',
          { syscall: NON_NATIVE_ABI, errno: null, ok: false, signal: 'SIGSYS', pid: event.pid, argv: argvOf(event.pid) },
          packageOf(event.pid, event.time),
        ),
      );
    } else if (event.kind === 'blindspot') {
      // io_uring_setup is refused by the profile: the attempt is reported; one that went through
      // (the profile not in force) blinds the tracer to everything the ring then does.
      if (event.syscall === 'io_uring_setup') forbidden(event, event.syscall, null, null);
      if (event.syscall === 'io_uring_setup' && !event.ok) continue;
      // pidfd_open of one of the sandbox's own processes is ordinary (subprocess uses it to wait).
      if (event.syscall === 'pidfd_open' && event.target !== null && trace.processes.has(event.target)) continue;
      once(`blindspot|${event.pid}|${event.syscall}|${event.target}`, () =>
        finding(
          'monitor.tampered',
          'critical',
          `${event.syscall}${event.target === null ? '' : `(${event.target})`}: a way around the tracer`,
          { syscall: event.syscall, target: event.target, ok: event.ok, errno: event.errno, pid: event.pid, argv: argvOf(event.pid) },
          packageOf(event.pid, event.time),
        ),
      );
    } else if (event.kind === 'spawn' && !event.ok && event.errno === 'EAGAIN') {
      once(`pids|${packageOf(event.pid, event.time)}`, () =>
        finding(
          'resource.pids',
          'high',
          'a fork failed with EAGAIN: the pids limit was hit',
          { pid: event.pid, argv: argvOf(event.pid) },
          packageOf(event.pid, event.time),
        ),
      );
    }
  }

  const detachedSeen = new Set<number>();
  for (const proc of ctx.detached) {
    detachedSeen.add(proc.pid);
    findings.push(
      finding(
        'process.lingering',
        'high',
        `detached from the process that started it, killed at once: ${short(proc.argv)}`,
        { pid: proc.pid, ppid: proc.ppid, argv: short(proc.argv), detached: true },
        packageOf(proc.pid),
      ),
    );
  }
  // What the supervisor's polling can miss: a process that detached and ended between two looks.
  for (const proc of outlivedParents(trace)) {
    if (detachedSeen.has(proc.pid)) continue;
    findings.push(
      finding(
        'process.lingering',
        'high',
        `outlived the process that started it: ${short(proc.argv)}`,
        { pid: proc.pid, ppid: proc.ppid, argv: short(proc.argv), detached: true },
        packageOf(proc.pid),
      ),
    );
  }

  for (const proc of ctx.lingering) {
    const pkg = trace.processes.has(proc.pid) ? packageOf(proc.pid) : null;
    findings.push(
      finding(
        'process.lingering',
        'high',
        `still alive after pip ended, killed: ${short(proc.argv)}`,
        { pid: proc.pid, ppid: proc.ppid, argv: short(proc.argv) },
        pkg,
      ),
    );
  }
  return { findings, events };
}

/** The `syscall` of a death by a non-native ABI: which call it was, the record cannot say. */
export const NON_NATIVE_ABI = 'non-native-abi';

/** personality(0xffffffff) as strace prints it (`0xffffffff`, or -1 read as signed). */
function personaQuery(detail: string | null): boolean {
  if (detail === null) return false;
  const value = /^0x[0-9a-f]+$/i.test(detail) ? Number.parseInt(detail, 16) : /^-?\d+$/.test(detail) ? Number(detail) >>> 0 : NaN;
  return value === PERSONALITY_QUERY;
}

/** Whether a traced signal call sent SIGSYS that could have reached `pid` (itself, its group, everyone). */
function sentSigsys(trace: Trace, pid: number): boolean {
  return trace.events.some((e) => e.kind === 'kill' && /^SIGSYS\b/.test(e.signal) && (e.target === pid || e.target <= 0));
}

/**
 * Processes (not threads) still running after their parent ended: the parent exited without
 * waiting, so the child was re-parented. pip always waits for what it starts.
 */
export function outlivedParents(trace: Trace): ProcessInfo[] {
  const threads = threadsOf(trace);
  const found: ProcessInfo[] = [];
  for (const proc of trace.processes.values()) {
    if (proc.ppid === null || threads.has(proc.pid)) continue;
    const parent = trace.processes.get(proc.ppid);
    if (!parent || parent.end === null || parent.start > proc.start) continue;
    if (proc.end === null || proc.end > parent.end) found.push(proc);
  }
  return found;
}
