/**
 * fs.build-meddling: one build reaching another's files. Each locked sdist is built in a phase of
 * its own (sandbox/session.ts); once a build has succeeded, the supervisor copies its wheels out of
 * the sandbox user's reach (BUILT_DIR) and removes what it left in pip's temp dirs. So a later
 * build finds nothing of an earlier one to rewrite, and what it tries is refused or misses; this
 * names the attempt, and the other direction too: a file an earlier build planted outside its own
 * dirs (a pip.conf, a ~/.pydistutils.cfg) that a later build's processes then read.
 *
 * A build phase's footprint is every path its processes created or changed: the entries of /tmp it
 * made (its own temp dirs, pip's among them: the wheel dir aside, which every build's pip writes
 * and fs.target-tamper guards), and the files its package's processes wrote anywhere else outside
 * the install target. In every later build phase:
 *
 *   - any path under BUILT_DIR, or under a /tmp entry an earlier build made, is a reach into
 *     another build's files, charged to the process that reached (whoever it acts for);
 *   - a file an earlier build's package planted that a process of this build opens, links or
 *     executes is charged to the package that planted it.
 */
import { BUILT_DIR, TARGET, WHEEL_DIR } from '../core/layout.js';
import { finding, type Finding } from '../core/finding.js';
import { CappedFindings, changedPaths, viaOf } from './filesystem.js';
import { argvText, type PackageOf } from './attribution.js';
import type { Trace, TraceEvent } from './trace.js';

/** What one build phase made, as its tracer saw: by path, the package of the process that made it (null: pip's own). */
export interface BuildFootprint {
  /** The phase's name in the run (`build`, `build-2`, ...). */
  phase: string;
  /** Top-level entries of /tmp it created, e.g. `/tmp/pip-req-build-abc`. */
  tempDirs: Map<string, string | null>;
  /** Files its packages' processes changed outside /tmp and the install target. */
  planted: Map<string, string>;
}

const under = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);

/** `/tmp/x` for a path under /tmp, else null. */
function tempEntryOf(p: string): string | null {
  const match = /^\/tmp\/[^/]+/.exec(p);
  return match ? match[0] : null;
}

/** The footprint of one build phase, given the footprints of the builds before it (an entry they made stays theirs). */
export function buildFootprint(phase: string, trace: Trace, packageOf: PackageOf, earlier: readonly BuildFootprint[]): BuildFootprint {
  const tempDirs = new Map<string, string | null>();
  const planted = new Map<string, string>();
  const madeBefore = (entry: string) => earlier.some((f) => f.tempDirs.has(entry));
  for (const event of trace.events) {
    if (!('ok' in event) || !event.ok) continue;
    for (const change of changedPaths(event)) {
      if (under(change.path, TARGET) || under(change.path, WHEEL_DIR) || change.path.startsWith('/dev/') || !change.path.startsWith('/')) continue;
      const entry = tempEntryOf(change.path);
      if (entry !== null) {
        if (!tempDirs.has(entry) && !madeBefore(entry)) tempDirs.set(entry, packageOf(event.pid, event.time));
        continue;
      }
      const pkg = packageOf(event.pid, event.time);
      if (pkg !== null && !planted.has(change.path)) planted.set(change.path, pkg);
    }
  }
  return { phase, tempDirs, planted };
}

/** Every path an event names, with how: what it changes, and what it opens, links from or executes. */
function touchedPaths(event: TraceEvent): Array<{ path: string; syscall: string; via?: string }> {
  switch (event.kind) {
    case 'open':
      return [{ path: event.path, syscall: event.syscall, ...viaOf(event.via) }];
    case 'exec':
      return [{ path: event.path, syscall: 'execve' }];
    case 'fsop':
      return [...changedPaths(event), ...(event.from === null ? [] : [{ path: event.from, syscall: event.syscall }])];
    default:
      return changedPaths(event);
  }
}

/** Whose a path is, when it is an earlier build's: under the kept wheels, or under a /tmp entry an earlier build made. */
function ownerOf(p: string, earlier: readonly BuildFootprint[]): { phase: string; package: string | null } | null {
  if (under(p, BUILT_DIR)) return { phase: 'built wheels', package: null };
  const entry = tempEntryOf(p);
  const made = entry === null ? undefined : earlier.find((f) => f.tempDirs.has(entry));
  return made ? { phase: made.phase, package: made.tempDirs.get(entry!) ?? null } : null;
}

export interface MeddlingContext {
  trace: Trace;
  packageOf: PackageOf;
  argvOf: (pid: number) => string[];
  /** The footprints of the build phases that ran before this one. */
  earlier: readonly BuildFootprint[];
  maxFindings?: number;
}

/** fs.build-meddling in one build phase, against the builds before it. */
export function meddlingFindings(ctx: MeddlingContext): Finding[] {
  const found = new CappedFindings(ctx.maxFindings);
  for (const event of ctx.trace.events) {
    const ok = 'ok' in event ? event.ok : true;
    for (const touched of touchedPaths(event)) {
      const owner = ownerOf(touched.path, ctx.earlier);
      const planter = owner ? undefined : ctx.earlier.find((f) => f.planted.has(touched.path));
      if (!owner && !(planter && ok)) continue;
      // Made only for a finding: the trace holds every call of the phase, and argv is joined per event.
      const evidence = {
        path: touched.path,
        ...viaOf(touched.via),
        syscall: touched.syscall,
        ok,
        errno: 'errno' in event ? event.errno : null,
        pid: event.pid,
        argv: argvText(ctx.argvOf(event.pid)),
      };
      if (owner) {
        const pkg = ctx.packageOf(event.pid, event.time);
        found.add(`reach\0${pkg}\0${touched.path}`, () =>
          finding(
            'fs.build-meddling',
            'high',
            `${touched.syscall} ${touched.path}: a build reached into ${owner.phase === 'built wheels' ? 'the wheels earlier builds made' : `what the ${owner.phase} phase made`}`,
            { ...evidence, ownerPhase: owner.phase, ownerPackage: owner.package },
            pkg,
          ),
        );
        continue;
      }
      const { phase, planted } = planter!;
      const pkg = planted.get(touched.path)!;
      found.add(`plant\0${pkg}\0${touched.path}`, () =>
        finding(
          'fs.build-meddling',
          'high',
          `${touched.path}, written by ${pkg}'s build (the ${phase} phase), was read by a later build`,
          { ...evidence, plantedIn: phase, reader: ctx.packageOf(event.pid, event.time) },
          pkg,
        ),
      );
    }
  }
  return found.findings;
}
