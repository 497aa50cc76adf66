/**
 * Filesystem findings: what the install changed outside its target (from the container's diff),
 * and which credential paths it tried to open (from the tracer, failed attempts included).
 */
import path from 'node:path';
import { finding, type Finding } from '../core/finding.js';
import { argvText, type PackageOf } from './attribution.js';
import type { FsChange } from '../core/outcome.js';
import { PROBE_SYSCALLS, type Trace, type TraceEvent } from './trace.js';

export interface FsLayout {
  /** The install target (the venv). */
  target: string;
  home: string;
  /** Our own state dir (tracer output). */
  state: string;
  /**
   * What we put in the container before it starts (input files, canaries): the diff shows them as
   * added. One ending in `/` is a directory of ours, all of it.
   */
  mounts: string[];
  /** Paths the policy allows writes under (`writes.allow`). */
  allowed: string[];
}

/** Where an install may write: the target, pip's own temp dirs, our state dir and mount points. */
export function isExpectedChange(change: FsChange, layout: FsLayout): boolean {
  const p = change.path;
  const under = (dir: string) => p === dir || p.startsWith(`${dir}/`);
  if (under(layout.target) || under(layout.state) || layout.allowed.some(under)) return true;
  if (/^\/tmp\/pip-[^/]+(\/|$)/.test(p)) return true;
  // A bind mount shows up as added, and so does the directory made to hold it.
  if (layout.mounts.some((m) => m === p || (m.endsWith('/') && (p.startsWith(m) || `${p}/` === m)))) return true;
  return change.kind === 'added' && layout.mounts.some((m) => m.startsWith(`${p}/`) && path.posix.dirname(m) === p);
}

/** Only the leaves: a modified directory whose children are listed says nothing of its own. */
function leaves(changes: FsChange[]): FsChange[] {
  const paths = changes.map((c) => c.path);
  return changes.filter((c) => !(c.kind === 'modified' && paths.some((p) => p.startsWith(`${c.path}/`))));
}

type OpenEvent = Extract<TraceEvent, { kind: 'open' }>;

/** Credential paths, relative to a home directory, or absolute. Any attempt counts, even a failed one. */
const SENSITIVE_IN_HOME = [
  /^\.ssh(\/|$)/,
  /^\.aws(\/|$)/,
  /^\.netrc$/,
  /^\.pypirc$/,
  /^\.config\/gh(\/|$)/,
  /^\.docker\/config\.json$/,
  /^\.git-credentials$/,
  /^\.gnupg(\/|$)/,
  /^\.kube\/config$/,
  /^\.config\/gcloud(\/|$)/,
  /^\.azure(\/|$)/,
  /^\.npmrc$/,
  /^\.mozilla(\/|$)/,
  /^\.config\/(google-chrome|chromium|BraveSoftware|microsoft-edge)(\/|$)/,
  /^\.bash_history$/,
];
const SENSITIVE_ABSOLUTE = [/^\/etc\/(shadow|gshadow|sudoers)(\/|$|-)/, /^\/proc\/(?:[0-9]+|self|thread-self)(?:\/task\/[0-9]+)?\/environ$/];

const SENSITIVE_NAMES = /(?:^|\/)(?:shadow|gshadow|sudoers|environ|id_rsa|id_ed25519|id_ecdsa|credentials)$/;

/** Calls that only look at a path (exists? what is it? where does it point?). */
const PROBES = new Set<string>([...PROBE_SYSCALLS, 'access', 'faccessat', 'faccessat2']);

/** The homes whose credential files are watched: the sandbox user's, and root's. */
export function credentialHomes(home: string): string[] {
  return [home, '/root'];
}

export function isSensitivePath(file: string, homes: string[]): boolean {
  if (SENSITIVE_ABSOLUTE.some((re) => re.test(file))) return true;
  // A path the tracer could not make absolute (a directory fd it could not name): judged by what
  // it would be in a home, or by the credential file names it ends with.
  if (!file.startsWith('/')) return SENSITIVE_IN_HOME.some((re) => re.test(file)) || SENSITIVE_NAMES.test(file);
  return homes.some((home) => file.startsWith(`${home}/`) && SENSITIVE_IN_HOME.some((re) => re.test(file.slice(home.length + 1))));
}

/** Which process last wrote, created, linked, renamed or removed each path, as the tracer saw. */
export function writersOf(trace: Trace): Map<string, number> {
  const writers = new Map<string, number>();
  for (const event of trace.events) {
    if (event.kind === 'open' && event.write && event.ok) writers.set(event.path, event.pid);
    else if (event.kind === 'unlink' || event.kind === 'symlink' || event.kind === 'fsop') writers.set(event.path, event.pid);
    else if (event.kind === 'rename') {
      writers.set(event.from, event.pid);
      writers.set(event.to, event.pid);
    }
  }
  return writers;
}

export interface FsContext {
  changes: FsChange[];
  trace: Trace;
  layout: FsLayout;
  packageOf: PackageOf;
  argvOf: (pid: number) => string[];
  /** pip's own processes: their probes (requests checks for ~/.netrc) are not findings; their opens are. */
  pipPids?: Set<number>;
}

