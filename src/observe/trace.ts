/**
 * Parse the tracer's record: `strace -f -y -ttt -s 4096 -o <file>` output, one line per
 * syscall, `<pid> <epoch.micro> <name>(<args>) = <result> [<ERRNO> (<text>)]`, into events and a
 * process tree (parent, argv, working directory, exit) that attribution walks.
 *
 * The record is hostile input. A package cannot write the file, but it chooses every file name,
 * argv element, socket path and payload that strace prints, so all of that is read only inside
 * quoted strings, with a scanner that respects quotes and C escapes, never by a regular expression
 * over the whole line. Parsing never throws: a line it cannot read is counted in `unparsed`, and
 * anything beyond the memory bounds is counted in `dropped`. Callers must treat `dropped > 0` as an
 * incomplete record (fail closed): a package can flood the trace to push later events past the cap.
 *
 * Strings are decoded exactly: `\n`, `\t`, `\"`, `\\`, `\xNN` and octal `\NNN` become bytes, and the
 * bytes are read as UTF-8 with U+FFFD for invalid sequences. A string strace cut at `-s` (printed as
 * `"prefix"...`) keeps its prefix as is, without a marker, and the event says `truncated: true`.
 * The buffers of sends (sendto, sendmsg, sendmmsg) are kept as bytes (one latin-1 character each),
 * as much as strace printed (`-s 4096` per buffer), for observe/exfil.ts to search for canaries.
 */
import { posix } from 'node:path';
import { FORBIDDEN_SYSCALLS } from '../core/seccomp.js';

/** Events kept; the rest are counted in `Trace.dropped`. */
export const MAX_EVENTS = 200_000;
/** Distinct processes kept; lines of further pids are counted in `Trace.dropped`. */
export const MAX_PROCESSES = 100_000;
export const MAX_ARGV_ENTRIES = 64;
export const MAX_ARG_CHARS = 4096;
/**
 * Bytes of send buffers kept over the whole trace; the rest are counted in `Trace.payloadDropped`.
 * pip's own requests to the index relay are a few hundred bytes each (tens of KiB for a large lock);
 * anything near this cap is a package sending in bulk. It bounds the memory held and the bytes
 * searched for canaries (core/canary.ts SEARCHED_BYTES_PER_RUN counts it).
 */
export const MAX_SEND_PAYLOAD_BYTES = 32 * 1024 ** 2;
/** Working directories remembered per process (attribution looks at the oldest ones). */
export const MAX_CWD_HISTORY = 32;
/**
 * fd-table entries held over all live processes (a fork copies its parent's table, and a table is
 * keyed by fd number, so it stays as small as the numbers a process uses); past it, the entries not
 * kept count in `Trace.dropped`: a path through `/proc/self/fd/N` could no longer be resolved.
 */
export const MAX_FD_ENTRIES = 1_000_000;
/** Symlinks made during the run that paths are resolved through; past it, the rest count in `Trace.dropped`. */
export const MAX_SYMLINKS = 20_000;
/** Symlinks followed in one path: the kernel's own limit (ELOOP past it). */
const MAX_LINKS_FOLLOWED = 40;
/**
 * Longer lines are read from their head only (`salvage`). Under the sandbox's stack limit the
 * kernel takes at most 2 MiB of argv and environment (a quarter of an 8 MiB stack), so a real
 * execve prints well under this; only escaped binary argv or a sendmsg of hundreds of buffers
 * gets here, and the parser still reads the syscall, its first strings and its address.
 */
export const MAX_LINE_CHARS = 4 * 1024 * 1024;
/** How much of an oversized line is parsed: far more than any path, sockaddr or first argv entries. */
const SALVAGE_HEAD_CHARS = 64 * 1024;
/** Of a forbidden call's first argument (a command name, a key type). */
const MAX_DETAIL_CHARS = 128;
/** Heads of unread or oversized lines kept as evidence. */
const MAX_HEADS = 8;
const HEAD_CHARS = 240;

interface EventBase {
  pid: number;
  /** Seconds since the epoch, when the syscall started (the unfinished half, for a split line). */
  time: number;
}

interface Outcome {
  /** The call returned a non-negative value. An unknown result (`= ?`) is not ok. */
  ok: boolean;
  errno: string | null;
}

interface PathFacts {
  /**
   * True when the path could not be made absolute: it was relative to a directory fd (`openat(3,
   * "x")`) or to a working directory lost to `fchdir`. The path is then kept as written.
   */
  relative: boolean;
  /** A string in the call was cut by strace's `-s`, or argv by our own caps. */
  truncated: boolean;
  /**
   * The path as the call named it, when the kernel resolved it elsewhere: through `/proc/<pid>/fd/N`
   * or `/dev/fd/N`, a symlink made during the run, or (for an open) the path `-y` printed for the
   * fd it returned. `path` is what the kernel resolved; this is evidence of the dodge.
   */
  via?: string;
}

export interface ExecEvent extends EventBase, Outcome {
  kind: 'exec';
  /** Absolute and normalised unless given relative to a directory fd (`execveat`). */
  path: string;
  /**
   * execveat of a file descriptor (`AT_EMPTY_PATH`, an empty path, or a path relative to a dirfd):
   * what runs is whatever the fd holds (a memfd, a deleted file), not a name on disk.
   */
  viaFd: boolean;
  argv: string[];
  /** The process's working directory when it called exec. */
  cwd: string;
  truncated: boolean;
}

export interface ConnectEvent extends EventBase, Outcome {
  kind: 'connect';
  syscall: 'connect' | 'sendto' | 'sendmsg' | 'sendmmsg';
  family: 'inet' | 'inet6' | 'unix' | 'other';
  /** IP address as strace printed it; for unix the socket path (abstract: `@name`); else the family name. */
  address: string;
  port: number | null;
}

/**
 * What a send carried: sendto's buffer, sendmsg's iovecs in order, one message of a sendmmsg. Every
 * send with bytes is one, to a connected socket too (a TCP stream written with send(), which has no
 * address of its own: `to` is then the address the same socket connected to, when the trace has it).
 */
export interface SendEvent extends EventBase, Outcome {
  kind: 'send';
  syscall: 'sendto' | 'sendmsg' | 'sendmmsg';
  to: Address | null;
  /** The bytes as strace printed them, one character per byte (latin-1). */
  payload: string;
  /** strace cut a buffer at `-s` or left iovecs out, or MAX_SEND_PAYLOAD_BYTES did. */
  truncated: boolean;
}

export type OpenSyscall = 'open' | 'openat' | 'openat2' | 'creat' | 'access' | 'faccessat' | 'faccessat2' | ProbeSyscall;
/** Calls that look at a path without opening it: kept only where `ParseOptions.keepProbe` says. */
export type ProbeSyscall = 'stat' | 'lstat' | 'newfstatat' | 'statx' | 'readlink' | 'readlinkat';

export interface OpenEvent extends EventBase, Outcome, PathFacts {
  kind: 'open';
  syscall: OpenSyscall;
  path: string;
  /** O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND or O_TMPFILE; creat() always. access() never. */
  write: boolean;
  /** O_CREAT or O_TMPFILE; creat() always. */
  create: boolean;
}

export interface UnlinkEvent extends EventBase, Outcome, PathFacts {
  kind: 'unlink';
  path: string;
}

export interface RenameEvent extends EventBase, Outcome, PathFacts {
  kind: 'rename';
  from: string;
  to: string;
  /** `from` and `to` as the call named them, when the kernel resolved them elsewhere (see PathFacts.via). */
  fromVia?: string;
  toVia?: string;
}

export interface SymlinkEvent extends EventBase, Outcome, PathFacts {
  kind: 'symlink';
  /** The link's content, verbatim: it is not resolved. */
  target: string;
  /** Where the link was created. */
  path: string;
}

/**
 * Calls that change a file without opening it: its name, mode, owner, times, length or extended
 * attributes; by path, or by an fd (`fchmod`, `ftruncate`, ...: the file is the fd's, as `-y` or the
 * process's fd table names it).
 */
export type FsOpSyscall =
  | 'mkdir'
  | 'mkdirat'
  | 'rmdir'
  | 'chmod'
  | 'fchmodat'
  | 'chown'
  | 'lchown'
  | 'fchownat'
  | 'utime'
  | 'utimes'
  | 'futimesat'
  | 'utimensat'
  | 'truncate'
  | 'link'
  | 'linkat'
  | 'setxattr'
  | 'lsetxattr'
  | 'removexattr'
  | 'lremovexattr'
  | FdOpSyscall;
/** The fd-based calls among them. */
export type FdOpSyscall = 'fchmod' | 'fchown' | 'ftruncate' | 'fallocate' | 'fsetxattr' | 'fremovexattr';

export interface FsOpEvent extends EventBase, Outcome, PathFacts {
  kind: 'fsop';
  syscall: FsOpSyscall;
  /** The path changed (for a link, the new name). */
  path: string;
  /** A hard link's existing file; null for the other calls. */
  from: string | null;
}

export interface KillEvent extends EventBase, Outcome {
  kind: 'kill';
  syscall: 'kill' | 'tkill' | 'tgkill';
  /** kill's pid (0, -1 and negative process groups included), tkill's tid, tgkill's tgid. */
  target: number;
  /** As strace printed it: `SIGKILL`, `0`, `SIGRT_3`. */
  signal: string;
}

export interface PtraceEvent extends EventBase, Outcome {
  kind: 'ptrace';
  request: string;
  target: number | null;
}

/**
 * A syscall that works around the tracer: io_uring performs opens, connects and sends in the
 * kernel without a traced syscall, and a pidfd (pidfd_open) lets later signals name a process
 * without a pid in the record.
 */
export interface BlindspotEvent extends EventBase, Outcome {
  kind: 'blindspot';
  syscall: string;
  /** pidfd_open's pid, when there is one. */
  target: number | null;
}

/**
 * A call the sandbox's seccomp filters refuse (core/seccomp.ts), other than ptrace and
 * io_uring_setup, which have events of their own. Refused, it failed with EPERM.
 */
