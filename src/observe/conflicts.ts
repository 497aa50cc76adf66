/**
 * Two locked distributions that install the same files (opencv-python beside
 * opencv-python-headless, pygame beside pygame-ce): pip installs the second over the first, so
 * every shared file is claimed by both RECORDs (`static.unrecorded-file`) and differs from the
 * first one's wheel (`integrity.installed-mismatch`). That is one problem, said once: one
 * `integrity.file-conflict` per set of distributions, naming them and the files they share.
 *
 * Only what the overlap explains is folded in. A mismatch that a process other than pip's
 * installer wrote (its evidence names the writer), of a distribution outside the set, or of a file
 * the set does not share, stays a finding of its own. The conflict itself always fails: the
 * export's content depends on pip's install order.
 */
import { finding, type Finding } from '../core/finding.js';

/** Shared files named in a conflict's evidence; the count says how many there are. */
const CONFLICT_PATHS = 10;

export function collapseConflicts(findings: Finding[]): Finding[] {
  const groups = new Map<string, { distributions: string[]; paths: string[]; mismatches: number }>();
  const groupOf = new Map<string, string>();
  for (const f of findings) {
    const claimedBy = claimants(f);
    if (!claimedBy || typeof f.evidence.path !== 'string') continue;
    const key = claimedBy.join('\0');
    const group = groups.get(key) ?? { distributions: claimedBy, paths: [], mismatches: 0 };
    group.paths.push(f.evidence.path);
    groups.set(key, group);
    groupOf.set(f.evidence.path, key);
  }
  if (groups.size === 0) return findings;

  const kept: Finding[] = [];
  for (const f of findings) {
    if (claimants(f)) continue;
    const key = typeof f.evidence.path === 'string' ? groupOf.get(f.evidence.path) : undefined;
    const group = key === undefined ? undefined : groups.get(key);
    const explained =
      group !== undefined &&
      f.rule === 'integrity.installed-mismatch' &&
      f.evidence.kind === 'different' &&
      f.evidence.writerPid === undefined &&
      typeof f.evidence.distribution === 'string' &&
      group.distributions.includes(f.evidence.distribution);
    if (explained) group.mismatches += 1;
    else kept.push(f);
  }
  for (const { distributions, paths, mismatches } of groups.values()) {
    const names = distributions.join(' and ');
    kept.push(
      finding(
        'integrity.file-conflict',
        'high',
        `${names} install the same ${paths.length} file${paths.length === 1 ? '' : 's'} (${paths[0] ?? ''}${paths.length > 1 ? ', …' : ''}): whichever pip installed last won; lock one of them`,
        { distributions, files: paths.length, paths: paths.slice(0, CONFLICT_PATHS), overwritten: mismatches },
        null,
      ),
    );
  }
  return kept;
}

/** The distributions whose RECORDs all claim a file, sorted, when a finding says several do. */
function claimants(f: Finding): string[] | null {
  // A shared file some process other than pip's installer wrote is that process's finding.
  if (f.rule !== 'static.unrecorded-file' || f.evidence.writerPid !== undefined) return null;
  const claimedBy = f.evidence.claimedBy;
  if (!Array.isArray(claimedBy) || claimedBy.length < 2 || !claimedBy.every((c): c is string => typeof c === 'string')) return null;
  return [...new Set(claimedBy)].sort();
}
