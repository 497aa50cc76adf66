/*
 * Writing a lock from a resolution: a hashed requirements file in pip-compile's layout (`# via`
 * comments), or a PEP 751 pylock.toml. Both say in their header how they were produced and that
 * the resolution holds for the sandbox's platform only. Pure: text out, the caller writes it.
 */
import { stringify } from 'smol-toml';
import { show } from './problem.js';

export interface LockedDist {
  filename: string;
  /** Lowercase hex. */
  sha256: string;
  /** Where the upstream index has it, without credentials. */
  url: string;
  kind: 'wheel' | 'sdist';
}

export interface LockEntry {
  /** PEP 503 normalised. */
  name: string;
  version: string;
  /** Named in the requirements.in (pip's `requested`). */
  requested: boolean;
  /** Normalised names of the resolved packages whose requirements name this one. */
  requiredBy: string[];
  /** Every file of this version the resolution's platform may install; at least one. */
  files: LockedDist[];
}

/** How a lock was produced, for its header. */
export interface LockProvenance {
  toolVersion: string;
  /** The requirements.in, as given on the command line. */
  source: string;
  /** YYYY-MM-DD. */
  date: string;
  pipVersion: string;
  /** e.g. 3.11.2 */
  pythonVersion: string;
  /** e.g. x86_64 */
  machine: string;
  /** Upstream index URLs, credentials removed. */
  indexes: string[];
  /** The command line that wrote it (`sandbox-install lock requirements.in -o requirements.lock`). */
  command: string;
}

/** A user-given string (a path, an index URL) on one comment line: nothing in it can start a new line. */
function oneLine(text: string): string {
  return show(text, 1000);
}

function headerLines(p: LockProvenance): string[] {
  const python = p.pythonVersion.split('.').slice(0, 2).join('.');
  return [
    `# This file was written by sandbox-install lock ${p.toolVersion} from ${oneLine(p.source)} on ${p.date}; resolved inside the sandbox (pip ${p.pipVersion}, CPython ${p.pythonVersion}, linux ${p.machine}) against ${p.indexes.map(oneLine).join(', ')}`,
    `# The resolution holds for CPython ${python} on linux ${p.machine} (glibc): environment markers were evaluated for CPython ${p.pythonVersion}, and only the wheels that platform can install are listed, with the sdist.`,
    '#',
    `#    ${oneLine(p.command)}`,
    '#',
  ];
}

function byName(entries: LockEntry[]): LockEntry[] {
  return [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** `# via` as pip-compile writes it: on one line for one reason, else one reason per line. */
function viaLines(entry: LockEntry, source: string): string[] {
  const reasons = [...(entry.requested ? [`-r ${oneLine(source)}`] : []), ...[...new Set(entry.requiredBy)].sort()];
  if (reasons.length === 0) return [];
  if (reasons.length === 1) return [`    # via ${reasons[0]}`];
  return ['    # via', ...reasons.map((reason) => `    #   ${reason}`)];
}

/** A hashed requirements lock in pip-compile's layout. */
export function renderRequirementsLock(entries: LockEntry[], provenance: LockProvenance): string {
  const body = byName(entries).flatMap((entry) => {
    const hashes = [...new Set(entry.files.map((file) => file.sha256))].sort();
    return [
      `${entry.name}==${entry.version} \\`,
      ...hashes.map((hex, i) => `    --hash=sha256:${hex}${i < hashes.length - 1 ? ' \\' : ''}`),
      ...viaLines(entry, provenance.source),
    ];
  });
  return [...headerLines(provenance), ...body, ''].join('\n');
}

/**
 * A PEP 751 pylock.toml. One sdist per package (the spec allows one): the first by file name when
 * an index lists several.
 */
export function renderPylock(entries: LockEntry[], provenance: LockProvenance): string {
  const [major, minor] = provenance.pythonVersion.split('.');
  const dist = (file: LockedDist) => ({ name: file.filename, url: file.url, hashes: { sha256: file.sha256 } });
  const document = {
    'lock-version': '1.0',
    environments: [`python_version == '${major}.${minor}' and sys_platform == 'linux' and platform_machine == '${provenance.machine}'`],
    'requires-python': `==${major}.${minor}.*`,
    'created-by': 'sandbox-install',
    packages: byName(entries).map((entry) => {
      const wheels = entry.files.filter((file) => file.kind === 'wheel').sort((a, b) => (a.filename < b.filename ? -1 : 1));
      const sdist = entry.files
        .filter((file) => file.kind === 'sdist')
        .sort((a, b) => (a.filename < b.filename ? -1 : 1))
        .at(0);
      return {
        name: entry.name,
        version: entry.version,
        ...(sdist ? { sdist: dist(sdist) } : {}),
        ...(wheels.length > 0 ? { wheels: wheels.map(dist) } : {}),
      };
    }),
  };
  return `${headerLines(provenance).join('\n')}\n${stringify(document)}\n`;
}