export interface ForbiddenEvent extends EventBase, Outcome {
  kind: 'forbidden';
  syscall: string;
  /** What it asked for, where the first argument says: the persona, the bpf or keyctl command, the key type. */
  detail: string | null;
  /** The process it reached for (process_vm_readv/writev's pid). */
  target: number | null;
}

export interface SpawnEvent extends EventBase, Outcome {
  kind: 'spawn';
  /** The new pid, or -1 when the call failed (EAGAIN at the pids limit) or never returned. */
  child: number;
  /** clone/clone3 with CLONE_THREAD. */
  thread: boolean;
}

export interface ExitEvent extends EventBase {
  kind: 'exit';
  code: number | null;
  signal: string | null;
}

export type TraceEvent =
  | ExecEvent
  | ConnectEvent
  | SendEvent
  | OpenEvent
  | UnlinkEvent
  | RenameEvent
  | SymlinkEvent
  | FsOpEvent
  | KillEvent
  | PtraceEvent
  | BlindspotEvent
  | ForbiddenEvent
  | SpawnEvent
  | ExitEvent;

export interface ProcessInfo {
  pid: number;
  /** The process whose clone/fork/vfork returned this pid; null for the root and for orphans. */
  ppid: number | null;
  /** The last successful exec's argv; the parent's until then. */
  argv: string[];
  exe: string | null;
  /** The current (last known) working directory. */
  cwd: string;
  /** Every working directory it had, oldest first: the one inherited at spawn, then each chdir. */
  cwds: string[];
  start: number;
  end: number | null;
  exitCode: number | null;
  signal: string | null;
}

export interface Trace {
  events: TraceEvent[];
  /** By pid. A reused pid keeps only its latest process. */
  processes: Map<number, ProcessInfo>;
  /** The pid of the first line. */
  rootPid: number | null;
  /** Lines that could not be read. */
  unparsed: number;
  /** Lines over MAX_LINE_CHARS, read from their head only. */
  oversized: number;
  /** The first few unread or oversized lines' heads (escaped as strace printed them), as evidence. */
  heads: string[];
  /** Events and lines beyond MAX_EVENTS / MAX_PROCESSES. Non-zero means the record is incomplete. */
  dropped: number;
  /** Bytes of send buffers beyond MAX_SEND_PAYLOAD_BYTES, not kept. Non-zero means not everything sent can be searched. */
  payloadDropped: number;
}

export interface ParseOptions {
  /** The root's working directory. Default `/home/sandbox`. */
  initialCwd?: string;
  /**
   * Which stat/readlink probes become events (default: all). A pip run makes tens of thousands of
   * them, so the caller keeps the ones its rules judge instead of filling MAX_EVENTS.
   */
  keepProbe?: (path: string) => boolean;
}

export function parseTrace(text: string, options: ParseOptions = {}): Trace {
  const parser = new TraceParser(options);
  let from = 0;
  while (from < text.length) {
    let to = text.indexOf('\n', from);
    if (to < 0) to = text.length;
    parser.push(text.slice(from, to));
    from = to + 1;
  }
  return parser.finish();
}

interface SpawnSnapshot {
  cwd: string;
  cwdKnown: boolean;
  /** The pid of the first unknown process seen while this call was in flight, taken as its child. */
  claimedBy: number | null;
  /** CLONE_FILES (a thread): the child shares the caller's fd table instead of a copy of it. */
  sharesFiles: boolean;
}

interface Pending {
  name: string;
  /** The call up to where strace broke it off, without ` <unfinished ...>`. */
  text: string;
  time: number;
  spawn: SpawnSnapshot | null;
}

interface ProcState {
  info: ProcessInfo;
  cwdKnown: boolean;
  execed: boolean;
  chdired: boolean;
  /** The parent is known from a spawn result (or this is the root), not guessed. */
  confirmed: boolean;
  /** What each of its fds names, as far as the record tells (see FdTable). */
  fds: FdTable;
}

/**
 * A process's fds and the paths the kernel gave them: from `-y` on every fd a traced call returned
 * (open family, dup family, fcntl F_DUPFD, open_tree, SCM_RIGHTS received) and on every fd a traced
 * call took. Shared between the processes that share the kernel's table (threads, CLONE_FILES),
 * copied at fork. close() is not traced (pip makes as many as opens), so an entry outlives its fd
 * until the number is reused; every call that can hand a process a path's fd is traced and updates
 * it, so a stale entry can only name an fd number that now holds a pipe or a socket, which no path
 * can go through. Close-on-exec is not modelled either: a flag cleared by ioctl(FIONCLEX) is not
 * in the record, and keeping an entry the exec closed is the side that cannot hide a path.
 */
class FdTable {
  readonly paths = new Map<number, string>();
  /** Live processes sharing this table. */
  users = 1;
}

interface Call {
  name: string;
  args: string[];
  value: number | null;
  errno: string | null;
  /** What `-y` printed for a returned fd (`= 3</tmp/x>`): the kernel's name for what was opened. */
  fdPath: string | null;
}

const SPAWNS = new Set(['clone', 'clone3', 'fork', 'vfork']);

/**
 * Every syscall `dispatch` turns into an event or state. The supervisor traces exactly these
 * (images/supervisor.py TRACED; trace.test.ts checks the two lists agree): a syscall traced but not
 * modelled would be paid for and then silently ignored.
 */
export const MODELLED_SYSCALLS: readonly string[] = [
  'execve',
  'execveat',
  'connect',
  'sendto',
  'sendmsg',
  'sendmmsg',
  'open',
  'openat',
  'openat2',
  'creat',
  'access',
  'faccessat',
  'faccessat2',
  'stat',
  'lstat',
  'newfstatat',
  'statx',
  'readlink',
  'readlinkat',
  'unlink',
  'unlinkat',
  'rename',
  'renameat',
  'renameat2',
  'symlink',
  'symlinkat',
  'mkdir',
  'mkdirat',
  'rmdir',
  'chmod',
  'fchmodat',
  'chown',
  'lchown',
  'fchownat',
  'utime',
  'utimes',
  'futimesat',
  'utimensat',
  'truncate',
  'link',
  'linkat',
  'rt_sigqueueinfo',
  'kill',
  'tkill',
  'tgkill',
  'io_uring_setup',
  'pidfd_open',
  'ptrace',
  'chdir',
  'fchdir',
  'clone',
  'clone3',
  'fork',
  'vfork',
  // The fd-based changes, judged by the path of their fd; and xattr changes by path.
  'fchmod',
  'fchown',
  'ftruncate',
  'fallocate',
  'fsetxattr',
  'fremovexattr',
  'setxattr',
  'lsetxattr',
  'removexattr',
  'lremovexattr',
  // Only state: every call that can give a process a path's fd, so `/proc/self/fd/N` is resolved
  // as the kernel does; unshare(CLONE_FILES) splits a shared fd table.
  'dup',
  'dup2',
  'dup3',
  'fcntl',
  'open_tree',
  'recvmsg',
  'recvmmsg',
  'unshare',
  // Refused by the sandbox's seccomp filters (core/seccomp.ts): every attempt is an event.
  ...FORBIDDEN_SYSCALLS.filter((name) => name !== 'io_uring_setup' && name !== 'ptrace'),
];
/** The stat/readlink probes `keepProbe` filters; observe/ judges them with access() as look-only calls. */
export const PROBE_SYSCALLS: ReadonlySet<OpenSyscall> = new Set<OpenSyscall>(['stat', 'lstat', 'newfstatat', 'statx', 'readlink', 'readlinkat']);
/** The end of a complete line: `) = <value>`, maybe with an errno and its text. */
const RESULT_AT_END = /\) = (-?\d{1,20}|0x[0-9a-fA-F]{1,16}|\?)(?: (E[A-Z0-9]+) \([^()]*\))?$/;
const UNFINISHED = ' <unfinished ...>';
const BLANK = /^\s*$/;
const HEADER = /^(?:\[pid\s+)?(\d{1,10})\]?\s+(\d{1,12}(?:\.\d{1,9})?)\s+/;

/** Line-at-a-time parser; `parseTrace` is a loop over it. */
export class TraceParser {
  private readonly events: TraceEvent[] = [];
  private readonly procs = new Map<number, ProcState>();
  private readonly pending = new Map<number, Pending>();
  private readonly initialCwd: string;
  private rootPid: number | null = null;
  private unparsed = 0;
  private oversized = 0;
  private readonly heads: string[] = [];
  private dropped = 0;
  private payloadBytes = 0;
  private payloadDropped = 0;
  /** The address each socket (as `-y` names it, `socket:[inode]`) last connected to. */
  private readonly connectedTo = new Map<string, Address>();
  private readonly keepProbe: (path: string) => boolean;
  /** Every symlink made during the run and still there, by where it is (resolved), to its content. */
  private readonly symlinks = new Map<string, string>();
  /** Entries over all fd tables (MAX_FD_ENTRIES). */
  private fdEntries = 0;

  constructor(options: ParseOptions = {}) {
    this.initialCwd = posix.resolve('/', options.initialCwd ?? '/home/sandbox');
    this.keepProbe = options.keepProbe ?? (() => true);
  }

  /** One line of the record (a chunk holding several lines is split). */
  push(line: string): void {
    if (line.includes('\n')) {
      for (const part of line.split('\n')) this.push(part);
      return;
    }
    const before = this.unparsed;
    try {
      this.line(line);
    } catch {
      // A bug must not blind the monitor silently: the line counts as unread.
      this.unparsed++;
    }
    if (this.unparsed > before) this.keepHead(line);
  }

  private keepHead(line: string): void {
    if (this.heads.length < MAX_HEADS) this.heads.push(line.slice(0, HEAD_CHARS));
  }

  finish(): Trace {
    for (const pid of [...this.pending.keys()]) this.flush(pid);
    const processes = new Map<number, ProcessInfo>();
    for (const [pid, state] of this.procs) processes.set(pid, state.info);
    return {
      events: this.events,
      processes,
      rootPid: this.rootPid,
      unparsed: this.unparsed,
      oversized: this.oversized,
      heads: this.heads,
      dropped: this.dropped,
      payloadDropped: this.payloadDropped,
    };
  }

