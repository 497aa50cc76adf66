/**
 * Which package a process acted for. pip builds each sdist in a subprocess whose working directory
 * names the project: `/tmp/pip-install-<rand>/<name>_<32 hex>/` (plain `<name>/` without parallel
 * builds), `/tmp/pip-wheel-<rand>/<name>_<32 hex>/`, or `/tmp/pip-req-build-<rand>/` when pip did
 * not know the name yet. Everything that subprocess starts acts for the same package.
 *
 * The outermost process in the ancestry that was ever in such a directory decides, not the
 * nearest. A build cannot then shed or shift its blame: `chdir` into another package's build dir
 * (or one it made up) before forking still leaves the children under the package whose build
 * started them. pip's own processes never sit in a build dir, so they get null. In a nested build
 * (a build backend running pip), everything below is blamed on the outer package, which chose to
 * run it.
 */
import { PIP_RUNNER } from '../core/layout.js';
import { normalizeName } from '../lock/normalize.js';
import type { ProcessInfo, Trace } from './trace.js';

export interface Attribution {
  /** PEP 503-normalised project name; null for a `pip-req-build-*` dir, which does not name one. */
  package: string | null;
  /** The build directory, e.g. `/tmp/pip-install-q8_72yms/evil-pkg_2c8a…`. */
  buildDir: string;
  /** The process whose working directory it was. */
  pid: number;
}

/** A process's argv as evidence: its first 8 entries, at most 300 characters. */
export function argvText(argv: string[]): string {
  return argv.slice(0, 8).join(' ').slice(0, 300);
}

/** The package's name, or null for pip's own processes (and for an unnamed `pip-req-build-*` build). */
export function packageOfProcess(trace: Trace, pid: number): string | null {
  return attributeProcess(trace, pid)?.package ?? null;
}

/**
 * The build a process belongs to, or null when it is pip's own. The name is returned whether or not
 * it is in the lock: a build of an unlocked name is still evidence.
 */
export function attributeProcess(trace: Trace, pid: number): Attribution | null {
  const chain = ancestry(trace, pid);
  for (let i = chain.length - 1; i >= 0; i--) {
    const proc = chain[i];
    if (!proc) continue;
    for (const cwd of proc.cwds) {
      const build = buildDirOf(cwd);
      if (build) return { ...build, pid: proc.pid };
    }
  }
  return null;
}

/** The process and its ancestors, self first and root last. Stops at an unknown pid or a cycle. */
export function ancestry(trace: Trace, pid: number): ProcessInfo[] {
  const chain: ProcessInfo[] = [];
  const seen = new Set<number>();
  let current: number | null = pid;
  while (current !== null && !seen.has(current)) {
    seen.add(current);
    const proc = trace.processes.get(current);
    if (!proc) break;
    chain.push(proc);
    current = proc.ppid;
  }
  return chain;
}

const HEX_SUFFIX = /^(.+)_[0-9a-f]{32}$/;
const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/** The pip build directory a path lies in, with the project it names. */
export function buildDirOf(dir: string): { package: string | null; buildDir: string } | null {
  const parts = dir.split('/');
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? '';
    if (/^pip-req-build-[^/]+$/.test(part)) return { package: null, buildDir: parts.slice(0, i + 1).join('/') };
    const install = part.startsWith('pip-install-');
    if (!install && !part.startsWith('pip-wheel-')) continue;
    const child = parts[i + 1];
    if (child === undefined) continue;
    // pip-wheel-* also holds pip's own output dirs (`.tmp-*`): only a hex-suffixed child is a build.
    const name = HEX_SUFFIX.exec(child)?.[1] ?? (install ? child : null);
    if (name !== null && NAME.test(name)) return { package: normalizeName(name), buildDir: parts.slice(0, i + 2).join('/') };
  }
  return null;
}

/**
 * pip's installer: the traced root (pip's runner on the installer interpreter, core/layout.ts) and its
 * threads. Only these may change the install target. A build hook is a child of the installer,
 * never the root itself, so it cannot pass for one.
 */
export function installerPids(trace: Trace): Set<number> {
  const installers = new Set<number>();
  const root = trace.rootPid;
  if (root === null) return installers;
  installers.add(root);
  // Threads share their creator's identity; spawns come in order, so one pass suffices.
  for (const [thread, creator] of threadsOf(trace)) if (installers.has(creator)) installers.add(thread);
  return installers;
}

/**
 * pip's own processes: the installer (above), and the pip subprocesses it starts to install build
 * requirements into an isolated build environment (`<installer python> …/pip/__pip-runner__.py
 * install …`, a direct child of an installer process). A build hook is a child of the installer
 * too, but runs `_in_process.py`; one that starts a pip runner itself is that hook's child, not
 * the installer's, so it cannot pass for pip. Only these may talk to the index relay.
 */
