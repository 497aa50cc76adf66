/**
 * fs.autorun-write: code planted where an interpreter runs it without being asked. A site
 * directory (`…/lib/python3.N/site-packages` or `dist-packages`, wherever it is: the target's,
 * the installer's, pip's temporary build environments under /tmp, the user site under the home)
 * runs every `.pth` it holds at each start, imports `sitecustomize`/`usercustomize` from it, and,
 * on a PYTHONPATH, shadows the standard library with any module named like one of its own.
 *
 * Only pip's own processes put files there (the target is its installer's, a build environment is
 * filled by the pip subprocess that installs the build requirements). Anything else that creates,
 * links or renames such a file into a site directory counts, allowed by the filesystem or refused:
 * a build environment is writable by the build, so the next build in the same environment, or the
 * backend's own next hook, would run it. The install target itself is fs.target-tamper's.
 */
import { finding, type Finding } from '../core/finding.js';
import { argvText, type PackageOf } from './attribution.js';
import { isStdlibModule } from './stdlib-names.js';
import type { Trace, TraceEvent } from './trace.js';
import { CappedFindings, viaOf, wasRefused, type ChangedPath } from './filesystem.js';

/** A site directory and the first path component below it. */
const SITE_ENTRY = /^(\/(?:[^/]+\/)*?lib\/python3(?:\.\d+)?\/(?:site|dist)-packages)\/([^/]+)/;

/** The importable name a top-level entry of a site dir provides: `json` for `json/…`, `json.py`, `json.cpython-311-x86_64-linux-gnu.so`. */
function topLevelModule(entry: string): string {
  const dot = entry.indexOf('.');
  return dot < 0 ? entry : entry.slice(0, dot);
}

/** Why an entry at the top of a site dir runs code unasked, or null when it does not. */
export function autorunReason(entry: string): string | null {
  if (entry.endsWith('.pth')) return '.pth file';
  const module = topLevelModule(entry);
  if (module === 'sitecustomize' || module === 'usercustomize') return 'startup hook';
  if (isStdlibModule(module)) return 'standard-library name';
  return null;
}

/** The paths an event creates or fills (not those it removes or only re-stamps), with the syscall. */
function plantedPaths(event: TraceEvent): ChangedPath[] {
  switch (event.kind) {
    case 'open':
      return event.write ? [{ path: event.path, syscall: event.syscall, ...viaOf(event.via) }] : [];
    case 'symlink':
      return [{ path: event.path, syscall: 'symlink', ...viaOf(event.via) }];
    case 'rename':
      return [{ path: event.to, syscall: 'rename', ...viaOf(event.toVia) }];
    case 'fsop':
      return ['mkdir', 'mkdirat', 'link', 'linkat', 'truncate'].includes(event.syscall)
        ? [{ path: event.path, syscall: event.syscall, ...viaOf(event.via) }]
        : [];
    default:
      return [];
  }
}

export interface AutorunContext {
  trace: Trace;
  /** The install target: fs.target-tamper judges every change there. */
  target: string;
  /** pip's own processes, which install into site dirs by design. */
  pipPids: Set<number>;
  packageOf: PackageOf;
  argvOf: (pid: number) => string[];
  /** Findings kept; the rest are counted in the last one. Default 200. */
  maxFindings?: number;
}

export function autorunWriteFindings(ctx: AutorunContext): Finding[] {
  const found = new CappedFindings(ctx.maxFindings);
  for (const event of ctx.trace.events) {
    if (ctx.pipPids.has(event.pid)) continue;
    for (const planted of plantedPaths(event)) {
      if (planted.path === ctx.target || planted.path.startsWith(`${ctx.target}/`)) continue;
      const match = SITE_ENTRY.exec(planted.path);
      const siteDir = match?.[1];
      const entry = match?.[2];
      if (siteDir === undefined || entry === undefined) continue;
      const reason = autorunReason(entry);
      if (reason === null) continue;
      const pkg = ctx.packageOf(event.pid, event.time);
      const denied = wasRefused(event);
      const errno = 'errno' in event ? event.errno : null;
      found.add(`${pkg}\0${planted.path}`, () =>
        finding(
          'fs.autorun-write',
          'high',
          `${planted.syscall} ${planted.path}: a ${reason} in a site directory, which runs at interpreter start${denied ? ` (refused: ${errno ?? 'denied'})` : ''}`,
          {
            path: planted.path,
            ...viaOf(planted.via),
            siteDir,
            entry,
            reason,
            syscall: planted.syscall,
            denied,
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