  private line(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.length > MAX_LINE_CHARS) {
      this.salvage(line);
      return;
    }
    if (BLANK.test(line)) return;
    const header = HEADER.exec(line);
    const pid = header ? Number(header[1]) : NaN;
    const time = header ? Number(header[2]) : NaN;
    if (!header || !Number.isSafeInteger(pid) || !Number.isFinite(time)) {
      this.unparsed++;
      return;
    }
    const rest = line.slice(header[0].length);
    if (rest.startsWith('--- ')) return; // signal delivery; not traced as an event
    const state = this.proc(pid, time);
    if (!state) return;

    if (rest.startsWith('+++ ')) {
      this.exit(state, time, rest);
      return;
    }
    if (rest.startsWith('<... ')) {
      this.resumed(state, rest);
      return;
    }
    if (rest.endsWith(UNFINISHED)) {
      this.unfinished(state, time, rest.slice(0, -UNFINISHED.length));
      return;
    }
    if (rest.endsWith(' <detached ...>')) return;
    this.call(state, time, rest, null);
  }

  /**
   * An oversized line (an execve of megabytes of escaped argv, a sendmsg of a thousand buffers) is
   * read from its head: the syscall, its first arguments and its address come before the bulk, and
   * the result is at the very end. The head is cut at the last complete element, closed, and
   * parsed like any line, so the event is still judged; the line also counts as oversized, which
   * observe/ treats as tampering, since nothing legitimate prints one under the sandbox's limits.
   */
  private salvage(line: string): void {
    this.oversized++;
    this.keepHead(line);
    const header = HEADER.exec(line.slice(0, 64));
    const pid = header ? Number(header[1]) : NaN;
    const time = header ? Number(header[2]) : NaN;
    if (!header || !Number.isSafeInteger(pid) || !Number.isFinite(time)) return;
    const head = line.slice(header[0].length, SALVAGE_HEAD_CHARS);
    const name = /^([a-z_][a-z0-9_]*)\(/.exec(head);
    if (!name) return;
    const body = closeCut(head, name[0].length);
    if (body === null) return;
    const state = this.proc(pid, time);
    if (!state) return;
    const tail = line.slice(-256);
    if (tail.endsWith(UNFINISHED)) {
      this.unfinished(state, time, body);
      return;
    }
    const result = RESULT_AT_END.exec(tail);
    this.call(state, time, `${body})${result ? ` = ${result[1]}${result[2] ? ` ${result[2]}` : ''}` : ' = ?'}`, null);
  }

  /** The live process for a pid, created on first sight. Null when over the process cap. */
  private proc(pid: number, time: number): ProcState | null {
    const known = this.procs.get(pid);
    if (known && known.info.end === null) return known;
    if (!known && this.procs.size >= MAX_PROCESSES) {
      this.dropped++;
      return null;
    }
    if (this.rootPid === null) {
      this.rootPid = pid;
      const root = this.newProc(pid, null, time, [], null, this.initialCwd, true, new FdTable());
      root.confirmed = true;
      return root;
    }
    // strace often prints a child's first lines before its parent's clone/vfork returns. While a
    // spawn is in flight, the newest unclaimed one is taken as the parent; its result confirms it.
    let best: [number, Pending] | null = null;
    for (const entry of this.pending) {
      const spawn = entry[1].spawn;
      if (spawn && spawn.claimedBy === null && (best === null || entry[1].time >= best[1].time)) best = entry;
    }
    if (best && best[1].spawn) {
      best[1].spawn.claimedBy = pid;
      const parent = this.procs.get(best[0]);
      const fds = parent ? this.inheritFds(parent, best[1].spawn.sharesFiles) : new FdTable();
      return this.newProc(pid, best[0], time, parent?.info.argv ?? [], parent?.info.exe ?? null, best[1].spawn.cwd, best[1].spawn.cwdKnown, fds);
    }
    // No spawn explains it: parent, working directory and fds are unknown.
    return this.newProc(pid, null, time, [], null, this.initialCwd, false, new FdTable());
  }

  private newProc(
    pid: number,
    ppid: number | null,
    start: number,
    argv: string[],
    exe: string | null,
    cwd: string,
    cwdKnown: boolean,
    fds: FdTable,
  ): ProcState {
    const state: ProcState = {
      info: { pid, ppid, argv, exe, cwd, cwds: [cwd], start, end: null, exitCode: null, signal: null },
      cwdKnown,
      execed: false,
      chdired: false,
      confirmed: false,
      fds,
    };
    this.procs.set(pid, state);
    return state;
  }

  /** A child's fd table: its parent's own (CLONE_FILES), or a copy within MAX_FD_ENTRIES. */
  private inheritFds(parent: ProcState, shared: boolean): FdTable {
    if (shared) {
      parent.fds.users++;
      return parent.fds;
    }
    return this.copyFds(parent.fds);
  }

  private copyFds(from: FdTable): FdTable {
    const table = new FdTable();
    for (const [fd, path] of from.paths) {
      if (this.fdEntries >= MAX_FD_ENTRIES) {
        this.dropped++;
        break;
      }
      this.fdEntries++;
      table.paths.set(fd, path);
    }
    return table;
  }

  /** A process stops using its table (it ended, or unshared it). */
  private releaseFds(state: ProcState): void {
    const table = state.fds;
    table.users--;
    if (table.users > 0) return;
    this.fdEntries -= table.paths.size;
    table.paths.clear();
  }

  /** The kernel's name for one of the process's fds, as `-y` printed it. */
  private learnFd(state: ProcState, fd: number, name: string): void {
    const paths = state.fds.paths;
    if (!paths.has(fd)) {
      if (this.fdEntries >= MAX_FD_ENTRIES) {
        this.dropped++;
        return;
      }
      this.fdEntries++;
    }
    paths.set(fd, name);
  }

  /** The path an fd of `owner` names, when it is a path (not a pipe, a socket, an anon inode). */
  private fdPath(owner: ProcState, fd: number): string | null {
    const name = owner.fds.paths.get(fd);
    return name === undefined ? null : pathOfFd(name);
  }

  private emit(event: TraceEvent): void {
    if (this.events.length >= MAX_EVENTS) this.dropped++;
    else this.events.push(event);
  }

  /** Which address a socket fd (`3<socket:[77]>`) connected to, for later sends without one. */
  private remember(fd: string | undefined, addr: Address): void {
    const socket = parseFd(fd ?? '').path;
    if (socket === null) return;
    this.connectedTo.delete(socket);
    // Bounded like the events it comes from; the oldest socket is forgotten first.
    if (this.connectedTo.size >= MAX_EVENTS) this.connectedTo.delete(this.connectedTo.keys().next().value!);
    this.connectedTo.set(socket, addr);
  }

  /** A send's bytes as a SendEvent, within MAX_SEND_PAYLOAD_BYTES; nothing for a send without bytes. */
  private send(
    base: EventBase & Outcome,
    syscall: SendEvent['syscall'],
    fd: string | undefined,
    addr: Address | null,
    buffers: Array<{ value: string; truncated: boolean }>,
    cut: boolean,
  ): void {
    let payload = buffers.map((b) => b.value).join('');
    let truncated = cut || buffers.some((b) => b.truncated);
    if (payload.length === 0) return;
    const room = MAX_SEND_PAYLOAD_BYTES - this.payloadBytes;
    if (payload.length > room) {
      this.payloadDropped += payload.length - room;
      payload = payload.slice(0, room);
      truncated = true;
      if (payload.length === 0) return;
    }
    this.payloadBytes += payload.length;
    const socket = parseFd(fd ?? '').path;
    const to = addr ?? (socket === null ? null : (this.connectedTo.get(socket) ?? null));
    this.emit({ kind: 'send', ...base, syscall, to, payload, truncated });
  }

  private exit(state: ProcState, time: number, rest: string): void {
    const exited = /^\+\+\+ exited with (-?\d+) \+\+\+$/.exec(rest);
    const killed = /^\+\+\+ killed by (SIG[A-Z0-9+-]+|\d+)(?: \(core dumped\))? \+\+\+$/.exec(rest);
    if (!exited && !killed) {
      // A non-leader thread's exec: the thread is gone, the process lives on under the leader pid.
      if (!/^\+\+\+ superseded by execve in pid \d+ \+\+\+$/.test(rest)) this.unparsed++;
      return;
    }
    this.flush(state.info.pid);
    const code = exited ? Number(exited[1]) : null;
    const signal = killed?.[1] ?? null;
    state.info.end = time;
    state.info.exitCode = code;
    state.info.signal = signal;
    this.releaseFds(state);
    this.emit({ kind: 'exit', pid: state.info.pid, time, code, signal });
  }

  private unfinished(state: ProcState, time: number, text: string): void {
    const pid = state.info.pid;
    const name = /^([a-z_][a-z0-9_]*)\(/.exec(text)?.[1];
    if (name === undefined) {
      this.unparsed++;
      return;
    }
    if (this.pending.has(pid)) this.flush(pid);
    const spawn = SPAWNS.has(name) ? { cwd: state.info.cwd, cwdKnown: state.cwdKnown, claimedBy: null, sharesFiles: sharesFiles(text) } : null;
    this.pending.set(pid, { name, text, time, spawn });
  }

  private resumed(state: ProcState, rest: string): void {
    const match = /^<\.\.\. ([a-z_][a-z0-9_]*) resumed>/.exec(rest);
    const pending = this.pending.get(state.info.pid);
    if (!match || !pending || pending.name !== match[1]) {
      this.unparsed++;
      return;
    }
    this.pending.delete(state.info.pid);
    const tail = rest.slice(match[0].length);
    if (tail.endsWith(UNFINISHED)) {
      // Interrupted again (a restarted syscall): keep waiting for the end.
      this.pending.set(state.info.pid, { ...pending, text: pending.text + tail.slice(0, -UNFINISHED.length) });
      return;
    }
    this.call(state, pending.time, pending.text + tail, pending.spawn);
  }

  /** A call that never returned (the process died in it, or the record ended): result unknown. */
  private flush(pid: number): void {
    const pending = this.pending.get(pid);
    const state = this.procs.get(pid);
    this.pending.delete(pid);
    if (!pending || !state) return;
    this.call(state, pending.time, `${pending.text}) = ?`, pending.spawn);
  }

  private call(state: ProcState, time: number, text: string, spawn: SpawnSnapshot | null): void {
    const call = parseCall(text);
    if (!call) {
      this.unparsed++;
      return;
    }
    if (!this.dispatch(state, time, call, spawn)) this.unparsed++;
  }

  /** False when the arguments do not have the shape this syscall prints. */
  private dispatch(state: ProcState, time: number, call: Call, spawn: SpawnSnapshot | null): boolean {
    const pid = state.info.pid;
    const { args, errno } = call;
    const ok = call.value !== null && call.value >= 0 && errno === null;
    const base = { pid, time, ok, errno };
    // What `-y` printed for every fd the call took, then for the one it returned, is what they name.
    for (const arg of args) {
      const first = arg.charCodeAt(0);
      if (first >= 0x30 && first <= 0x39 && arg.endsWith('>')) this.learnFdToken(state, arg);
    }
    if (ok && call.fdPath !== null && call.value !== null) this.learnFd(state, call.value, call.fdPath);
    const knownFdPath = ok && call.fdPath !== null ? pathOfFd(call.fdPath) : null;
    switch (call.name) {
      case 'execve':
        return this.exec(state, base, null, args[0], args[1]);
      case 'execveat':
        return this.exec(state, base, args[0], args[1], args[2], args[4]);
      case 'connect': {
        const addr = args[1] === undefined ? null : parseSockaddr(args[1]);
        if (!addr) return false;
        this.emit({ kind: 'connect', ...base, syscall: 'connect', ...addr });
        this.remember(args[0], addr);
        return true;
      }
      case 'sendto': {
        if (args.length < 4) return false;
        const raw = args[4];
        const addr = raw === undefined || raw === 'NULL' ? null : parseSockaddr(raw);
        if (raw !== undefined && raw !== 'NULL' && !addr) return false;
        // A connected socket (no address) was judged at its connect; its bytes are still searched.
        if (addr) this.emit({ kind: 'connect', ...base, syscall: 'sendto', ...addr });
        const buffer = decodeBytes(args[1] ?? '');
        this.send(base, 'sendto', args[0], addr, buffer ? [buffer] : [], false);
        return true;
      }
      case 'sendmsg': {
        const fields = args[1] === undefined ? null : structFields(args[1]);
        if (!fields) return false;
        const raw = fields.named.get('msg_name');
        const addr = raw === undefined || raw === 'NULL' ? null : parseSockaddr(raw);
        if (raw !== undefined && raw !== 'NULL' && !addr) return false;
        if (addr) this.emit({ kind: 'connect', ...base, syscall: 'sendmsg', ...addr });
        const iov = iovecs(fields.named.get('msg_iov'));
        this.send(base, 'sendmsg', args[0], addr, iov.buffers, iov.truncated);
        return true;
      }
      case 'sendmmsg': {
        // A vector of mmsghdrs, each with its own destination: every one is an attempt.
        const raw = args[1];
        if (raw === undefined) return false;
        if (raw === 'NULL' || /^0x[0-9a-f]+$/.test(raw)) return true;
        const messages = raw.startsWith('[') ? splitTop(raw, 1, ']') : null;
        if (!messages) return false;
        for (const message of messages.parts) {
          if (message === '...' || message === '') continue;
          const hdr = structFields(structFields(message)?.named.get('msg_hdr') ?? '');
          const name = hdr?.named.get('msg_name');
          if (!hdr) return false;
          const addr = name === undefined || name === 'NULL' ? null : parseSockaddr(name);
          if (name !== undefined && name !== 'NULL' && !addr) return false;
          if (addr) this.emit({ kind: 'connect', ...base, syscall: 'sendmmsg', ...addr });
          const iov = iovecs(hdr.named.get('msg_iov'));
          this.send(base, 'sendmmsg', args[0], addr, iov.buffers, iov.truncated);
        }
        return true;
      }
      case 'open':
        return this.open(state, base, 'open', null, args[0], args[1] === undefined ? undefined : openFlags(args[1]), knownFdPath);
      case 'openat':
        return this.open(state, base, 'openat', args[0], args[1], args[2] === undefined ? undefined : openFlags(args[2]), knownFdPath);
      case 'openat2': {
        const how = args[2] === undefined ? null : structFields(args[2]);
        const flags = how?.named.get('flags');
        // RESOLVE_IN_ROOT: an absolute path, and `..`, stay under the directory fd.
        const inRoot = hasFlag(how?.named.get('resolve'), 'RESOLVE_IN_ROOT', 0x10);
        return this.open(state, base, 'openat2', args[0], args[1], flags === undefined ? undefined : openFlags(flags), knownFdPath, inRoot);
      }
      case 'creat':
        return this.open(state, base, 'creat', null, args[0], { write: true, create: true, follow: true }, knownFdPath);
      case 'access':
      case 'stat':
        return this.open(state, base, call.name, null, args[0], LOOK);
      case 'lstat':
      case 'readlink':
        return this.open(state, base, call.name, null, args[0], LOOK_AT_LINK);
      case 'faccessat':
        return this.open(state, base, call.name, args[0], args[1], LOOK);
      case 'faccessat2':
      case 'newfstatat':
        return this.open(state, base, call.name, args[0], args[1], nofollow(args[3]) ? LOOK_AT_LINK : LOOK);
      case 'statx':
        return this.open(state, base, call.name, args[0], args[1], nofollow(args[2]) ? LOOK_AT_LINK : LOOK);
      case 'readlinkat':
        return this.open(state, base, call.name, args[0], args[1], LOOK_AT_LINK);
      case 'unlink':
        return this.unlink(state, base, null, args[0]);
      case 'unlinkat':
        return this.unlink(state, base, args[0], args[1]);
      case 'rename':
        return this.rename(state, base, null, args[0], null, args[1], false);
      case 'renameat':
        return this.rename(state, base, args[0], args[1], args[2], args[3], false);
      case 'renameat2':
        return this.rename(state, base, args[0], args[1], args[2], args[3], hasFlag(args[4], 'RENAME_EXCHANGE', 0x2));
      case 'symlink':
        return this.symlink(state, base, args[0], null, args[1]);
      case 'symlinkat':
        return this.symlink(state, base, args[0], args[1], args[2]);
      // The last component of the path is followed (a symlink there is the file changed), or not.
      case 'chmod':
      case 'chown':
      case 'utime':
      case 'utimes':
      case 'truncate':
      case 'setxattr':
      case 'removexattr':
        return this.fsop(state, base, call.name, null, args[0], true, null, null, false);
      case 'mkdir':
      case 'rmdir':
      case 'lchown':
      case 'lsetxattr':
      case 'lremovexattr':
        return this.fsop(state, base, call.name, null, args[0], false, null, null, false);
      case 'mkdirat':
        return this.fsop(state, base, call.name, args[0], args[1], false, null, null, false);
      case 'fchmodat':
      case 'futimesat':
        return this.fsop(state, base, call.name, args[0], args[1], true, null, null, false);
      case 'fchownat':
        return this.fsop(state, base, call.name, args[0], args[1], !nofollow(args[4]), null, null, false);
      case 'utimensat':
        // utimensat(fd, NULL, …) is futimens(fd): the file is the fd itself, which `-y` names.
        return this.fsop(state, base, call.name, args[0], args[1] === 'NULL' ? '""' : args[1], !nofollow(args[3]), null, null, false);
      case 'link':
        // link() makes a hard link to a symlink itself, not to what it points at.
        return this.fsop(state, base, 'link', null, args[1], false, null, args[0], false);
      case 'linkat':
        return this.fsop(state, base, 'linkat', args[2], args[3], false, args[0], args[1], hasFlag(args[4], 'AT_SYMLINK_FOLLOW', 0x400));
      case 'fchmod':
      case 'fchown':
      case 'ftruncate':
      case 'fallocate':
      case 'fsetxattr':
      case 'fremovexattr':
        return this.fdop(state, base, call.name, args[0]);
      case 'dup':
      case 'dup2':
      case 'dup3':
      case 'fcntl':
      case 'open_tree':
        return true; // the fd it returned, `-y` decorated, was learned above
      case 'recvmsg':
        this.receivedFds(state, ok, args[1]);
        return true;
      case 'recvmmsg':
        if (ok && args[1]?.startsWith('[')) {
          for (const message of splitTop(args[1], 1, ']')?.parts ?? []) this.receivedFds(state, ok, structFields(message)?.named.get('msg_hdr'));
        }
        return true;
      case 'unshare':
        // The process takes a copy of the table it shared (threads, CLONE_FILES): learned apart from now on.
        if (ok && hasFlag(args[0], 'CLONE_FILES', 0x400) && state.fds.users > 1) {
          const copy = this.copyFds(state.fds);
          this.releaseFds(state);
          state.fds = copy;
        }
        return true;
      case 'rt_sigqueueinfo': // kill() with a payload: target and signal in the same places
      case 'kill':
      case 'tkill':
      case 'tgkill': {
        const target = parseInt10(args[0]);
        const signal = args[call.name === 'tgkill' ? 2 : 1];
        if (target === null || signal === undefined || signal === '') return false;
        const syscall = call.name === 'tgkill' || call.name === 'tkill' ? call.name : 'kill';
        this.emit({ kind: 'kill', ...base, syscall, target, signal });
        return true;
      }
      case 'io_uring_setup':
      case 'pidfd_open':
        this.emit({ kind: 'blindspot', ...base, syscall: call.name, target: call.name === 'pidfd_open' ? parseInt10(args[0]) : null });
        return true;
      case 'ptrace': {
        const request = args[0];
        if (request === undefined || request === '') return false;
        this.emit({ kind: 'ptrace', ...base, request, target: parseInt10(args[1]) });
        return true;
      }
      case 'io_uring_enter':
      case 'io_uring_register':
      case 'pidfd_getfd':
      case 'userfaultfd':
      case 'perf_event_open':
        this.emit({ kind: 'forbidden', ...base, syscall: call.name, detail: null, target: null });
        return true;
      case 'process_vm_readv':
      case 'process_vm_writev':
        this.emit({ kind: 'forbidden', ...base, syscall: call.name, detail: null, target: parseInt10(args[0]) });
        return true;
      case 'bpf':
      case 'keyctl':
      case 'personality':
      case 'add_key':
      case 'request_key': {
        // A command or persona as strace names it (`BPF_PROG_LOAD`, `PER_LINUX32`, `0xffffffff`),
        // or the key type, a string the package chose.
        const first = args[0] ?? '';
        const detail = first.startsWith('"') ? (decodeString(first)?.value ?? first) : first.replace(/\s*\/\*.*\*\/$/, '');
        this.emit({ kind: 'forbidden', ...base, syscall: call.name, detail: detail === '' ? null : detail.slice(0, MAX_DETAIL_CHARS), target: null });
        return true;
      }
      case 'chdir':
        return this.chdir(state, ok, args[0]);
      case 'fchdir':
        if (ok) {
          // The new directory is whatever the fd refers to: `-y` names it, or the fd table.
          const dir = this.fdTokenPath(state, args[0] ?? '');
          state.chdired = true;
          state.cwdKnown = dir !== null && dir.startsWith('/');
          if (state.cwdKnown && dir !== null) setCwd(state.info, this.canonical(state, dir));
        }
        return true;
      case 'clone':
      case 'clone3':
      case 'fork':
      case 'vfork':
        this.spawned(state, time, call, ok, spawn);
        return true;
      default:
        return true; // a syscall we do not model
    }
  }

  private exec(
    state: ProcState,
    base: EventBase & Outcome,
    dirfd: string | null | undefined,
    rawPath: string | undefined,
    rawArgv: string | undefined,
    flags?: string,
  ): boolean {
    if (dirfd === undefined || rawPath === undefined || rawArgv === undefined) return false;
    const path = decodeString(rawPath);
    const argv = parseArgv(rawArgv);
    if (!path || !argv) return false;
    const resolved = this.resolve(state, dirfd, path.value);
    const info = state.info;
    const viaFd =
      dirfd !== null && (path.value === '' || /\bAT_EMPTY_PATH\b/.test(flags ?? '') || (!path.value.startsWith('/') && parseFd(dirfd).fd !== 'AT_FDCWD'));
    this.emit({ kind: 'exec', ...base, path: resolved.path, viaFd, argv: argv.values, cwd: info.cwd, truncated: path.truncated || argv.truncated });
    if (base.ok) {
      info.argv = argv.values;
      info.exe = resolved.path;
      state.execed = true;
      // exec leaves a table shared by CLONE_FILES (not a thread's: the others are gone) for a copy.
      if (state.fds.users > 1) {
        const copy = this.copyFds(state.fds);
        this.releaseFds(state);
        state.fds = copy;
      }
    }
    return true;
  }

  private open(
    state: ProcState,
    base: EventBase & Outcome,
    syscall: OpenSyscall,
    dirfd: string | null | undefined,
    rawPath: string | undefined,
    mode: OpenMode | null | undefined,
    kernelPath: string | null = null,
    inRoot = false,
  ): boolean {
    if (dirfd === undefined || rawPath === undefined || !mode) return false;
    const path = decodeString(rawPath);
    if (!path) return false;
    let resolved = this.resolvePath(state, dirfd, path.value, mode.follow, inRoot);
    // The fd the open returned is the file the kernel opened, whatever the path went through.
    if (kernelPath !== null && kernelPath !== resolved.path) resolved = { path: kernelPath, relative: false, via: resolved.via ?? resolved.path };
    if (PROBE_SYSCALLS.has(syscall) && !this.keepProbe(resolved.path)) return true;
    this.emit({ kind: 'open', ...base, syscall, ...resolved, write: mode.write, create: mode.create, truncated: path.truncated });
    return true;
  }

  private unlink(state: ProcState, base: EventBase & Outcome, dirfd: string | null | undefined, rawPath: string | undefined): boolean {
    if (dirfd === undefined || rawPath === undefined) return false;
    const path = decodeString(rawPath);
    if (!path) return false;
    const resolved = this.resolvePath(state, dirfd, path.value, false);
    this.emit({ kind: 'unlink', ...base, ...resolved, truncated: path.truncated });
    if (base.ok && !resolved.relative) this.symlinks.delete(resolved.path);
    return true;
  }

  private rename(
    state: ProcState,
    base: EventBase & Outcome,
    fromDir: string | null | undefined,
    rawFrom: string | undefined,
    toDir: string | null | undefined,
    rawTo: string | undefined,
    exchange: boolean,
  ): boolean {
    if (fromDir === undefined || toDir === undefined || rawFrom === undefined || rawTo === undefined) return false;
    const from = decodeString(rawFrom);
    const to = decodeString(rawTo);
    if (!from || !to) return false;
    const a = this.resolvePath(state, fromDir, from.value, false);
    const b = this.resolvePath(state, toDir, to.value, false);
    this.emit({
      kind: 'rename',
      ...base,
      from: a.path,
      to: b.path,
      ...(a.via === undefined ? {} : { fromVia: a.via }),
      ...(b.via === undefined ? {} : { toVia: b.via }),
      relative: a.relative || b.relative,
      truncated: from.truncated || to.truncated,
    });
    if (base.ok && !a.relative && !b.relative) this.movedLinks(a.path, b.path, exchange);
    return true;
  }

  private fsop(
    state: ProcState,
    base: EventBase & Outcome,
    syscall: FsOpEvent['syscall'],
    dirfd: string | null | undefined,
    rawPath: string | undefined,
    follow: boolean,
    fromDir: string | null | undefined,
    rawFrom: string | null | undefined,
    followFrom: boolean,
  ): boolean {
    if (dirfd === undefined || rawPath === undefined || fromDir === undefined || rawFrom === undefined) return false;
    const path = decodeString(rawPath);
    const from = rawFrom === null ? null : decodeString(rawFrom);
    if (!path || (rawFrom !== null && !from)) return false;
    const resolved = this.resolvePath(state, dirfd, path.value, follow);
    const source = from ? this.resolvePath(state, fromDir, from.value, followFrom) : null;
    this.emit({
      kind: 'fsop',
      ...base,
      syscall,
      path: resolved.path,
      ...(resolved.via === undefined ? {} : { via: resolved.via }),
      from: source?.path ?? null,
      relative: resolved.relative || (source?.relative ?? false),
      truncated: path.truncated || (from?.truncated ?? false),
    });
    // A hard link to a symlink is one more name for the same link.
    const content = source && !followFrom ? this.symlinks.get(source.path) : undefined;
    if (base.ok && content !== undefined && !resolved.relative) this.addLink(resolved.path, content);
    return true;
  }

  /** fchmod, ftruncate, ...: the file changed is the fd's, as `-y` printed it or the fd table knows it. */
  private fdop(state: ProcState, base: EventBase & Outcome, syscall: FdOpSyscall, token: string | undefined): boolean {
    if (token === undefined || token === '') return false;
    const path = this.fdTokenPath(state, token);
    this.emit({ kind: 'fsop', ...base, syscall, path: path ?? token, from: null, relative: path === null, truncated: false });
    return true;
  }

  private symlink(
    state: ProcState,
    base: EventBase & Outcome,
    rawTarget: string | undefined,
    dirfd: string | null | undefined,
    rawPath: string | undefined,
  ): boolean {
    if (rawTarget === undefined || dirfd === undefined || rawPath === undefined) return false;
    const target = decodeString(rawTarget);
    const path = decodeString(rawPath);
    if (!target || !path) return false;
    const resolved = this.resolvePath(state, dirfd, path.value, false);
    this.emit({ kind: 'symlink', ...base, target: target.value, ...resolved, truncated: target.truncated || path.truncated });
    if (base.ok && !resolved.relative && !target.truncated) this.addLink(resolved.path, target.value);
    return true;
  }

  private chdir(state: ProcState, ok: boolean, rawPath: string | undefined): boolean {
    const path = rawPath === undefined ? null : decodeString(rawPath);
    if (!path) return false;
    if (!ok) return true;
    const resolved = this.resolvePath(state, null, path.value, true);
    state.chdired = true;
    if (resolved.relative) return true; // relative to a directory we already lost track of
    state.cwdKnown = true;
    setCwd(state.info, resolved.path);
    return true;
  }

  /** `3</tmp/x>` as `-y` printed it: fd 3 names /tmp/x (or a pipe, a socket: not a path). */
  private learnFdToken(state: ProcState, token: string): void {
    const { fd, path } = parseFd(token);
    if (path !== null && /^\d{1,10}$/.test(fd)) this.learnFd(state, Number(fd), path);
  }

  /** The path an fd argument names: its `-y` decoration, else what the table knew; null when not a path. */
  private fdTokenPath(state: ProcState, token: string): string | null {
    const { fd, path } = parseFd(token);
    if (path !== null) return pathOfFd(path);
    return /^\d{1,10}$/.test(fd) ? this.fdPath(state, Number(fd)) : null;
  }

  /** The fds a recvmsg received with SCM_RIGHTS: `msg_control=[{…, cmsg_type=SCM_RIGHTS, cmsg_data=[5</x>]}]`. */
  private receivedFds(state: ProcState, ok: boolean, msghdr: string | undefined): void {
    const control = ok && msghdr !== undefined ? structFields(msghdr)?.named.get('msg_control') : undefined;
    if (control === undefined || !control.startsWith('[')) return;
    for (const cmsg of splitTop(control, 1, ']')?.parts ?? []) {
      const fields = structFields(cmsg);
      const data = fields?.named.get('cmsg_data');
      if (fields?.named.get('cmsg_type') !== 'SCM_RIGHTS' || data === undefined || !data.startsWith('[')) continue;
      for (const fd of splitTop(data, 1, ']')?.parts ?? []) this.learnFdToken(state, fd);
    }
  }

  /** A symlink made at `at` (resolved), within MAX_SYMLINKS. */
  private addLink(at: string, content: string): void {
    if (!this.symlinks.has(at) && this.symlinks.size >= MAX_SYMLINKS) {
      this.dropped++;
      return;
    }
    this.symlinks.set(at, content);
  }

  /** A rename moves the symlinks at and under `from` to `to` (replacing what was there), or swaps the two trees. */
  private movedLinks(from: string, to: string, exchange: boolean): void {
    if (this.symlinks.size === 0 || from === to) return;
    const under = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);
    const moving: Array<[string, string]> = [];
    const swapped: Array<[string, string]> = [];
    for (const [at, content] of this.symlinks) {
      if (under(at, from)) moving.push([at, content]);
      else if (under(at, to)) swapped.push([at, content]);
    }
    for (const [at] of [...moving, ...swapped]) this.symlinks.delete(at);
    for (const [at, content] of moving) this.symlinks.set(to + at.slice(from.length), content);
    if (exchange) for (const [at, content] of swapped) this.symlinks.set(from + at.slice(to.length), content);
  }

  /**
   * A path as the kernel resolves it, as far as the record tells: joined to its directory fd (as
   * `-y` or the fd table names it) or the cwd, then walked component by component through
   * `/proc/<pid>/{root,cwd,fd/N}`, `/dev/fd/N`, `/dev/std{in,out,err}` and every symlink made during
   * the run, `..` taken after each (at most MAX_LINKS_FOLLOWED links, as the kernel). The last
   * component is followed only where the call follows it (`follow`). `via` is the path as named,
   * lexically normalised, when the walk went elsewhere. Symlinks that were in the image are not
   * known; nothing the run made is behind them. Relative, as written, when nothing places it.
   */
  private resolvePath(
    state: ProcState,
    dirfd: string | null,
    path: string,
    follow: boolean,
    inRoot = false,
  ): { path: string; relative: boolean; via?: string } {
    let joined: string;
    const dir = dirfd === null ? null : parseFd(dirfd);
    const dirPath = dir === null ? null : dir.path !== null ? pathOfFd(dir.path) : /^\d{1,10}$/.test(dir.fd) ? this.fdPath(state, Number(dir.fd)) : null;
    if (inRoot && dirPath !== null) joined = `${dirPath}/${posix.normalize(`/${path}`)}`;
    else if (path.startsWith('/')) joined = path;
    else if (dirPath !== null) joined = path === '' ? dirPath : `${dirPath}/${path}`;
    else if (path === '' || (dir !== null && dir.fd !== 'AT_FDCWD') || !state.cwdKnown) return { path, relative: true };
    else joined = `${state.info.cwd}/${path}`;
    const lexical = lexicalPath(joined);
    if (this.symlinks.size === 0 && !MAY_ALIAS.test(joined)) return { path: lexical, relative: false };
    const walked = this.walk(state, joined, follow);
    return walked === lexical ? { path: lexical, relative: false } : { path: walked, relative: false, via: lexical };
  }

  private walk(state: ProcState, path: string, follow: boolean): string {
    // Components still to take, last first; those taken, and the path each one ends.
    const todo = path.split('/').reverse();
    const done: string[] = [];
    const ends: string[] = [];
    let links = 0;
    while (todo.length > 0) {
      const part = todo.pop()!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        done.pop();
        ends.pop();
        continue;
      }
      ends.push(`${ends.at(-1) ?? ''}/${part}`);
      done.push(part);
      // A trailing slash leaves an empty component: the kernel follows a link there too.
      if (links >= MAX_LINKS_FOLLOWED || (todo.length === 0 && !follow)) continue;
      const content = this.linkAt(state, done, ends.at(-1)!);
      if (content === null) continue;
      links++;
      if (content.startsWith('/')) {
        done.length = 0;
        ends.length = 0;
      } else {
        done.pop();
        ends.pop();
      }
      for (const next of content.split('/').reverse()) todo.push(next);
    }
    return ends.at(-1) ?? '/';
  }

  /** What the link at `parts` (a path's components; `at` the path they make) holds, when it is one the record can see through. */
  private linkAt(state: ProcState, parts: string[], at: string): string | null {
    const n = parts.length;
    if (parts[0] === 'proc' && n >= 3) {
      // /proc/<self|thread-self|pid>[/task/<tid>]/<root|cwd|fd/N>
      let owner = procOwner(parts[1]!, state, this.procs);
      let i = 2;
      if (parts[2] === 'task' && n >= 5 && /^\d{1,10}$/.test(parts[3]!)) {
        owner = this.procs.get(Number(parts[3])) ?? null;
        i = 4;
      }
      const what = parts[i];
      if (n === i + 1 && what === 'root') return '/';
      if (n === i + 1 && what === 'cwd') return owner?.cwdKnown ? owner.info.cwd : null;
      if (n === i + 2 && what === 'fd' && owner && /^\d{1,10}$/.test(parts[i + 1]!)) return this.fdPath(owner, Number(parts[i + 1]));
      return null;
    }
    if (parts[0] === 'dev' && (n === 2 || n === 3)) {
      // /dev/fd is /proc/self/fd, and /dev/stdin its 0: seen through only to a path, so a refused
      // open of /dev/stdout on a pipe stays the harmless device it names.
      const fd = n === 3 ? (parts[1] === 'fd' && /^\d{1,10}$/.test(parts[2]!) ? Number(parts[2]) : -1) : STD_STREAMS.indexOf(parts[1]!);
      if (fd >= 0) return this.fdPath(state, fd);
    }
    return this.symlinks.size === 0 ? null : (this.symlinks.get(at) ?? null);
  }

  private spawned(parent: ProcState, time: number, call: Call, ok: boolean, spawn: SpawnSnapshot | null): void {
    const child = ok && call.value !== null ? call.value : -1;
    const thread = call.args.some((arg) => /\bCLONE_THREAD\b/.test(arg));
    this.emit({ kind: 'spawn', pid: parent.info.pid, time, child, thread, ok, errno: call.errno });
    const snapshot = spawn ?? { cwd: parent.info.cwd, cwdKnown: parent.cwdKnown, claimedBy: null, sharesFiles: call.args.some(sharesFiles) };
    if (child <= 0) {
      // The guessed child of a failed call was someone else's.
      const claimed = snapshot.claimedBy === null ? undefined : this.procs.get(snapshot.claimedBy);
      if (claimed && !claimed.confirmed) claimed.info.ppid = null;
      return;
    }
    const known = this.procs.get(child);
    if (known && !known.confirmed) {
      this.adopt(known, parent, snapshot, time);
    } else if (!known || known.info.end !== null) {
      if (!known && this.procs.size >= MAX_PROCESSES) {
        this.dropped++;
        return;
      }
      const fds = this.inheritFds(parent, snapshot.sharesFiles);
      const fresh = this.newProc(child, parent.info.pid, time, parent.info.argv, parent.info.exe, snapshot.cwd, snapshot.cwdKnown, fds);
      fresh.confirmed = true;
    }
    // Else a live, confirmed process already has this pid: a record we cannot reconcile; keep it.
  }

  /** Confirm (or correct) the parent of a child seen before its spawn returned. */
  private adopt(child: ProcState, parent: ProcState, snapshot: SpawnSnapshot, time: number): void {
    const info = child.info;
    if (info.ppid !== parent.info.pid) this.reinherit(child, info.ppid === null ? null : (this.procs.get(info.ppid) ?? null), parent, snapshot.sharesFiles);
    info.ppid = parent.info.pid;
    info.start = Math.min(info.start, time);
    child.confirmed = true;
    if (!child.execed) {
      info.argv = parent.info.argv;
      info.exe = parent.info.exe;
    }
    if (!child.chdired) {
      info.cwd = snapshot.cwd;
      info.cwds = [snapshot.cwd];
      child.cwdKnown = snapshot.cwdKnown;
    } else if (info.cwds[0] !== snapshot.cwd) {
      info.cwds = [snapshot.cwd, ...info.cwds].slice(0, MAX_CWD_HISTORY);
    }
  }

  /**
   * A child first seen with a wrongly guessed parent (two spawns in flight) takes its fd table from
   * the true one; what it learned since, its entries that differ from the guessed parent's, is kept.
   */
  private reinherit(child: ProcState, guessed: ProcState | null, parent: ProcState, shared: boolean): void {
    const learned = [...child.fds.paths].filter(([fd, name]) => guessed?.fds.paths.get(fd) !== name);
    this.releaseFds(child);
    child.fds = this.inheritFds(parent, shared);
    if (!shared) for (const [fd, name] of learned) this.learnFd(child, fd, name);
  }

  /**
   * Absolute and normalised when the record allows; else as written, marked relative. A directory
   * fd is resolved through the path `-y` printed for it (`openat(3</etc>, "shadow")` is
   * `/etc/shadow`; an empty path with AT_EMPTY_PATH is the fd itself).
   */
  private resolve(state: ProcState, dirfd: string | null, path: string): { path: string; relative: boolean } {
    if (path.startsWith('/')) return { path: this.canonical(state, path), relative: false };
    const fd = dirfd === null ? null : parseFd(dirfd);
    if (fd?.path?.startsWith('/')) {
      return { path: this.canonical(state, path === '' ? fd.path : `${fd.path}/${path}`), relative: false };
    }
    if (path === '' || (fd !== null && fd.fd !== 'AT_FDCWD') || !state.cwdKnown) return { path, relative: true };
    return { path: this.canonical(state, `${state.info.cwd}/${path}`), relative: false };
  }

  /**
   * Lexical normalisation, after seeing through the /proc links that alias a directory everywhere
   * in the container: `/proc/<self|pid>/root` is `/`, `/proc/<self|pid>/cwd` that process's cwd.
   * Other links (a package's own symlinks) stay unresolved; its symlink events show them.
   */
  private canonical(state: ProcState, path: string): string {
    let p = path;
    for (let i = 0; i < 8; i++) {
      const alias = PROC_ALIAS.exec(p);
      if (!alias) break;
      const rest = p.slice(alias[0].length);
      if (alias[2] === 'root') {
        p = `/${rest}`;
        continue;
      }
      const owner = alias[1] === 'self' || alias[1] === 'thread-self' ? state : this.procs.get(Number(alias[1]));
      if (!owner?.cwdKnown) break;
      p = `${owner.info.cwd}/${rest}`;
    }
    return NEEDS_NORMALIZE.test(p) ? posix.normalize(p) : p;
  }
}

