/*
 * PEP 751 lock files (`pylock.toml`, `pylock.<name>.toml`), as `pip lock`, `uv export --format
 * pylock.toml` and PDM's pylock export write them, read into the same LockPlan a hashed
 * requirements file gives.
 *
 * The sandbox does not fetch the files where the lock says they are: it installs every entry as
 * `name==version --hash=sha256:…` through its index proxy, which serves only files with those
 * hashes. So an entry is accepted only when an index can serve it: a version, and wheels and/or an
 * sdist that each carry a sha256. A file's `url` or `path` is read only for its file name, and a
 * package's `index` (where the locker found the files) is not used: the proxy's upstream is the
 * run's, as for a requirements file, and the hashes make the two agree or the install fail.
 */
import { parse as parseToml, TomlError } from 'smol-toml';
import { z } from 'zod';

import { InputError } from '../errors.js';
import { canonicalMarker } from './marker.js';
import { NOT_SELECTED, selectedMarker, type Selection } from './marker-select.js';
import { isValidProjectName, normalizeName } from './normalize.js';
import { noPipOptions } from './pip-options.js';
import { invalid, LineProblem, show } from './problem.js';
import { type CodeLine, layoutOf, packageLines, topLevelKeyLine } from './toml-lines.js';
import type { LockedRequirementFile, LockedRequirement, LockPlan } from './types.js';
import { isPep440Version } from './version.js';

// ---------------------------------------------------------------------------------------------
// The schema: what this reader uses of PEP 751. Keys it does not use are dropped, not refused
// (the spec asks readers of a newer 1.x to carry on past unknown keys).

/** Algorithm → hex digest. The spec requires at least one entry; which one is checked per file, for a better message. */
const Hashes = z.record(z.string(), z.string());

/** `[[packages.wheels]]`, `[packages.sdist]`, `[packages.archive]`. `upload-time` is a TOML datetime this reader has no use for. */
const DistFile = z.object({
  name: z.string().optional(),
  url: z.string().optional(),
  path: z.string().optional(),
  size: z.number().int().nonnegative().optional(),
  hashes: Hashes.optional(),
});
type DistFile = z.infer<typeof DistFile>;

const Package = z.object({
  name: z.string(),
  version: z.string().optional(),
  marker: z.string().optional(),
  'requires-python': z.string().optional(),
  index: z.string().optional(),
  vcs: z.record(z.string(), z.unknown()).optional(),
  directory: z.record(z.string(), z.unknown()).optional(),
  archive: DistFile.extend({ subdirectory: z.string().optional() }).optional(),
  sdist: DistFile.optional(),
  wheels: z.array(DistFile).optional(),
});
type Package = z.infer<typeof Package>;

const Pylock = z.object({
  'lock-version': z.string(),
  'created-by': z.string().optional(),
  'requires-python': z.string().optional(),
  environments: z.array(z.string()).optional(),
  extras: z.array(z.string()).optional(),
  'dependency-groups': z.array(z.string()).optional(),
  'default-groups': z.array(z.string()).optional(),
  packages: z.array(Package),
  tool: z.record(z.string(), z.unknown()).optional(),
});

/** Far deeper than any pylock.toml; keeps a hostile file's nesting off the stack. */
const MAX_TOML_DEPTH = 64;

const NOT_FROM_INDEX = 'the sandbox installs only index files pinned by version and sha256, fetched through its index proxy';
const LOCK_AGAIN = 'pip lock, uv export --format pylock.toml';

/** Pure: parses pylock.toml text. `file` only labels the plan and the error messages. */
export function parsePylock(text: string, file: string): LockPlan {
  const doc = readToml(text, file);
  const layout = layoutOf(text);
  checkLockVersion(doc['lock-version'], file, topLevelKeyLine(layout, 'lock-version'));
  const lines = packageLines(layout, Array.isArray(doc['packages']) ? doc['packages'].length : 0);

  const parsed = Pylock.safeParse(doc);
  if (!parsed.success) throw schemaError(parsed.error.issues[0], doc, lines, layout, file);

  // A default install (PEP 751, "Installation"): no extras, and the file's default groups.
  const selection: Selection = {
    extras: new Set(),
    dependencyGroups: new Set((parsed.data['default-groups'] ?? []).map(normalizeName)),
  };
  const requirements: LockedRequirement[] = [];
  /** Selected entries by name and canonical marker, to find two that pip could not tell apart. */
  const seen = new Map<string, number>();
  parsed.data.packages.forEach((entry, i) => {
    const line = lines[i] ?? 1;
    try {
      const requirement = lockedRequirement(entry, line, selection);
      if (requirement === null) return;
      const marker = requirement.marker === null ? null : canonicalMarker(requirement.marker);
      const key = `${requirement.name}\u0000${marker ?? ''}`;
      const earlier = seen.get(key);
      if (earlier !== undefined) {
        const markers = marker === null ? 'neither has an environment marker' : 'both have the same environment marker';
        invalid(
          `package '${show(entry.name)}' conflicts with the entry on line ${earlier}: ${markers}, and pip installs one version of a project; keep one entry, or tell them apart with markers`,
        );
      }
      seen.set(key, line);
      requirements.push(requirement);
    } catch (error: unknown) {
      if (error instanceof LineProblem) throw new InputError(error.code, `${file}:${line}: ${error.message}`);
      throw error;
    }
  });
  return { file, requirements, indexUrl: null, extraIndexUrls: [], pipOptions: noPipOptions() };
}

