/**
 * Which files of an unpinned build requirement the proxy serves: chosen on the host before any
 * container, from the upstream page alone, so that nothing run in the sandbox decides which
 * version of it the upstream is asked for. Pure.
 */
import { compare, explain, satisfies } from '@renovatebot/pep440';
import { canonicalVersion, versionFromFilename } from './names.js';
import type { PageFile } from './pages.js';
import { wheelSupported, type LinuxCPython } from '../lock/wheel-tags.js';

/**
 * The newest final release (no pre-, dev- or yanked one) whose Requires-Python admits `python`
 * and which has a file the sandbox can use, and of it only what pip would take: every wheel
 * `target` supports, else its sdists. Empty when no release qualifies.
 */
export function newestUsableRelease(project: string, files: readonly PageFile[], target: LinuxCPython, python: string): PageFile[] {
  const byVersion = new Map<string, { version: string; wheels: PageFile[]; sdists: PageFile[] }>();
  for (const file of files) {
    if (file.yanked !== null) continue;
    if (file.requiresPython !== null && !admits(python, file.requiresPython)) continue;
    const version = versionFromFilename(project, file.filename);
    const facts = version === null ? null : explain(version);
    if (version === null || facts === null || facts.is_prerelease || facts.is_devrelease) continue;
    const key = canonicalVersion(version);
    const entry = byVersion.get(key) ?? { version, wheels: [], sdists: [] };
    if (file.filename.toLowerCase().endsWith('.whl')) {
      if (wheelSupported(file.filename, target)) entry.wheels.push(file);
    } else if (/\.(tar\.gz|zip)$/i.test(file.filename)) {
      entry.sdists.push(file);
    }
    byVersion.set(key, entry);
  }
  const usable = [...byVersion.values()].filter((entry) => entry.wheels.length + entry.sdists.length > 0);
  usable.sort((a, b) => compare(b.version, a.version));
  const newest = usable[0];
  if (!newest) return [];
  return newest.wheels.length > 0 ? newest.wheels : newest.sdists;
}

/** A Requires-Python that cannot be parsed admits nothing: pip would skip the file too. */
function admits(python: string, requiresPython: string): boolean {
  try {
    return satisfies(python, requiresPython);
  } catch {
    return false;
  }
}