/** `//`, `/./` or `/../` (or a trailing `/.`, `/..`): posix.normalize has work to do. */
const NEEDS_NORMALIZE = /\/\/|\/\.\.?(?:\/|$)/;
/** A path that may go through a /proc or /dev link (`..` can lead there): walked, not only normalised. */
const MAY_ALIAS = /\/(?:proc|dev)(?:\/|$)/;
const STD_STREAMS = ['stdin', 'stdout', 'stderr'];

/** Normalised, without a trailing slash: the name the kernel gives the same file. */
function lexicalPath(path: string): string {
  const p = NEEDS_NORMALIZE.test(path) ? posix.normalize(path) : path;
  return p.length > 1 && p.endsWith('/') ? p.replace(/\/+$/, '') || '/' : p;
}

/** The process `/proc/<name>` is, seen from `state`. */
function procOwner(name: string, state: ProcState, procs: ReadonlyMap<number, ProcState>): ProcState | null {
  if (name === 'self' || name === 'thread-self') return state;
  return /^\d{1,10}$/.test(name) ? (procs.get(Number(name)) ?? null) : null;
}

/** The path in an fd's `-y` name (`/tmp/x`, a deleted file's `/tmp/x (deleted)`); null for a pipe, a socket, an anon inode. */
function pathOfFd(name: string): string | null {
  if (!name.startsWith('/')) return null;
  return name.endsWith(' (deleted)') ? name.slice(0, -' (deleted)'.length) : name;
}