function readToml(text: string, file: string): Record<string, unknown> {
  try {
    return parseToml(text, { maxDepth: MAX_TOML_DEPTH });
  } catch (error: unknown) {
    if (!(error instanceof TomlError)) throw error;
    // smol-toml's message is "Invalid TOML document: <what>" and then a code excerpt; keep <what>.
    const what = (error.message.split('\n', 1)[0] ?? '').replace(/^Invalid TOML document: /, '');
    throw new InputError('lock.invalid', `${file}:${error.line}: not valid TOML (${show(what)}); a pylock.toml is a TOML file (PEP 751)`, { cause: error });
  }
}

function checkLockVersion(version: unknown, file: string, line: number | null): void {
  const where = `${file}:${line ?? 1}`;
  if (typeof version !== 'string') {
    throw new InputError('lock.invalid', `${where}: no lock-version string; a pylock.toml says lock-version = "1.0" (PEP 751)`);
  }
  const match = /^([0-9]+)\.[0-9]+$/.exec(version);
  if (!match) throw new InputError('lock.invalid', `${where}: lock-version '${show(version)}' is not a version like "1.0" (PEP 751)`);
  if (Number(match[1]) !== 1) {
    throw new InputError(
      'lock.invalid',
      `${where}: lock-version ${version} is not supported: this tool reads pylock.toml lock-version 1.x (PEP 751); lock again with a tool that writes lock-version 1.0 (${LOCK_AGAIN}), or export a hashed requirements file`,
    );
  }
}

function schemaError(
  issue: z.ZodError['issues'][number] | undefined,
  doc: Record<string, unknown>,
  lines: number[],
  layout: CodeLine[],
  file: string,
): InputError {
  const path = issue?.path ?? [];
  const [top, index, ...rest] = path;
  const message = show(issue?.message ?? 'does not match the schema');
  if (top === 'packages' && typeof index === 'number') {
    const raw: unknown = (doc['packages'] as unknown[])[index];
    const rawName = typeof raw === 'object' && raw !== null && 'name' in raw && typeof raw.name === 'string' ? raw.name : null;
    const what = rawName === null ? `[[packages]] entry ${index + 1}` : `package '${show(rawName)}'`;
    const field = rest.length === 0 ? '' : ` ${pathText(rest)}:`;
    return new InputError('lock.invalid', `${file}:${lines[index] ?? 1}: ${what}:${field} ${message}; that entry does not follow PEP 751`);
  }
  const line = typeof top === 'string' ? (topLevelKeyLine(layout, top) ?? 1) : 1;
  return new InputError('lock.invalid', `${file}:${line}: ${pathText(path)}: ${message}; the file does not follow PEP 751`);
}