export function filesystemFindings(ctx: FsContext): { findings: Finding[]; events: Array<Record<string, unknown>> } {
  const findings: Finding[] = [];
  const writers = writersOf(ctx.trace);
  const events: Array<Record<string, unknown>> = ctx.changes.map((c) => ({ ...c, expected: isExpectedChange(c, ctx.layout) }));

  for (const change of leaves(ctx.changes)) {
    if (isExpectedChange(change, ctx.layout)) continue;
    const pid = writers.get(change.path) ?? null;
    const pkg = pid === null ? null : ctx.packageOf(pid);
    findings.push(
      finding(
        'fs.write-outside-target',
        'high',
        `${change.kind} ${change.path} outside the install target`,
        { path: change.path, kind: change.kind, pid, argv: pid === null ? null : argvText(ctx.argvOf(pid)) },
        pkg,
      ),
    );
  }

  const homes = credentialHomes(ctx.layout.home);
  const seen = new Set<string>();
  for (const event of ctx.trace.events) {
    if (event.kind !== 'open' || !isSensitivePath(event.path, homes)) continue;
    const open = event as OpenEvent;
    // pip's own processes look for credentials as a client does: requests probes and, when there
    // is one (there is: a canary), reads ~/.netrc for index auth. pip's, not a package's, doing.
    if (ctx.pipPids?.has(open.pid) && (PROBES.has(open.syscall) || (!open.write && open.path === `${ctx.layout.home}/.netrc`))) continue;
    const pkg = ctx.packageOf(open.pid, open.time);
    const key = `${pkg}|${open.path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    findings.push(
      finding(
        'fs.sensitive-read',
        'high',
        `${PROBES.has(open.syscall) ? `probed (${open.syscall})` : 'tried to open'} ${open.path}${open.ok ? '' : ` (${open.errno ?? 'failed'})`}`,
        {
          path: open.path,
          ...viaOf(open.via),
          syscall: open.syscall,
          ok: open.ok,
          errno: open.errno,
          write: open.write,
          pid: open.pid,
          argv: argvText(ctx.argvOf(open.pid)),
        },
        pkg,
      ),
    );
  }
  return { findings, events };
}

/**
 * The errnos of a refusal: the kernel (permissions, a read-only mount, a capability missing) stopped
 * a call that was made. The attempt is the evidence; ENOENT or EEXIST are not refusals.
 */
const REFUSED = new Set(['EACCES', 'EPERM', 'EROFS']);

/** Whether the kernel refused this call (a failed attempt that counts as one made). */
export function wasRefused(event: TraceEvent): boolean {
  return 'ok' in event && !event.ok && event.errno !== null && REFUSED.has(event.errno);
}

/**
 * Python's own bytecode cache: importing a module from a directory the process cannot write makes
 * the import system try `mkdir <dir>/__pycache__` and an exclusive create of
 * `<dir>/__pycache__/<name>.cpython-311[.opt-N].pyc.<id>`, and shrug off the refusal. Every build
 * that imports a stdlib module without a cached .pyc does this.
 */
const BYTECODE_CACHE = /\/__pycache__(?:\/[^/]+\.cpython-3\d+(?:\.opt-\d)?\.pyc\.\d+)?$/;

/**
 * A bytecode file as the import system writes it: `<name>.cpython-311[.opt-N].pyc`, first as
 * `….pyc.<id>` then renamed. investigate's import processes write theirs under a pycache prefix of
 * their own (images/importer.py); that is the interpreter caching, not the package acting.
 */
const BYTECODE_FILE = /\/[^/]+\.cpython-3\d+(?:\.opt-\d)?\.pyc(?:\.\d+)?$/;

/** Whether a written path is a bytecode cache file (the timeline leaves these out: they are the interpreter's). */
export function isBytecodeFile(file: string): boolean {
  return BYTECODE_FILE.test(file);
}

/** Devices any process may open for writing (a refused /dev/tty says nothing of a package). */
const HARMLESS_DEVICES = /^\/dev\/(?:null|zero|full|tty|console|ptmx|pts\/\d+|stdout|stderr)$/;

/**
 * The path a call named, as evidence beside the path the kernel resolved (`/proc/self/fd/3/x.pth`
 * beside `/opt/target/…/x.pth`); nothing when the two are the same.
 */
export function viaOf(via: string | undefined): { via?: string } {
  return via === undefined ? {} : { via };
}

/** A path a trace event changes (or tried to), with the syscall that did it and the path as named. */
export interface ChangedPath {
  path: string;
  syscall: string;
  via?: string;
}

/** Every path a trace event changes (or tried to), with the syscall that did it. */
export function changedPaths(event: TraceEvent): ChangedPath[] {
  switch (event.kind) {
    case 'open':
      return event.write ? [{ path: event.path, syscall: event.syscall, ...viaOf(event.via) }] : [];
    case 'unlink':
      return [{ path: event.path, syscall: 'unlink', ...viaOf(event.via) }];
    case 'symlink':
      return [{ path: event.path, syscall: 'symlink', ...viaOf(event.via) }];
    case 'fsop':
      return [{ path: event.path, syscall: event.syscall, ...viaOf(event.via) }];
    case 'rename':
      return [
        { path: event.from, syscall: 'rename', ...viaOf(event.fromVia) },
        { path: event.to, syscall: 'rename', ...viaOf(event.toVia) },
      ];
    default:
      return [];
  }
}

/**
 * One finding per key, at most `max` of them; the rest are counted on the last one kept
 * (`evidence.more`), so a package that tries ten thousand paths cannot flood the report.
 */
export class CappedFindings {
  private readonly seen = new Set<string>();
  private readonly kept: Finding[] = [];
  private more = 0;
  constructor(private readonly max = 200) {}
  add(key: string, make: () => Finding): void {
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.kept.length >= this.max) this.more += 1;
    else this.kept.push(make());
  }
  get findings(): Finding[] {
    const last = this.kept.at(-1);
    if (this.more > 0 && last) last.evidence.more = this.more;
    return this.kept;
  }
}

export interface RefusedContext {
  trace: Trace;
  layout: FsLayout;
  /** pip's own processes: what they try is pip's doing, not a package's. */
  pipPids: Set<number>;
  packageOf: PackageOf;
  argvOf: (pid: number) => string[];
  /** Findings kept; the rest are counted in the last one. Default 200. */
  maxFindings?: number;
}

/**
 * fs.write-outside-target for what the kernel refused: creating, opening for writing, linking,
 * renaming, removing, chmod, chown or utime of a path outside where the install may write, failing
 * with EACCES, EPERM or EROFS. The container's diff shows only what succeeded; a package that tried
 * to plant a shell rc file or a startup hook in a root-owned site dir and was stopped is the same
 * package on a machine without the sandbox. The install target is fs.target-tamper's (it counts
 * refused attempts there already). One finding per package and path.
 */
export function refusedWriteFindings(ctx: RefusedContext): Finding[] {
  const found = new CappedFindings(ctx.maxFindings);
  const inTarget = (p: string) => p === ctx.layout.target || p.startsWith(`${ctx.layout.target}/`);
  for (const event of ctx.trace.events) {
    if (!wasRefused(event) || ctx.pipPids.has(event.pid)) continue;
    for (const change of changedPaths(event)) {
      const p = change.path;
      // A path the tracer could not make absolute cannot be placed; the call's other records can.
      if (!p.startsWith('/') || inTarget(p) || HARMLESS_DEVICES.test(p) || BYTECODE_CACHE.test(p)) continue;
      if (isExpectedChange({ path: p, kind: 'modified' }, ctx.layout)) continue;
      const pkg = ctx.packageOf(event.pid, event.time);
      const errno = 'errno' in event ? event.errno : null;
      found.add(`${pkg}\0${p}`, () =>
        finding(
          'fs.write-outside-target',
          'high',
          `tried to ${change.syscall} ${p} outside the install target (refused: ${errno ?? 'denied'})`,
          {
            path: p,
            ...viaOf(change.via),
            kind: 'attempted',
            syscall: change.syscall,
            denied: true,
            errno,
            pid: event.pid,
            argv: argvText(ctx.argvOf(event.pid)),
          },
          pkg,
        ),
      );
    }
  }
  return found.findings;
}

export interface TamperContext {
  trace: Trace;
  target: string;
  /** pip's own processes: the only ones that may change the target. */
  installers: Set<number>;
  packageOf: PackageOf;
  argvOf: (pid: number) => string[];
  /** Findings kept; the rest are counted in the last one. Default 200. */
  maxFindings?: number;
}

/**
 * fs.target-tamper: a create, write, truncate, rename, link, symlink, chmod, mkdir or unlink under
 * the install target by any process but pip's installer, by path or through an fd (fchmod,
 * ftruncate, fallocate, fchown, fsetxattr), wherever the path went on its way (the trace resolves
 * `/proc/self/fd/N`, `/dev/fd/N` and the run's own symlinks as the kernel did). A build hook never
 * writes there; one that does is planting code pip did not install (a .pth, a forged dist-info,
 * another package's module). Attempts count, failed or not: the intent is the attack. One finding
 * per process and path.
 */
export function targetTamperFindings(ctx: TamperContext): Finding[] {
  const found = new CappedFindings(ctx.maxFindings);
  const inTarget = (p: string) => p === ctx.target || p.startsWith(`${ctx.target}/`);
  for (const event of ctx.trace.events) {
    if (ctx.installers.has(event.pid)) continue;
    for (const change of changedPaths(event)) {
      if (!inTarget(change.path)) continue;
      const ok = 'ok' in event ? event.ok : true;
      const denied = wasRefused(event);
      found.add(`${event.pid}\0${change.path}`, () =>
        finding(
          'fs.target-tamper',
          'high',
          `${change.syscall} ${change.path} in the install target by a process that is not pip's installer${denied ? ' (refused)' : ''}`,
          { path: change.path, ...viaOf(change.via), syscall: change.syscall, ok, denied, pid: event.pid, argv: argvText(ctx.argvOf(event.pid)) },
          ctx.packageOf(event.pid, event.time),
        ),
      );
    }
  }
  return found.findings;
}