/** A clone whose child shares the caller's fd table (CLONE_FILES; every thread). */
function sharesFiles(text: string): boolean {
  return /\bCLONE_(?:FILES|THREAD)\b/.test(text);
}

/** Whether a flags argument (`A|B|0x10`) holds the flag, by name or by its bit in a number strace left unnamed. */
function hasFlag(token: string | undefined, name: string, bit: number): boolean {
  if (token === undefined) return false;
  for (const part of token.split('|')) {
    const flag = part.trim();
    if (flag === name) return true;
    if (/^(0x[0-9a-fA-F]+|\d+)$/.test(flag) && Number(flag) & bit) return true;
  }
  return false;
}

/** AT_SYMLINK_NOFOLLOW: the call acts on a symlink at the end of the path, not on what it points at. */
function nofollow(token: string | undefined): boolean {
  return hasFlag(token, 'AT_SYMLINK_NOFOLLOW', 0x100);
}
const PROC_ALIAS = /^\/+proc\/+(self|thread-self|\d{1,10})\/+(root|cwd)(?=\/|$)/;

function setCwd(info: ProcessInfo, cwd: string): void {
  info.cwd = cwd;
  if (info.cwds.length < MAX_CWD_HISTORY && info.cwds.at(-1) !== cwd) info.cwds.push(cwd);
}