/** `wheels[0].hashes`, from a zod issue path. */
function pathText(path: readonly PropertyKey[]): string {
  return path.map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${show(String(part))}`)).join('');
}

// ---------------------------------------------------------------------------------------------
// One [[packages]] entry

function lockedRequirement(entry: Package, line: number, selection: Selection): LockedRequirement | null {
  const rawName = entry.name;
  if (!isValidProjectName(rawName)) invalid(`package name '${show(rawName)}' is not a valid project name`);
  const what = `package '${show(rawName)}'`;
  refuseDirectReference(entry, what);

  const version = entry.version;
  if (version === undefined) {
    throw new LineProblem('lock.unpinned', `${what} has no version; every package needs an exact version and its index files (${LOCK_AGAIN})`);
  }
  if (!isPep440Version(version)) invalid(`${what} has version '${show(version)}', which is not a valid version (PEP 440)`);
  const where = `${what} ${show(version)}`;

  const files = [
    ...(entry.wheels ?? []).map((wheel, i) => lockedFile(wheel, 'wheel', `wheels[${i}]`, where)),
    ...(entry.sdist ? [lockedFile(entry.sdist, 'sdist', 'sdist', where)] : []),
  ];
  if (files.length === 0) invalid(`${where} has neither wheels nor an sdist; ${NOT_FROM_INDEX}; lock it again so that the entry lists its files with hashes`);

  const marker = selectedMarker(entry.marker, selection, where);
  if (marker === NOT_SELECTED) return null;
  return {
    name: normalizeName(rawName),
    rawName,
    version,
    extras: [],
    marker,
    sha256: [...new Set(files.map((f) => f.sha256))],
    line,
    files,
  };
}

/**
 * vcs, directory and archive entries name a source other than an index (PEP 610 direct URLs).
 * Archives are refused too, even with a URL and a sha256: the lock says "this file from this URL",
 * and the sandbox fetches only through its index proxy by name and version. Installing whatever
 * the index serves under that version instead would quietly change the source the lock names, or
 * fail late on a hash mismatch inside the container; refusing says so now, with what to do.
 */
function refuseDirectReference(entry: Package, what: string): void {
  if (entry.vcs) {
    invalid(`${what} comes from a version control checkout (packages.vcs); ${NOT_FROM_INDEX}; lock a released version from an index instead`);
  }
  if (entry.directory) {
    invalid(
      `${what} is a local directory (packages.directory); ${NOT_FROM_INDEX}; leave the project itself out of the lock (uv export --no-emit-project), or lock a released version from an index`,
    );
  }
  if (entry.archive) {
    const { url, path } = entry.archive;
    const source =
      url === undefined ? `a local archive (packages.archive.path '${show(path ?? '')}')` : `an archive at a URL (packages.archive.url '${show(url)}')`;
    invalid(`${what} is ${source}; ${NOT_FROM_INDEX}; publish it to an index and lock it from there`);
  }
}

const SHA256_HEX = /^[0-9a-f]{64}$/i;
/** A file name, not a path: no separators, no control characters, not `.` or `..`. */
const PLAIN_FILE_NAME = /^(?!\.\.?$)[^/\\\u0000-\u001f\u007f-\u009f]+$/u;

/**
 * A wheel or sdist: its sha256 and, when the entry gives one, its file name. The name must agree
 * with the kind (pip picks what to do with a file by its name, and later stages trust the kind to
 * tell an sdist, whose build runs code, from a wheel).
 */
function lockedFile(file: DistFile, kind: LockedRequirementFile['kind'], slot: string, where: string): LockedRequirementFile {
  const filename = fileNameOf(file);
  const label = filename === null ? slot : `${kind} '${show(filename)}'`;
  if (filename !== null) {
    if (!PLAIN_FILE_NAME.test(filename)) invalid(`${where}: ${slot} names the file '${show(filename)}', which is not a plain file name`);
    const isWheel = filename.toLowerCase().endsWith('.whl');
    if (kind === 'wheel' && !isWheel) invalid(`${where}: ${label} is listed under wheels, but a wheel's file name ends in .whl`);
    if (kind === 'sdist' && isWheel) invalid(`${where}: ${label} is a wheel, but it is listed as the sdist; list it under wheels`);
  }
  const hashes = file.hashes ?? {};
  const key = Object.keys(hashes).find((algorithm) => algorithm.toLowerCase() === 'sha256');
  const digest = key === undefined ? undefined : hashes[key];
  if (digest === undefined) {
    const others = Object.keys(hashes);
    const has = others.length === 0 ? 'no hashes' : `only ${others.map((a) => show(a)).join(', ')}`;
    throw new LineProblem('lock.unhashed', `${where}: ${label} has no sha256 hash (${has}); every file needs a sha256 hash (${LOCK_AGAIN} record one)`);
  }
  if (!SHA256_HEX.test(digest)) invalid(`${where}: ${label} has sha256 '${show(digest)}', which is not a sha256 digest; expected 64 hex digits`);
  return { filename, sha256: digest.toLowerCase(), kind };
}

/** The `name` key, or else the last segment of the `url` or `path` (the spec lets `name` be left out then). */
function fileNameOf(file: DistFile): string | null {
  if (file.name !== undefined) return file.name;
  let last: string | undefined;
  if (file.url !== undefined) {
    const segment =
      file.url
        .replace(/[?#].*$/s, '')
        .split('/')
        .pop() ?? '';
    try {
      last = decodeURIComponent(segment);
    } catch {
      last = segment;
    }
  } else if (file.path !== undefined) {
    last = file.path.split(/[\\/]/).pop();
  }
  return last === undefined || last === '' ? null : last;
}
