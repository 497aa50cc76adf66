/**
 * Process findings: shells and network tools run during the install, processes left alive after
 * pip ended, signals aimed at the monitor, ptrace attempts, and fork failures at the pids limit.
 */
import path from 'node:path';
import { finding, type Finding } from '../core/finding.js';
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
      once(`ptrace|${event.pid}|${event.request}|${event.target}`, () =>
        finding(
          'monitor.tampered',
          'critical',
          `ptrace(${event.request}, ${event.target ?? '?'})`,
          { request: event.request, target: event.target, ok: event.ok, pid: event.pid, argv: argvOf(event.pid) },
          packageOf(event.pid, event.time),
        ),
      );
    } else if (event.kind === 'blindspot') {
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