function parseInt10(token: string | undefined): number | null {
  if (token === undefined || !/^-?\d{1,10}$/.test(token)) return null;
  return Number(token);
}

const RESULT = /^\s*=\s*(-?\d{1,20}|0x[0-9a-fA-F]{1,16}|\?)/;
const ERRNO = /^\s+(E[A-Z0-9]+)\b/;

/** `name(args) = result [ERRNO (text)]` into its parts; null when it has another shape. */
function parseCall(text: string): Call | null {
  const head = /^([a-z_][a-z0-9_]*)\(/.exec(text);
  if (!head) return null;
  const split = splitTop(text, head[0].length, ')');
  if (!split) return null;
  const tail = text.slice(split.end);
  const result = RESULT.exec(tail);
  if (!result) return null;
  const raw = result[1] ?? '?';
  const value = raw === '?' ? null : raw.startsWith('0x') ? Number.parseInt(raw, 16) : Number(raw);
  const args = split.parts.length === 1 && split.parts[0] === '' ? [] : split.parts;
  // A returned fd, decorated by `-y`: `= 3</tmp/x>`.
  let rest = result[0].length;
  let fdPath: string | null = null;
  if (tail.charCodeAt(rest) === LESS) {
    const end = skipDecoration(tail, rest);
    if (end < 0) return null;
    fdPath = unescapeC(tail.slice(rest + 1, end - 1));
    rest = end;
  }
  const errno = ERRNO.exec(tail.slice(rest))?.[1] ?? null;
  return { name: head[1] ?? '', args, value, errno, fdPath };
}

const [QUOTE, SLASH, STAR, COMMA, BACKSLASH, LESS, GREATER] = [0x22, 0x2f, 0x2a, 0x2c, 0x5c, 0x3c, 0x3e];
const [OPEN_PAREN, CLOSE_PAREN, OPEN_BRACKET, CLOSE_BRACKET, OPEN_BRACE, CLOSE_BRACE] = [0x28, 0x29, 0x5b, 0x5d, 0x7b, 0x7d];

/**
 * Split `text` from `from` at top-level commas until the bracket `close` (or the end, when `close`
 * is null). Quoted strings (with their escapes) and `/* comments *\/` are skipped whole, so nothing
 * a package wrote can close a bracket or add an argument. Null when unbalanced.
 */
function splitTop(text: string, from: number, close: string | null): { parts: string[]; end: number } | null {
  const parts: string[] = [];
  const stack: number[] = [];
  let start = from;
  let i = from;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    switch (c) {
      case QUOTE:
        i = skipString(text, i);
        if (i < 0) return null;
        continue;
      case LESS:
        // `-y` decoration of an fd (`3</dir>`, `AT_FDCWD</cwd>`, `5<socket:[12]>`): the path inside
        // is the package's, with only `<`, `>`, `"`, `\` and unprintables escaped, so its commas and
        // brackets must not count.
        if (i > from && isFdTail(text.charCodeAt(i - 1))) {
          i = skipDecoration(text, i);
          if (i < 0) return null;
          continue;
        }
        break;
      case SLASH:
        if (text.charCodeAt(i + 1) === STAR) {
          const end = text.indexOf('*/', i + 2);
          if (end < 0) return null;
          i = end + 2;
          continue;
        }
        break;
      case OPEN_PAREN:
        stack.push(CLOSE_PAREN);
        break;
      case OPEN_BRACKET:
        stack.push(CLOSE_BRACKET);
        break;
      case OPEN_BRACE:
        stack.push(CLOSE_BRACE);
        break;
      case CLOSE_PAREN:
      case CLOSE_BRACKET:
      case CLOSE_BRACE:
        if (stack.length === 0) {
          if (close === null || c !== close.charCodeAt(0)) return null;
          parts.push(text.slice(start, i).trim());
          return { parts, end: i + 1 };
        }
        if (stack.pop() !== c) return null;
        break;
      case COMMA:
        if (stack.length === 0) {
          parts.push(text.slice(start, i).trim());
          start = i + 1;
        }
        break;
    }
    i++;
  }
  if (close !== null || stack.length > 0) return null;
  parts.push(text.slice(start).trim());
  return { parts, end: text.length };
}

