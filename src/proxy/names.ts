/**
 * Names, versions and filenames as the proxy sees them. Everything here is pure.
 */
import { normalizeName } from '../lock/normalize.js';

export { normalizeName };

/** PEP 508 project name: ASCII letters and digits, with `.`, `_`, `-` only inside. */
const PROJECT_NAME = /^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$/i;

export function isValidProjectName(name: string): boolean {
  return name.length <= 200 && PROJECT_NAME.test(name);
}

/**
 * A filename the proxy is willing to put in a URL and hand to pip. pip joins the link's filename
 * onto its download directory, so a hostile upstream name such as `..%2F..%2Fetc%2Fx.whl` must
 * never reach it. Wheel and sdist names only ever use these characters.
 */
const SAFE_FILENAME = /^[A-Za-z0-9][A-Za-z0-9._+!-]{0,254}$/;

export function isSafeFilename(filename: string): boolean {
  return SAFE_FILENAME.test(filename);
}

const SDIST_EXTENSIONS = ['.tar.gz', '.tgz', '.tar.bz2', '.tbz', '.tar.xz', '.txz', '.tar', '.zip'];

/**
 * The version a distribution filename claims, or null when the name is not a wheel, sdist or egg
 * of `project`. Wheel names escape `-` in the project name, so the second field is the version;
 * legacy sdist names may contain `-` in the project part, so the prefix is matched against the
 * normalised project name.
 */
export function versionFromFilename(project: string, filename: string): string | null {
  const lower = filename.toLowerCase();
  if (lower.endsWith('.whl') || lower.endsWith('.egg')) {
    const parts = filename.slice(0, -4).split('-');
    return parts.length >= 2 ? (parts[1] ?? null) : null;
  }
  const ext = SDIST_EXTENSIONS.find((e) => lower.endsWith(e));
  if (!ext) return null;
  const parts = filename.slice(0, -ext.length).split('-');
  const want = normalizeName(project);
  for (let i = 1; i < parts.length; i++) {
    if (normalizeName(parts.slice(0, i).join('-')) === want) return parts.slice(i).join('-');
  }
  return null;
}

// PEP 440, as in packaging's VERSION_PATTERN.
const PEP440 = new RegExp(
  '^\\s*v?' +
    '(?:(?<epoch>[0-9]+)!)?' +
    '(?<release>[0-9]+(?:\\.[0-9]+)*)' +
    '(?:[-_.]?(?<preL>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?<preN>[0-9]+)?)?' +
    '(?:-(?<postN1>[0-9]+)|[-_.]?(?<postL>post|rev|r)[-_.]?(?<postN2>[0-9]+)?)?' +
    '(?:[-_.]?(?<devL>dev)[-_.]?(?<devN>[0-9]+)?)?' +
    '(?:\\+(?<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?' +
    '\\s*$',
  'i',
);

const PRE_SPELLING: Record<string, string> = { alpha: 'a', a: 'a', beta: 'b', b: 'b', c: 'rc', pre: 'rc', preview: 'rc', rc: 'rc' };

/**
 * A canonical spelling of a PEP 440 version, good enough to compare a lock pin with a filename:
 * `1.0`, `v1.0.0` and `1.0.0` agree, `1.0RC1` and `1.0rc1` agree. Non-PEP 440 strings are only
 * lowercased and trimmed.
 */
export function canonicalVersion(version: string): string {
  const m = PEP440.exec(version);
  if (!m?.groups) return version.trim().toLowerCase();
  const g = m.groups;
  let out = '';
  if (g.epoch && Number(g.epoch) !== 0) out += `${Number(g.epoch)}!`;
  const release = (g.release ?? '0').split('.').map(Number);
  while (release.length > 1 && release[release.length - 1] === 0) release.pop();
  out += release.join('.');
  if (g.preL) out += `${PRE_SPELLING[g.preL.toLowerCase()] ?? g.preL.toLowerCase()}${Number(g.preN ?? 0)}`;
  if (g.postN1 !== undefined) out += `.post${Number(g.postN1)}`;
  else if (g.postL) out += `.post${Number(g.postN2 ?? 0)}`;
  if (g.devL) out += `.dev${Number(g.devN ?? 0)}`;
  if (g.local) out += `+${g.local.toLowerCase().replace(/[-_]/g, '.')}`;
  return out;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;
