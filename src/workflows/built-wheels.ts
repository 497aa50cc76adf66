/**
 * The wheels the build phase built from the locked sdists, brought to the host once: the install
 * phase installed exactly these bytes (images/install-built.py pins them by hash), provenance holds
 * the installed tree to them, and `wheelhouse` publishes them. What the wheel dir holds is hostile
 * input (build code ran in that container): only regular files with safe names directly in it are
 * read, within limits, and each locked sdist the build phase built must have left exactly one wheel
 * of its project and version, nothing else.
 */
import { tmpdir } from 'node:os';
import path from 'node:path';
import { finding, type Finding } from '../core/finding.js';
import type { RunOutcome } from '../core/outcome.js';
import { isWheel, readWheelDir, type WheelDirEntry } from '../export/wheelhouse.js';
import { normalizeName } from '../lock/normalize.js';
import type { LockedRequirement } from '../lock/types.js';
import { canonicalVersion, isSafeFilename } from '../proxy/names.js';
import type { SandboxSession } from '../sandbox/session.js';

export interface BuiltWheel {
  filename: string;
  /** Normalised name of the locked requirement it was built from. */
  requirement: string;
  sha256: string;
  size: number;
  /** Its bytes on the host, in a dir the run owns. */
  file: string;
}

/** Name and version of a wheel filename (`name-version(-build)?-py-abi-plat.whl`), or null. */
export function wheelNameVersion(filename: string): { name: string; version: string } | null {
  if (!isWheel(filename)) return null;
  const parts = filename.slice(0, -4).split('-');
  if (parts.length !== 5 && parts.length !== 6) return null;
  const [name, version] = parts as [string, string];
  return name && version ? { name: normalizeName(name), version } : null;
}

/** Every build phase ran and pip ended each with 0. */
export const builtAll = (run: RunOutcome): boolean => {
  // One build phase per locked sdist; the supervisor starts the install phase only after all of them succeeded.
  const builds = run.phases.filter((phase) => phase.phase === 'build');
  return builds.length > 0 && builds.every((phase) => phase.pipExitCode === 0) && run.phases.some((phase) => phase.phase === 'install');
};

/**
 * Which entries of the wheel dir are the built wheels: one wheel per built requirement, named for
 * its project and locked version. Anything else is `export.unexpected-file` (`export.unsafe-entry`
 * for what is not a plain file with a safe name). A requirement with no wheel was skipped by pip
 * (its marker is false in the sandbox). Findings are in phase `build`.
 */
export function selectBuilt(
  entries: WheelDirEntry[],
  builds: LockedRequirement[],
): { built: Array<{ filename: string; requirement: string }>; findings: Finding[] } {
  const built: Array<{ filename: string; requirement: string }> = [];
  const findings: Finding[] = [];
  const covered = new Set<string>();
  for (const entry of entries) {
    if (entry.type !== 'file' || !isSafeFilename(entry.name)) {
      findings.push(
        finding('export.unsafe-entry', 'high', `the wheel dir holds ${entry.type} ${JSON.stringify(entry.name)}, not a plain file with a safe name`, {
          entry: entry.name,
          type: entry.type,
        }),
      );
      continue;
    }
    const dist = wheelNameVersion(entry.name);
    const req = dist ? builds.find((r) => r.name === dist.name && canonicalVersion(r.version) === canonicalVersion(dist.version)) : undefined;
    if (req && !covered.has(req.name)) {
      built.push({ filename: entry.name, requirement: req.name });
      covered.add(req.name);
      continue;
    }
    const why = req
      ? `a second wheel for ${req.name}==${req.version}`
      : dist
        ? `a wheel of ${dist.name} ${dist.version}, which is not a locked sdist's project and version`
        : 'not a wheel';
    findings.push(
      finding(
        'export.unexpected-file',
        'high',
        `the build phase left ${JSON.stringify(entry.name)}: ${why}`,
        { filename: entry.name, size: entry.size },
        dist?.name ?? null,
      ),
    );
  }
  return { built, findings: findings.map((f) => ({ ...f, phase: 'build' })) };
}

/** Read the built wheels out of the sandbox into a dir the run owns (recorded for `gc`, removed with the run). */
export async function readBuiltWheels(session: SandboxSession, builds: LockedRequirement[]): Promise<{ wheels: BuiltWheel[]; findings: Finding[] }> {
  const dir = await session.makeDir(tmpdir(), 'sandbox-install-built-');
  const read = await readWheelDir(await session.wheelArchive(), dir, (name) => isWheel(name) && isSafeFilename(name));
  const selection = selectBuilt(read.entries, builds);
  const wheels = selection.built.flatMap(({ filename, requirement }) => {
    const got = read.written.get(filename);
    return got ? [{ filename, requirement, ...got, file: path.join(dir, filename) }] : [];
  });
  return { wheels, findings: [...read.findings.map((f) => ({ ...f, phase: 'build' })), ...selection.findings] };
}