/** A digit (`3<…>`) or the D of `AT_FDCWD<…>`: what precedes an fd decoration. */
function isFdTail(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || code === 0x44;
}

/** Index just past the `>` closing the decoration opening at `i`, or -1 when unterminated. */
function skipDecoration(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === BACKSLASH) j++;
    else if (c === GREATER) return j + 1;
  }
  return -1;
}

/**
 * An fd argument as `-y` prints it: `3</home/sandbox>`, `AT_FDCWD</tmp>`, `7<socket:[123]>`, or
 * bare (`3`, `AT_FDCWD`) when strace could not read the link. `path` is the decoded decoration.
 */
export function parseFd(token: string): { fd: string; path: string | null } {
  const open = token.indexOf('<');
  if (open < 0 || !token.endsWith('>')) return { fd: token, path: null };
  return { fd: token.slice(0, open), path: unescapeC(token.slice(open + 1, -1)) };
}

/**
 * The head of an oversized call, `name(` at `from`, cut back to its last complete element and
 * closed: `execve("/bin/sh", ["sh", "aa", "b` becomes `execve("/bin/sh", ["sh", "aa", ...]`, the
 * call's own paren left open. Null when nothing complete is left.
 */
function closeCut(text: string, from: number): string | null {
  const stack: number[] = [];
  let cut = -1;
  let closers = '';
  const mark = (at: number) => {
    cut = at;
    closers = stack
      .map((c) => String.fromCharCode(c))
      .reverse()
      .join('');
  };
  mark(from);
  let i = from;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      i = skipString(text, i);
      if (i < 0) break;
      continue;
    }
    if (c === LESS && i > from && isFdTail(text.charCodeAt(i - 1))) {
      i = skipDecoration(text, i);
      if (i < 0) break;
      continue;
    }
    if (c === SLASH && text.charCodeAt(i + 1) === STAR) {
      const end = text.indexOf('*/', i + 2);
      if (end < 0) break;
      i = end + 2;
      continue;
    }
    if (c === OPEN_PAREN) stack.push(CLOSE_PAREN);
    else if (c === OPEN_BRACKET) stack.push(CLOSE_BRACKET);
    else if (c === OPEN_BRACE) stack.push(CLOSE_BRACE);
    else if (c === CLOSE_PAREN || c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      if (stack.pop() !== c) return null;
    }
    i++;
    if (c === COMMA || c === OPEN_PAREN || c === OPEN_BRACKET || c === OPEN_BRACE) mark(i);
  }
  if (cut <= from) return null;
  return `${text.slice(0, cut)}${text.charCodeAt(cut - 1) === COMMA ? ' ' : ''}...${closers}`;
}

/** Index just past the closing quote of the string opening at `i`, or -1 when unterminated. */
function skipString(text: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const quote = text.indexOf('"', j);
    if (quote < 0) return -1;
    // The quote is escaped when an odd number of backslashes precede it.
    let slashes = 0;
    while (quote - slashes - 1 >= j && text.charCodeAt(quote - slashes - 1) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return quote + 1;
    j = quote + 1;
  }
}

/** A whole token that is one quoted string, possibly followed by strace's `...` truncation mark. */
function decodeString(token: string): { value: string; truncated: boolean } | null {
  if (!token.startsWith('"')) return null;
  const end = skipString(token, 0);
  if (end < 0) return null;
  const tail = token.slice(end);
  if (tail !== '' && tail !== '...') return null;
  return { value: unescapeC(token.slice(1, end - 1)), truncated: tail === '...' };
}

/**
 * A quoted buffer (`"GET / …"`, maybe `"…"...` when cut at `-s`) as bytes, one latin-1 character
 * each; null when it is not a string (an address strace could not read).
 */