export function pipPids(trace: Trace, installerPython: string): Set<number> {
  const installers = installerPids(trace);
  const own = new Set(installers);
  for (const proc of trace.processes.values()) {
    // A build hook is a child of the installer too, and could exec itself into a pip runner; it
    // still sat in its build dir, so it is attributed to its package and never passes for pip.
    if (
      proc.ppid !== null &&
      installers.has(proc.ppid) &&
      proc.exe === installerPython &&
      proc.argv[1] === PIP_RUNNER &&
      attributeProcess(trace, proc.pid) === null
    ) {
      own.add(proc.pid);
    }
  }
  for (const [thread, creator] of threadsOf(trace)) if (own.has(creator)) own.add(thread);
  return own;
}

/** Every thread the trace saw created (clone with CLONE_THREAD), mapped to the thread that created it, in order. */
export function threadsOf(trace: Trace): Map<number, number> {
  const threads = new Map<number, number>();
  for (const event of trace.events) if (event.kind === 'spawn' && event.thread && event.child > 0) threads.set(event.child, event.pid);
  return threads;
}

/** The package a process acts for; `time`, when known, is when it acted (a startup phase's owner changes as its interpreter runs one `.pth` after another). */
export type PackageOf = (pid: number, time?: number) => string | null;

/**
 * The startup phase: an interpreter runs each `.pth`, startup hook and module it reaches in turn, in
 * one process. At a given moment it runs the code of the distribution owning the last file under
 * site-packages it opened (read) before then; before its first such open, its parent's at the time
 * it was started (a subprocess a `.pth` spawned acts for that `.pth`). Metadata (`*.dist-info/`) and
 * bytecode caches are read by many and name nobody. `ownerOf` gives a site-packages file's owning
 * distribution (its RECORD's), by path relative to site-packages.
 */
export function startupOwners(trace: Trace, sitePrefix: string, ownerOf: (rel: string) => string | null): PackageOf {
  const opened = new Map<number, Array<{ time: number; owner: string }>>();
  for (const event of trace.events) {
    if (event.kind !== 'open' || !event.ok || event.write || !event.path.startsWith(sitePrefix)) continue;
    const rel = event.path.slice(sitePrefix.length);
    if (/(?:^|\/)(?:[^/]+\.dist-info|__pycache__)(?:\/|$)/.test(rel)) continue;
    const owner = ownerOf(rel);
    if (owner === null) continue;
    const list = opened.get(event.pid);
    if (list) list.push({ time: event.time, owner });
    else opened.set(event.pid, [{ time: event.time, owner }]);
  }
  const at = (pid: number, time: number, depth: number): string | null => {
    const own = opened
      .get(pid)
      ?.filter((o) => o.time <= time)
      .at(-1);
    if (own) return own.owner;
    const proc = trace.processes.get(pid);
    if (!proc || proc.ppid === null || depth > 64) return null;
    return at(proc.ppid, proc.start, depth + 1);
  };
  return (pid, time) => at(pid, time ?? Number.POSITIVE_INFINITY, 0);
}

/**
 * The import phase: the traced root is the importer (images/importer.py), and each of its direct
 * children imports one top-level module and its submodules, started as `python3 -I -S -B -c
 * <launch> <site-packages> <module> <distribution> <app dir>`, which then execs the application
 * (`python3 main.py`) in the same process. Everything a child, its threads and its descendants do
 * is that distribution's. The name is read from the child's first exec, the importer's own: the
 * application's exec, or any exec the import makes later, cannot change whose it is, and only the
 * importer's children count, so no import can pass for another. Between two children the importer
 * kills whatever is left below it (the supervisor kills what left the tree), so nothing one import
 * left running acts while the next runs; ancestry, not timing, decides whose an act is.
 */
export function importedBy(trace: Trace): (pid: number) => string | null {
  const root = trace.rootPid;
  const owner = new Map<number, string | null>();
  for (const event of trace.events) {
    if (event.kind !== 'exec' || !event.ok || owner.has(event.pid) || trace.processes.get(event.pid)?.ppid !== root) continue;
    const [, isolated, nosite, nobytecode, dashC, , , , dist] = event.argv;
    owner.set(event.pid, isolated === '-I' && nosite === '-S' && nobytecode === '-B' && dashC === '-c' && dist ? normalizeName(dist) : null);
  }
  return (pid) => {
    const child = ancestry(trace, pid).find((proc) => proc.ppid === root && root !== null);
    return child === undefined ? null : (owner.get(child.pid) ?? null);
  };
}