function decodeBytes(token: string): { value: string; truncated: boolean } | null {
  if (!token.startsWith('"')) return null;
  const end = skipString(token, 0);
  if (end < 0) return null;
  const tail = token.slice(end);
  if (tail !== '' && tail !== '...') return null;
  const body = token.slice(1, end - 1);
  const value = /[\\\u0080-\uffff]/.test(body) ? Buffer.from(unescapeToBytes(body)).toString('latin1') : body;
  return { value, truncated: tail === '...' };
}

/** `[{iov_base="…", iov_len=5}, …]` into its buffers; `truncated` when strace left some out (`...`). */
function iovecs(token: string | undefined): { buffers: Array<{ value: string; truncated: boolean }>; truncated: boolean } {
  const none = { buffers: [], truncated: false };
  if (token === undefined || !token.startsWith('[')) return none;
  const split = splitTop(token, 1, ']');
  if (!split) return none;
  const buffers: Array<{ value: string; truncated: boolean }> = [];
  let truncated = false;
  for (const part of split.parts) {
    if (part === '...') {
      truncated = true;
      continue;
    }
    const base = structFields(part)?.named.get('iov_base');
    const bytes = base === undefined ? null : decodeBytes(base);
    if (bytes) buffers.push(bytes);
  }
  return { buffers, truncated };
}

const SIMPLE_ESCAPES: Record<string, number> = { n: 10, t: 9, r: 13, v: 11, f: 12, a: 7, b: 8, e: 27, '\\': 92, '"': 34, "'": 39, '?': 63 };

/** Undo strace's C escaping to bytes, then read them as UTF-8 (invalid sequences become U+FFFD). */
function unescapeC(body: string): string {
  if (!/[\\\u0080-\uffff]/.test(body)) return body;
  return Buffer.from(unescapeToBytes(body)).toString('utf8');
}

/** Undo strace's C escaping to bytes (a character strace left unescaped as its UTF-8 bytes). */
function unescapeToBytes(body: string): number[] {
  const bytes: number[] = [];
  const pushText = (text: string) => {
    for (const b of Buffer.from(text, 'utf8')) bytes.push(b);
  };
  let i = 0;
  while (i < body.length) {
    const c = body.charAt(i);
    if (c !== '\\') {
      const code = body.charCodeAt(i);
      if (code < 0x80) {
        bytes.push(code);
        i++;
      } else {
        const cp = body.codePointAt(i) ?? code;
        const width = cp > 0xffff ? 2 : 1;
        pushText(body.slice(i, i + width));
        i += width;
      }
      continue;
    }
    const next = body.charAt(i + 1);
    const simple = SIMPLE_ESCAPES[next];
    if (simple !== undefined) {
      bytes.push(simple);
      i += 2;
    } else if (next === 'x' && /^[0-9a-fA-F]/.test(body.charAt(i + 2))) {
      const hex = /^[0-9a-fA-F]{1,2}/.exec(body.slice(i + 2, i + 4))?.[0] ?? '0';
      bytes.push(Number.parseInt(hex, 16));
      i += 2 + hex.length;
    } else if (next >= '0' && next <= '7') {
      const oct = /^[0-7]{1,3}/.exec(body.slice(i + 1, i + 4))?.[0] ?? '0';
      bytes.push(Number.parseInt(oct, 8) & 0xff);
      i += 1 + oct.length;
    } else if (next === '') {
      bytes.push(92);
      i++;
    } else {
      // Not an escape strace writes: keep the character.
      const cp = body.codePointAt(i + 1) ?? 0;
      const width = cp > 0xffff ? 2 : 1;
      pushText(body.slice(i + 1, i + 1 + width));
      i += 1 + width;
    }
  }
  return bytes;
}

/** `["a", "b", ...]` into strings, capped at MAX_ARGV_ENTRIES of MAX_ARG_CHARS. */
function parseArgv(token: string): { values: string[]; truncated: boolean } | null {
  if (token === 'NULL') return { values: [], truncated: false };
  if (/^0x[0-9a-f]+$/.test(token)) return { values: [], truncated: true }; // unreadable memory
  if (!token.startsWith('[')) return null;
  const split = splitTop(token, 1, ']');
  if (!split || split.end !== token.length) return null;
  const values: string[] = [];
  let truncated = false;
  for (const part of split.parts) {
    if (part === '' && split.parts.length === 1) break;
    if (part === '...') {
      truncated = true;
      continue;
    }
    const decoded = decodeString(part);
    if (!decoded) return null;
    if (values.length >= MAX_ARGV_ENTRIES) {
      truncated = true;
      break;
    }
    truncated ||= decoded.truncated || decoded.value.length > MAX_ARG_CHARS;
    values.push(decoded.value.slice(0, MAX_ARG_CHARS));
  }
  return { values, truncated };
}

interface StructFields {
  named: Map<string, string>;
  unnamed: string[];
}

/** `{key=value, call(...), ...}` into its top-level fields. */
function structFields(token: string): StructFields | null {
  if (!token.startsWith('{')) return null;
  const split = splitTop(token, 1, '}');
  if (!split || split.end !== token.length) return null;
  const named = new Map<string, string>();
  const unnamed: string[] = [];
  for (const part of split.parts) {
    const kv = /^([a-z_][a-z0-9_]*)=/.exec(part);
    if (kv?.[1] !== undefined && !named.has(kv[1])) named.set(kv[1], part.slice(kv[0].length));
    else unnamed.push(part);
  }
  return { named, unnamed };
}

type Address = Pick<ConnectEvent, 'family' | 'address' | 'port'>;

function parseSockaddr(token: string): Address | null {
  const fields = structFields(token);
  if (!fields) {
    // An address strace could not read (a bad pointer): still an attempt.
    return token === '' ? null : { family: 'other', address: token.slice(0, 64), port: null };
  }
  const family = fields.named.get('sa_family') ?? '';
  const port = (key: string) => {
    const m = /^htons\((\d{1,5})\)$/.exec(fields.named.get(key) ?? '');
    return m ? Number(m[1]) : null;
  };
  if (family === 'AF_INET') {
    const addr = callString(fields.named.get('sin_addr'), 'inet_addr', 0);
    return addr === null ? null : { family: 'inet', address: addr, port: port('sin_port') };
  }
  if (family === 'AF_INET6') {
    const pton = fields.named.get('sin6_addr') ?? fields.unnamed.find((part) => part.startsWith('inet_pton('));
    const addr = callString(pton, 'inet_pton', 1);
    return addr === null ? null : { family: 'inet6', address: addr, port: port('sin6_port') };
  }
  if (family === 'AF_UNIX' || family === 'AF_LOCAL') {
    const raw = fields.named.get('sun_path');
    if (raw === undefined) return { family: 'unix', address: '', port: null }; // unnamed socket
    const abstract = raw.startsWith('@');
    const path = decodeString(abstract ? raw.slice(1) : raw);
    return path === null ? null : { family: 'unix', address: (abstract ? '@' : '') + path.value, port: null };
  }
  return { family: 'other', address: family === '' ? token.slice(0, 64) : family, port: null };
}

/** The string argument at `index` of `fn(...)`, as in `inet_addr("1.2.3.4")`. */
function callString(token: string | undefined, fn: string, index: number): string | null {
  if (token === undefined || !token.startsWith(`${fn}(`)) return null;
  const split = splitTop(token, fn.length + 1, ')');
  if (!split || split.end !== token.length) return null;
  const arg = split.parts[index];
  return arg === undefined ? null : (decodeString(arg)?.value ?? null);
}

// x86_64 values (asm-generic): what strace prints as hex when it has no name for a bit.
const O_ACCMODE = 0o3;
const O_CREAT = 0o100;
const O_TRUNC = 0o1000;
const O_APPEND = 0o2000;
const O_TMPFILE_BIT = 0o20000000;
const O_EXCL = 0o200;
const O_NOFOLLOW = 0o400000;

/**
 * What an open may do, and whether a symlink (or /proc fd link) at the end of its path is followed:
 * not with O_NOFOLLOW, nor with O_CREAT|O_EXCL (the kernel then fails on the link).
 */
type OpenMode = { write: boolean; create: boolean; follow: boolean };
/** A call that only looks: following a last symlink (stat, access), or not (lstat, readlink). */
const LOOK: OpenMode = { write: false, create: false, follow: true };
const LOOK_AT_LINK: OpenMode = { write: false, create: false, follow: false };
const flagCache = new Map<string, OpenMode>();

/** `O_WRONLY|O_CREAT|0x...` into whether it may write and whether it may create. */
function openFlags(token: string): OpenMode | null {
  if (token === '') return null;
  const cached = flagCache.get(token);
  if (cached) return cached;
  const mode = decodeOpenFlags(token);
  if (flagCache.size < 1024) flagCache.set(token, mode);
  return mode;
}

function decodeOpenFlags(token: string): OpenMode {
  let write = false;
  let create = false;
  let creat = false;
  let excl = false;
  let noFollow = false;
  for (const flag of token.split('|')) {
    const name = flag.trim();
    if (name === 'O_WRONLY' || name === 'O_RDWR' || name === 'O_TRUNC' || name === 'O_APPEND') write = true;
    else if (name === 'O_CREAT') write = create = creat = true;
    else if (name === 'O_TMPFILE') write = create = true;
    else if (name === 'O_EXCL') excl = true;
    else if (name === 'O_NOFOLLOW') noFollow = true;
    else if (/^(0x[0-9a-fA-F]+|0[0-7]*|[1-9]\d*)$/.test(name)) {
      const bits = name.startsWith('0x') ? Number.parseInt(name, 16) : name.startsWith('0') ? Number.parseInt(name, 8) : Number(name);
      if (bits & (O_ACCMODE | O_TRUNC | O_APPEND)) write = true;
      if (bits & (O_CREAT | O_TMPFILE_BIT)) write = create = true;
      if (bits & O_CREAT) creat = true;
      if (bits & O_EXCL) excl = true;
      if (bits & O_NOFOLLOW) noFollow = true;
    }
  }
  return { write, create, follow: !noFollow && !(creat && excl) };
}
