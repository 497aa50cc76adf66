/**
 * Static scan of the installed site-packages, read straight from the tar stream that `getArchive`
 * produces for `/opt/target/lib/python3.11/site-packages` (every entry starts with
 * `site-packages/`). Nothing is written to disk and nothing from the archive is executed: every
 * regular file is hashed as it streams past, and only the text of the few files the rules need
 * (top-level `*.dist-info/RECORD`, `entry_points.txt`, `METADATA`, top-level `*.pth`) is kept,
 * each capped.
 *
 * The archive is hostile input. A path that is absolute, holds NUL or `..`, or lies outside
 * `site-packages/` becomes a `static.special-file` finding (reason `unsafe path`) and is never
 * used as a key; paths are otherwise kept as they are (control characters included): escaping is
 * the renderer's job, and no path here ever reaches a filesystem call.
 *
 * Rules (all severity high, attributed to the owning distribution when there is one):
 * - `static.unrecorded-file`: a regular file or symlink that no RECORD claims, that several
 *   RECORDs claim, or whose sha256 is not the one its RECORD lists. A row without a usable sha256
 *   counts as a mismatch, except where pip itself writes none: the dist-info's own RECORD (and
 *   signature files), and the `__pycache__/*.pyc` files pip compiles, accepted only when their
 *   source `.py` is hash-recorded by the same distribution. Those .pyc bytes are therefore not
 *   verified: an exporter that needs that guarantee should drop `__pycache__` and recompile.
 * - `static.pth-exec`: a top-level `.pth` with a line that site.py would `exec`, unless its
 *   (name, sha256) is known-good; a top-level `.pth` that is not a regular file is reported too,
 *   since its content cannot be checked.
 * - `static.pth-path`: a top-level `.pth` path line that resolves outside site-packages (an
 *   absolute path, or one climbing with `..`): a directory anyone may write, put on sys.path. Also
 *   (import-roots.ts) an in-site line that a symlink takes outside, that names a file (imported
 *   from as a zip), or that comes past the number of added directories the scan checks.
 * - Import roots (import-roots.ts): site-packages and every in-site directory a top-level `.pth`
 *   puts on sys.path. In each of them:
 *   - `static.startup-hook`: `sitecustomize` / `usercustomize` as a top-level module of any
 *     suffix, a package `__init__`, or a bare symlink;
 *   - `static.stdlib-shadowing`: a top-level module or package named like a standard-library
 *     module (CPython 3.11's `sys.stdlib_module_names`);
 *   - `static.import-shadowing` (shadowing.ts): one distribution's module wins an import over
 *     another's of the same name.
 * - `static.autoload-entry-point` (low, a warning): an entry point in a group a tool loads at its
 *   every start (pytest11, tox, flake8, keyring, setuptools' hooks), unless the tool owns it.
 * - `static.special-file` with reason `reserved name`: a top-level entry named like a file the
 *   export writes itself (`reservedNames`).
 * - `static.script-shadowing`: a console or gui script, or a RECORD row in `bin/` outside
 *   site-packages, named like a tool people run (one finding per distribution and name).
 * - `static.special-file`: symlinks that are absolute, resolve outside site-packages (following
 *   the archive's own symlinks, as the kernel would) or loop; hardlinks; setuid/setgid bits;
 *   devices, fifos and any other type; entries beneath a non-directory; duplicate entries.
 * - `resource.disk`: the archive crossed `maxFiles` or `maxBytes`. Reading stops at once (the
 *   rest is not drained: a hostile stream may be endless), the result has `truncated: true`, and
 *   the "claimed by no RECORD" check is skipped since the RECORD may lie beyond the cut.
 *
 * Limits of what this proves: the RECORD check catches files dropped or changed behind pip's
 * back, not a package that writes a consistent fake dist-info for its own files; callers should
 * compare `distributions` with the lock.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar-stream';
import { InstallError } from '../errors.js';
import { isValidProjectName, normalizeName } from '../lock/normalize.js';
import { finding, type Finding } from '../core/finding.js';
import { INSTALLED_TREE_LIMITS } from '../core/layout.js';
import { parseRecord, type RecordEntry } from '../core/record.js';
import type { TarHeader as Headers } from '../core/tar-header.js';
import type { KnownGoodPth, KnownGoodScripts, KnownGoodStdlib } from '../policy/schema.js';
import { importRoots, pthLinePlace, pthPathLines, rootFindings, type Resolution } from './import-roots.js';

export type ScannedFileType = 'file' | 'directory' | 'symlink' | 'link' | 'other';

export interface ScannedFile {
  /** Relative to site-packages, posix, without the `site-packages/` prefix. */
  path: string;
  type: ScannedFileType;
  mode: number;
  /** Declared size of the entry's data. */
  size: number;
  /** Lowercase hex, regular files only. */
  sha256: string | null;
  /** Symlink target or hardlink name, as the archive has it. */
  linkname: string | null;
  /** Normalised name of the one distribution whose RECORD claims it (or whose dist-info holds it). */
  owner: string | null;
}

export interface Distribution {
  /** PEP 503-normalised. */
  name: string;
  version: string;
  /** The dist-info directory name. */
  distInfo: string;
}

export interface StaticScan {
  /** Every safe entry in archive order, the root directory aside. */
  files: ScannedFile[];
  findings: Finding[];
  /** Sorted by dist-info directory name. */
  distributions: Distribution[];
  /** True when a limit stopped the scan before the end of the archive. */
  truncated: boolean;
}

export interface ScanOptions {
  /** `.pth` files whose executable lines are accepted: by name, sha256, owner and the code they import (acceptedPth). */
  knownGoodPth: KnownGoodPth[];
  /** Tool-named console scripts accepted from their own distribution. */
  knownGoodScripts?: KnownGoodScripts[];
  /** Standard-library backports accepted as a warning, by distribution, file and sha256. */
  knownGoodStdlib?: KnownGoodStdlib[];
  /** Archive entries of any type, the root directory aside. Default 200 000. */
  maxFiles?: number;
  /** Declared data bytes of all entries. Default 8 GiB. */
  maxBytes?: number;
  /** Top-level names the tool itself writes into an export (its manifest): refused, never overwritten. */
  reservedNames?: string[];
  /** Script names that must not be installed; replaces `DEFAULT_SHADOWED` when given. */
  shadowedNames?: string[];
  /** Text kept per interesting file (RECORD, entry_points.txt, METADATA, .pth). Default 8 MiB. */
  maxTextBytes?: number;
  /** Aborting rejects with the signal's AbortError. */
  signal?: AbortSignal;
}

/** System and Python tools a package must not install a script over. */
export const DEFAULT_SHADOWED: readonly string[] = [
  'pip',
  'pip3',
  'pip3.11',
  'python',
  'python3',
  'python3.11',
  'sudo',
  'su',
  'ls',
  'cat',
  'cp',
  'mv',
  'rm',
  'sh',
  'bash',
  'dash',
  'zsh',
  'env',
  'which',
  'git',
  'ssh',
  'scp',
  'curl',
  'wget',
  'gpg',
  'make',
  'gcc',
  'cc',
  'ld',
  'npm',
  'node',
  'npx',
  'docker',
  'kubectl',
  'apt',
  'apt-get',
  'dpkg',
  'systemctl',
  'chmod',
  'chown',
  'id',
  'ps',
  'kill',
  'uv',
  'poetry',
  'pipx',
  'virtualenv',
  'twine',
];

export const DEFAULT_SCAN_LIMITS = INSTALLED_TREE_LIMITS;

const ROOT = 'site-packages';
const DEFAULT_MAX_TEXT_BYTES = 8 * 1024 * 1024;
/** All kept text together; past it, further interesting files are treated as oversized. */
const MAX_KEPT_TOTAL = 256 * 1024 * 1024;
/** Linux gives up resolving after 40 symlinks (ELOOP). */
const MAX_SYMLINK_FOLLOWS = 40;
/** Linux refuses longer symlink targets (PATH_MAX - 1). */
const MAX_LINKNAME = 4095;
/** Path components walked across all symlinks; legitimate trees need a handful per link. */
const SYMLINK_STEP_BUDGET = 200_000;
const SETID_BITS = 0o6000;
const MAX_PTH_LINES = 3;
const MAX_LINE_CHARS = 200;

/** Files whose text the rules read. */
const INTERESTING = /^(?:[^/]+\.dist-info\/(?:RECORD|entry_points\.txt|METADATA)|[^/]+\.pth)$/;
/** Files in a dist-info that pip lists in RECORD without a hash. */
const UNHASHED_IN_DIST_INFO = new Set(['RECORD', 'RECORD.jws', 'RECORD.p7s']);
/** `dir/__pycache__/mod.cpython-311[.opt-1].pyc`: pip records the files it compiles without a hash. */
const PYCACHE_PYC = /^(?:(.*)\/)?__pycache__\/([^/.]+)\.[^/]+\.pyc$/;
const SCRIPT_GROUPS = new Set(['console_scripts', 'gui_scripts']);
/**
 * Entry-point groups that a tool loads, and so runs, whenever it starts, with no import of the
 * package by anyone: its code runs inside the developer's pytest, tox, flake8 or setuptools. Each
 * maps to the distributions that own the group (their own entries are how the tool works).
 */
export const AUTOLOAD_GROUPS: ReadonlyMap<string, readonly string[]> = new Map([
  ['pytest11', ['pytest']],
  ['tox', ['tox']],
  ['flake8.extension', ['flake8', 'pycodestyle', 'pyflakes', 'mccabe']],
  ['flake8.report', ['flake8']],
  ['keyring.backends', ['keyring']],
  ['hypothesis', ['hypothesis']],
  ['pylsp', ['python-lsp-server']],
  ['setuptools.finalize_distribution_options', ['setuptools']],
  ['distutils.setup_keywords', ['setuptools']],
  ['distutils.commands', ['setuptools', 'wheel']],
  ['egg_info.writers', ['setuptools']],
  ['setuptools.file_finders', ['setuptools']],
]);

/**
 * Scan a site-packages archive. Resolves with every safe entry and the findings; rejects with
 * `InstallError` (code `observe.scan-failed`) when the archive is malformed, and with the
 * AbortError on abort.
 */
export async function scanSitePackages(archive: Readable, options: ScanOptions): Promise<StaticScan> {
  const collector = new Collector(
    options.maxFiles ?? DEFAULT_SCAN_LIMITS.maxFiles,
    options.maxBytes ?? DEFAULT_SCAN_LIMITS.maxBytes,
    options.maxTextBytes ?? DEFAULT_MAX_TEXT_BYTES,
  );
  const extractor = extract();
  extractor.on('entry', (header, entry, next) => {
    // Destroying the extractor (limit, abort, bad data) destroys the entry being read; without a
    // listener its error would escape as an uncaught exception.
    entry.on('error', () => {});
    collector.entry(header, entry).then(
      () => next(),
      (error: unknown) => next(error instanceof Error ? error : new Error(String(error))),
    );
  });

  try {
    await pipeline(archive, extractor, options.signal ? { signal: options.signal } : {});
  } catch (error: unknown) {
    if (!collector.stopped) {
      if (options.signal?.aborted) throw error;
      throw new InstallError('observe.scan-failed', `could not read the site-packages archive: ${errorMessage(error)}`, {
        cause: error,
        hint: 'the archive may be malformed; nothing from it should be trusted',
      });
    }
  }
  return analyze(collector, options);
}

class LimitReached extends Error {}

/** What the rules need from an entry's data stream (tar-stream's is a streamx Readable). */
type EntryStream = AsyncIterable<unknown>;

interface Collected {
  file: ScannedFile;
  /** The tar type as read (for `other` entries). */
  rawType: string;
}

interface KeptText {
  chunks: Buffer[];
  bytes: number;
  oversized: boolean;
}

/** Reads the stream: one call per entry, in order. Records entries, hashes, kept text and limits. */
class Collector {
  readonly entries: Collected[] = [];
  readonly byPath = new Map<string, Collected>();
  readonly texts = new Map<string, KeptText>();
  readonly findings: Finding[] = [];
  limitFinding: Finding | null = null;
  stopped = false;
  private count = 0;
  private bytes = 0;
  private keptTotal = 0;

  constructor(
    private readonly maxFiles: number,
    private readonly maxBytes: number,
    private readonly maxTextBytes: number,
  ) {}

  async entry(header: Headers, stream: EntryStream): Promise<void> {
    const name = header.name;
    const rawType = header.type ?? 'unknown';
    const isDirectory = rawType === 'directory';
    const declared = typeof header.size === 'number' && header.size > 0 ? header.size : 0;
    const rel = relativePath(name);

    // A directory's stream never ends in tar-stream (its data, if any, is not attached to it).
    const done = isDirectory ? async (): Promise<void> => {} : () => consume(stream);

    if (rel === '' && isDirectory) return done(); // `site-packages/` itself

    this.count += 1;
    this.bytes += isDirectory ? 0 : declared;
    if (this.count > this.maxFiles || this.bytes > this.maxBytes) {
      const limit = this.count > this.maxFiles ? 'maxFiles' : 'maxBytes';
      const max = limit === 'maxFiles' ? this.maxFiles : this.maxBytes;
      this.limitFinding = finding('resource.disk', 'high', `the site-packages archive exceeds the scan limit (${limit} ${max}); the scan stopped`, {
        files: this.count,
        bytes: this.bytes,
        limit,
        max,
      });
      this.stopped = true;
      // Stop at once rather than draining what may be an endless stream.
      throw new LimitReached();
    }

    if (rel === null || rel === '') {
      this.findings.push(
        finding('static.special-file', 'high', `archive entry ${name} has an unsafe path`, {
          path: name,
          type: rawType,
          reason: 'unsafe path',
        }),
      );
      return done();
    }
    if (this.byPath.has(rel)) {
      this.findings.push(
        finding('static.special-file', 'high', `${rel} appears twice in the archive`, {
          path: rel,
          type: rawType,
          reason: 'duplicate entry',
        }),
      );
      return done();
    }

    const type = scannedType(rawType);
    const mode = typeof header.mode === 'number' && Number.isFinite(header.mode) ? header.mode : 0;
    let sha256: string | null = null;
    if (type === 'file') {
      const hash = createHash('sha256');
      const kept = INTERESTING.test(rel) ? this.keep(rel) : null;
      await consume(stream, (chunk) => {
        hash.update(chunk);
        if (kept) this.append(kept, chunk);
      });
      sha256 = hash.digest('hex');
    } else {
      await done();
    }

    const collected: Collected = {
      file: { path: rel, type, mode, size: declared, sha256, linkname: header.linkname ?? null, owner: null },
      rawType,
    };
    this.entries.push(collected);
    this.byPath.set(rel, collected);
  }

  private keep(rel: string): KeptText {
    const kept: KeptText = { chunks: [], bytes: 0, oversized: false };
    this.texts.set(rel, kept);
    return kept;
  }

  /** Keep at most `maxTextBytes` per file (the prefix) and `MAX_KEPT_TOTAL` overall. */
  private append(kept: KeptText, chunk: Buffer): void {
    if (kept.oversized) return;
    const room = Math.min(this.maxTextBytes - kept.bytes, MAX_KEPT_TOTAL - this.keptTotal);
    const part = chunk.length > room ? chunk.subarray(0, Math.max(0, room)) : chunk;
    if (part.length > 0) {
      kept.chunks.push(Buffer.from(part));
      kept.bytes += part.length;
      this.keptTotal += part.length;
    }
    if (part.length < chunk.length) kept.oversized = true;
  }
}

async function consume(stream: EntryStream, onChunk?: (chunk: Buffer) => void): Promise<void> {
  for await (const chunk of stream) {
    onChunk?.(chunk as Buffer);
  }
}

/**
 * The entry's path inside site-packages: `''` for the root, null when the name is absolute,
 * holds NUL or a `..` component, or is not under `site-packages/`.
 */
function relativePath(name: string): string | null {
  if (name.includes('\0') || name.startsWith('/')) return null;
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts[0] !== ROOT || parts.includes('..')) return null;
  return parts.slice(1).join('/');
}

function scannedType(rawType: string): ScannedFileType {
  switch (rawType) {
    case 'file':
    case 'directory':
    case 'symlink':
    case 'link':
      return rawType;
    default:
      return 'other';
  }
}

interface Claim {
  distInfo: string;
  name: string;
  /** Null when the row has no usable sha256. */
  sha256: string | null;
  /** The dist-info's own RECORD or signature: listed without a hash by design. */
  unhashed: boolean;
}

interface Dist extends Distribution {
  /** RECORD rows, when the dist-info holds a readable RECORD. */
  record: RecordEntry[] | null;
}

/** Everything after the stream: pure. */
function analyze(collector: Collector, options: ScanOptions): StaticScan {
  const { entries, byPath } = collector;
  const text = (rel: string): { text: string; oversized: boolean } | null => {
    const kept = collector.texts.get(rel);
    return kept ? { text: Buffer.concat(kept.chunks).toString('utf8'), oversized: kept.oversized } : null;
  };
  const findings: Finding[] = [...collector.findings];

  // Distributions: top-level `<name>-<version>.dist-info` directories, listed or implied by their contents.
  const dists = new Map<string, Dist>();
  for (const { file } of entries) {
    const slash = file.path.indexOf('/');
    const top = slash < 0 ? file.path : file.path.slice(0, slash);
    if ((slash < 0 && file.type !== 'directory') || dists.has(top)) continue;
    const parsed = parseDistInfo(top);
    if (parsed) dists.set(top, { ...parsed, distInfo: top, record: null });
  }
  const distList = [...dists.values()].sort((a, b) => compare(a.distInfo, b.distInfo));

  // Claims from every RECORD.
  const claims = new Map<string, Claim[]>();
  for (const dist of distList) {
    if (!dist.version) dist.version = metadataVersion(text(`${dist.distInfo}/METADATA`)?.text ?? '');
    const recordPath = `${dist.distInfo}/RECORD`;
    if (byPath.get(recordPath)?.file.type !== 'file') continue;
    const record = text(recordPath);
    if (!record) continue;
    if (record.oversized) {
      findings.push(
        finding(
          'static.unrecorded-file',
          'high',
          `${recordPath} is too large to check; its files count as unrecorded`,
          { path: recordPath, reason: 'RECORD too large', size: byPath.get(recordPath)?.file.size ?? null },
          dist.name,
        ),
      );
      continue;
    }
    dist.record = parseRecord(record.text);
    const claimed = new Set<string>([recordPath]);
    addClaim(claims, recordPath, { distInfo: dist.distInfo, name: dist.name, sha256: null, unhashed: true });
    for (const row of dist.record) {
      const rel = insideSitePackages(row.path);
      if (rel === null || claimed.has(rel)) continue;
      claimed.add(rel);
      const unhashed = rel.startsWith(`${dist.distInfo}/`) && UNHASHED_IN_DIST_INFO.has(rel.slice(dist.distInfo.length + 1));
      addClaim(claims, rel, { distInfo: dist.distInfo, name: dist.name, sha256: row.sha256, unhashed });
    }
  }

  // Owners first, so every finding below can be attributed.
  for (const { file } of entries) {
    const fileClaims = claims.get(file.path) ?? [];
    const [only] = fileClaims;
    if (fileClaims.length === 1 && only) file.owner = only.name;
    else if (fileClaims.length === 0) file.owner = dists.get(file.path.split('/')[0] ?? '')?.name ?? null;
  }

  const links = new Map<string, string>();
  for (const { file } of entries) if (file.type === 'symlink' && file.linkname) links.set(file.path, file.linkname);
  const symlinkBudget = { steps: SYMLINK_STEP_BUDGET };
  // The `.pth` files a reviewed entry accepts, with the entry: decided once, before any rule reads them.
  const accepted = new Map<string, KnownGoodPth | 'nspkg'>();
  for (const { file } of entries) {
    if (file.path.includes('/') || !file.path.endsWith('.pth') || file.type !== 'file') continue;
    const kept = text(file.path);
    if (!kept || kept.oversized) continue;
    const verdict = acceptedPth(file, executableLines(kept.text), options.knownGoodPth, byPath, claims);
    if (verdict) accepted.set(file.path, verdict);
  }

  const reserved = new Set(options.reservedNames ?? []);
  for (const { file, rawType } of entries) {
    const special = (message: string, evidence: Record<string, unknown>): void => {
      findings.push(finding('static.special-file', 'high', `${file.path}: ${message}`, { path: file.path, ...evidence }, file.owner));
    };

    // Our own names: the export writes its manifest there, so nothing installed may hold it.
    if (!file.path.includes('/') && reserved.has(file.path)) {
      // A directory is claimed by no RECORD: it belongs to whoever owns what is inside it.
      const owner = file.owner ?? entries.find((e) => e.file.owner !== null && e.file.path.startsWith(`${file.path}/`))?.file.owner ?? null;
      findings.push(
        finding(
          'static.special-file',
          'high',
          `${file.path}: ${file.type} named like a file sandbox-install writes into the export`,
          { path: file.path, type: file.type, reason: 'reserved name' },
          owner,
        ),
      );
    }

    // static.special-file
    const parent = nonDirectoryParent(file.path, byPath);
    if (parent !== null) special('lies beneath a non-directory', { parent, reason: 'path through a non-directory' });
    if (file.type === 'symlink') {
      const reason = unsafeSymlink(file.path, file.linkname, links, symlinkBudget);
      if (reason) special(`symlink to ${file.linkname ?? ''} (${reason})`, { linkname: file.linkname, reason });
    } else if (file.type === 'link') {
      special(`hardlink to ${file.linkname ?? ''}`, { linkname: file.linkname, reason: 'hardlink' });
    } else if (file.type === 'other') {
      const reason = rawType === 'character-device' || rawType === 'block-device' ? 'device' : rawType === 'fifo' ? 'fifo' : 'unsupported type';
      special(`${rawType} entry (${reason})`, { type: rawType, reason });
    }
    if ((file.mode & SETID_BITS) !== 0) {
      special('setuid/setgid bit set', { mode: file.mode.toString(8).padStart(4, '0'), reason: 'setuid/setgid' });
    }

    // static.pth-exec
    if (!file.path.includes('/') && file.path.endsWith('.pth') && file.type !== 'directory') {
      const kept = text(file.path);
      const pth = accepted.has(file.path) ? null : pthFinding(file, kept, byPath);
      if (pth) findings.push(pth);
      const outside = file.type === 'file' && !accepted.has(file.path) ? pthPathsOutside(kept?.text ?? '') : [];
      if (outside.length > 0) {
        findings.push(
          finding(
            'static.pth-path',
            'high',
            `${file.path} puts ${outside[0] ?? ''}${outside.length > 1 ? ` and ${outside.length - 1} more` : ''} on sys.path: a place outside site-packages`,
            { path: file.path, entries: outside.slice(0, MAX_PTH_LINES).map((line) => line.slice(0, MAX_LINE_CHARS)) },
            file.owner,
          ),
        );
      }
    }

    // static.unrecorded-file
    if (file.type === 'file' || file.type === 'symlink') {
      const recorded = recordFinding(file, claims, collector.stopped);
      if (recorded) findings.push(recorded);
    }
  }

  findings.push(...scriptFindings(distList, text, new Set(options.shadowedNames ?? DEFAULT_SHADOWED), options.knownGoodScripts ?? []));
  findings.push(...autoloadFindings(distList, text));
  // What Python imports from site-packages and from the directories its `.pth` files add.
  const files = entries.map((e) => e.file);
  const roots = importRoots({
    files,
    // An accepted .pth's code may add directories of its own (cmeel's prefix): they are import roots like its path lines.
    text: (rel) => {
      const kept = text(rel)?.text ?? null;
      const entry = accepted.get(rel);
      return kept !== null && entry !== undefined && entry !== 'nspkg' && entry.adds ? `${kept}\n${entry.adds.join('\n')}` : kept;
    },
    resolve: (rel) => resolveInArchive(rel, links, symlinkBudget),
  });
  findings.push(...roots.findings, ...reviewedBackports(rootFindings(roots.roots, files), byPath, options.knownGoodStdlib ?? []));
  if (collector.limitFinding) findings.push(collector.limitFinding);

  return {
    files: entries.map((e) => e.file),
    findings,
    distributions: distList.map(({ name, version, distInfo }) => ({ name, version, distInfo })),
    truncated: collector.stopped,
  };
}

function addClaim(claims: Map<string, Claim[]>, rel: string, claim: Claim): void {
  const list = claims.get(rel);
  if (list) list.push(claim);
  else claims.set(rel, [claim]);
}

/** `Foo_Bar-1.2.dist-info` -> foo-bar, 1.2. Null unless the name is a valid project name. */
function parseDistInfo(dir: string): { name: string; version: string } | null {
  if (!dir.endsWith('.dist-info')) return null;
  const stem = dir.slice(0, -'.dist-info'.length);
  const dash = stem.indexOf('-');
  const name = dash < 0 ? stem : stem.slice(0, dash);
  if (!isValidProjectName(name)) return null;
  return { name: normalizeName(name), version: dash < 0 ? '' : stem.slice(dash + 1) };
}

/** The `Version:` header of a METADATA file (headers end at the first blank line). */
function metadataVersion(metadata: string): string {
  for (const line of metadata.split(/\r\n|\r|\n/)) {
    if (line.trim() === '') break;
    const match = /^Version:[ \t]*(.*?)[ \t]*$/i.exec(line);
    if (match) return match[1] ?? '';
  }
  return '';
}

/** The normalised posix form of a RECORD path, or null when it does not stay inside site-packages. */
function insideSitePackages(recordPath: string): string | null {
  if (recordPath.startsWith('/') || recordPath.includes('\0')) return null;
  const normal = path.posix.normalize(recordPath).replace(/\/+$/, '');
  if (normal === '.' || normal === '..' || normal.startsWith('../')) return null;
  return normal;
}

/** The nearest proper ancestor that the archive holds as something other than a directory. */
function nonDirectoryParent(rel: string, byPath: Map<string, Collected>): string | null {
  let slash = rel.indexOf('/');
  while (slash >= 0) {
    const ancestor = rel.slice(0, slash);
    const found = byPath.get(ancestor);
    if (found && found.file.type !== 'directory') return ancestor;
    slash = rel.indexOf('/', slash + 1);
  }
  return null;
}

/**
 * Resolve a symlink the way the kernel would, inside the archive: start in the link's directory,
 * follow the archive's own symlinks, and report when resolution climbs above site-packages,
 * meets an absolute target, or loops. Names the archive does not hold count as directories.
 * `budget` bounds the work across all links (a hostile archive can hold many long chains); a
 * link left unresolved when it runs out is reported rather than trusted.
 */
function unsafeSymlink(linkPath: string, linkname: string | null, links: Map<string, string>, budget: { steps: number }): string | null {
  if (!linkname || linkname.includes('\0') || linkname.length > MAX_LINKNAME) return 'invalid symlink target';
  if (linkname.startsWith('/')) return 'absolute symlink';
  const walked = walk(linkPath.split('/').slice(0, -1), linkname, links, budget);
  return 'reason' in walked ? walked.reason : null;
}

/** Where a normalised path relative to site-packages leads, following the archive's symlinks (the last component's too). */
function resolveInArchive(rel: string, links: Map<string, string>, budget: { steps: number }): Resolution {
  return walk([], rel, links, budget);
}

/** Walk `target`'s components from the directory `from` (components relative to site-packages). */
function walk(from: string[], target: string, links: Map<string, string>, budget: { steps: number }): Resolution {
  // `resolved[i]` is the path of the first i+1 components reached so far.
  const resolved: string[] = [];
  for (const part of from) resolved.push(resolved.length ? `${resolved.at(-1)}/${part}` : part);
  // Components still to walk, next one last.
  const pending = target.split('/').reverse();
  let follows = 0;
  for (let part = pending.pop(); part !== undefined; part = pending.pop()) {
    budget.steps -= 1;
    if (budget.steps < 0) return { reason: 'symlink too complex to resolve' };
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (resolved.length === 0) return { reason: 'symlink escapes site-packages' };
      resolved.pop();
      continue;
    }
    const here = resolved.length ? `${resolved.at(-1)}/${part}` : part;
    const linked = links.get(here);
    if (linked === undefined) {
      resolved.push(here);
      continue;
    }
    follows += 1;
    if (follows > MAX_SYMLINK_FOLLOWS) return { reason: 'symlink loop' };
    if (linked.startsWith('/')) return { reason: 'symlink escapes site-packages' };
    for (const next of linked.split('/').reverse()) pending.push(next);
  }
  return { path: resolved.at(-1) ?? '' };
}

/** Lines site.py would `exec`: those starting with `import ` or `import\t` (CPython 3.11 `addpackage`). */
function executableLines(pth: string): string[] {
  return pth.split(/\r\n|\r|\n/).filter((line) => line.startsWith('import ') || line.startsWith('import\t'));
}

/**
 * Path lines of a `.pth` that site.py would add to sys.path from outside site-packages: it joins
 * each line (right-stripped) to the site dir, so an absolute line or one climbing with `..` names
 * a directory anyone may write (`/tmp`, `/var/tmp`). Comments, blank and import lines aside.
 */
export function pthPathsOutside(pth: string): string[] {
  return pthPathLines(pth).filter((line) => pthLinePlace(line).outside);
}

/**
 * A `static.stdlib-shadowing` finding for a file a reviewed entry names (its distribution, path
 * and exact sha256) becomes `static.stdlib-backport`, a warning: the module is the backport the
 * entry read, and with the export on PYTHONPATH it still replaces Python's own. Any other file,
 * owner or content stays a failing shadow.
 */
function reviewedBackports(found: Finding[], byPath: Map<string, Collected>, entries: readonly KnownGoodStdlib[]): Finding[] {
  if (entries.length === 0) return found;
  return found.map((f) => {
    if (f.rule !== 'static.stdlib-shadowing' || typeof f.evidence.path !== 'string') return f;
    const file = byPath.get(f.evidence.path)?.file;
    const entry = entries.find((e) => e.path === f.evidence.path && normalizeName(e.distribution) === file?.owner && e.sha256 === file.sha256);
    if (!entry || file?.type !== 'file') return f;
    return finding(
      'static.stdlib-backport',
      'low',
      `${file.path} is ${file.owner}'s reviewed backport of the standard library's ${String(f.evidence.module)}: with the export on PYTHONPATH it replaces Python 3.11's own`,
      { ...f.evidence, sha256: file.sha256, ...(entry.reason ? { reason: entry.reason } : {}) },
      f.package,
    );
  });
}

/** A `.pth` no reviewed entry accepts (acceptedPth was asked first). */
function pthFinding(file: ScannedFile, kept: { text: string; oversized: boolean } | null, byPath: Map<string, Collected>): Finding | null {
  const report = (message: string, evidence: Record<string, unknown>): Finding =>
    finding('static.pth-exec', 'high', `${file.path} ${message}`, { path: file.path, ...evidence }, file.owner);

  if (file.type !== 'file') {
    // site.py follows a symlinked .pth; its content is somewhere we did not read.
    return report('is not a regular file, so its lines cannot be checked', { lines: [], linkname: file.linkname, type: file.type });
  }
  const all = executableLines(kept?.text ?? '');
  const lines = all.slice(0, MAX_PTH_LINES).map((line) => line.slice(0, MAX_LINE_CHARS));
  if (kept?.oversized) return report('is too large to check', { lines, size: file.size });
  if (lines.length === 0) return null;
  // What a reviewer adds to a policy to accept exactly these bytes, from this owner, running this code.
  const allow = allowanceFor(file, all, byPath);
  return report(`has lines that run at every interpreter start; once reviewed, accept exactly this file with "knownGoodPth": [${JSON.stringify(allow)}]`, {
    lines,
    allow,
  });
}

/**
 * The entry that accepts this `.pth` (or 'nspkg' for setuptools' namespace template), or null.
 * An entry accepts it when the name and sha256 match, the owner is the entry's distribution (when
 * it names one), and every module the lines import that the same distribution ships is listed in
 * `imports` with the sha256 it has here, and every listed file is there with that sha256.
 */
function acceptedPth(
  file: ScannedFile,
  lines: string[],
  entries: readonly KnownGoodPth[],
  byPath: Map<string, Collected>,
  claims: Map<string, Claim[]>,
): KnownGoodPth | 'nspkg' | null {
  if (lines.length === 0) return null;
  if (file.owner !== null && file.path.endsWith('-nspkg.pth') && lines.every((line) => namespaceTemplate(line, file.owner!, claims))) return 'nspkg';
  const imported = new Map(importedFiles(file, lines, byPath).map((f) => [f.path, f.sha256]));
  return (
    entries.find((entry) => {
      if (entry.name !== file.path || entry.sha256.toLowerCase() !== file.sha256) return false;
      if (entry.distribution !== undefined && normalizeName(entry.distribution) !== file.owner) return false;
      const listed = new Map((entry.imports ?? []).map((i) => [i.path, i.sha256.toLowerCase()]));
      for (const [rel, sha256] of imported) if (listed.get(rel) !== sha256) return false;
      for (const [rel, sha256] of listed) {
        const there = byPath.get(rel)?.file;
        if (there?.type !== 'file' || there.sha256 !== sha256 || there.owner !== file.owner) return false;
      }
      return true;
    }) ?? null
  );
}

/** The knownGoodPth entry that would accept this file as it is. */
function allowanceFor(file: ScannedFile, lines: string[], byPath: Map<string, Collected>): KnownGoodPth {
  const imports = importedFiles(file, lines, byPath).map((f) => ({ path: f.path, sha256: f.sha256 ?? '' }));
  return {
    name: file.path,
    sha256: file.sha256 ?? '',
    ...(file.owner !== null ? { distribution: file.owner } : {}),
    ...(imports.length > 0 ? { imports } : {}),
  };
}

/**
 * The files of the `.pth`'s own distribution that its lines import: for each top-level module
 * named by an `import` or `from … import` statement or an `__import__('…')` call, the module
 * (`name.py`, an extension `name*.so`, a sourceless `name.pyc`) or the package's `__init__`.
 * Reading more names than the lines import only makes acceptance stricter.
 */
function importedFiles(file: ScannedFile, lines: string[], byPath: Map<string, Collected>): ScannedFile[] {
  const names = new Set<string>();
  for (const line of lines) {
    for (const statement of line.split(';')) {
      const s = statement.trim();
      const imported = /^import\s+(.+)$/.exec(s)?.[1];
      if (imported !== undefined) for (const part of imported.split(',')) names.add(part.trim().split(/[\s.]/)[0] ?? '');
      const from = /^from\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(s)?.[1];
      if (from !== undefined) names.add(from);
    }
    for (const call of line.matchAll(/__import__\(\s*['"]([A-Za-z_][A-Za-z0-9_]*)/g)) names.add(call[1] ?? '');
  }
  const modules = [...names].filter((name) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(name));
  const found: ScannedFile[] = [];
  for (const [rel, { file: candidate }] of byPath) {
    if (candidate.type !== 'file' || candidate.owner !== file.owner || file.owner === null) continue;
    if (modules.some((name) => isModuleFile(rel, name))) found.push(candidate);
  }
  return found.sort((a, b) => compare(a.path, b.path));
}

function isModuleFile(rel: string, name: string): boolean {
  if (rel === `${name}.py` || rel === `${name}.pyc` || rel === `${name}/__init__.py`) return true;
  const extension = /^(?:([^/]+)\/)?([^/.]+)(?:\.[^/]*)?\.so$/.exec(rel);
  return extension !== null && (extension[1] === undefined ? extension[2] === name : extension[1] === name && extension[2] === '__init__');
}

/**
 * setuptools' namespace-package line (its `_nspkg_tmpl`, written into `*-nspkg.pth` by
 * `install_egg_info` and by wheel builds of packages with `namespace_packages`): true when the
 * line is exactly the template for the namespace it names, and that namespace is a directory the
 * owner's RECORD holds files in. The template only appends that directory to the namespace
 * module's `__path__`.
 */
function namespaceTemplate(line: string, owner: string, claims: Map<string, Claim[]>): boolean {
  const named = /\*\(((?:'[A-Za-z_][A-Za-z0-9_]*', ?)*'[A-Za-z_][A-Za-z0-9_]*',?)\)/.exec(line)?.[1];
  if (named === undefined) return false;
  const parts = [...named.matchAll(/'([A-Za-z_][A-Za-z0-9_]*)'/g)].map((m) => m[1] ?? '');
  if (line !== nspkgLine(parts)) return false;
  const dir = `${parts.join('/')}/`;
  for (const [rel, list] of claims) if (rel.startsWith(dir) && list.some((c) => c.name === owner)) return true;
  return false;
}

/** The line setuptools writes for namespace `parts` (Python's repr of the tuple and strings). */
function nspkgLine(parts: string[]): string {
  const pkg = `'${parts.join('.')}'`;
  const tuple = parts.length === 1 ? `('${parts[0] ?? ''}',)` : `(${parts.map((p) => `'${p}'`).join(', ')})`;
  const statements = [
    'import sys, types, os',
    'has_mfs = sys.version_info > (3, 5)',
    `p = os.path.join(sys._getframe(1).f_locals['sitedir'], *${tuple})`,
    "importlib = has_mfs and __import__('importlib.util')",
    "has_mfs and __import__('importlib.machinery')",
    `m = has_mfs and sys.modules.setdefault(${pkg}, importlib.util.module_from_spec(importlib.machinery.PathFinder.find_spec(${pkg}, [os.path.dirname(p)])))`,
    `m = m or sys.modules.setdefault(${pkg}, types.ModuleType(${pkg}))`,
    "mp = (m or []) and m.__dict__.setdefault('__path__',[])",
    '(p not in mp) and mp.append(p)',
  ];
  if (parts.length > 1) statements.push(`m and setattr(sys.modules['${parts.slice(0, -1).join('.')}'], '${parts.at(-1) ?? ''}', m)`);
  return statements.join(';');
}

function recordFinding(file: ScannedFile, claims: Map<string, Claim[]>, truncated: boolean): Finding | null {
  const fileClaims = claims.get(file.path) ?? [];
  const [only] = fileClaims;
  if (!only) {
    if (truncated) return null;
    return finding('static.unrecorded-file', 'high', `${file.path} is not listed in any RECORD`, { path: file.path, claimedBy: [] }, file.owner);
  }
  if (fileClaims.length > 1) {
    const claimedBy = fileClaims.map((c) => c.name);
    return finding(
      'static.unrecorded-file',
      'high',
      `${file.path} is claimed by several RECORDs: ${claimedBy.join(', ')}`,
      { path: file.path, claimedBy },
      null,
    );
  }
  if (file.type !== 'file' || only.unhashed || only.sha256 === file.sha256) return null;
  if (only.sha256 === null && compiledByPip(file.path, only, claims)) return null;
  return finding(
    'static.unrecorded-file',
    'high',
    only.sha256 === null
      ? `${file.path} is listed in ${only.distInfo}/RECORD without a sha256`
      : `${file.path} differs from its RECORD hash in ${only.distInfo}/RECORD`,
    { path: file.path, recorded: only.sha256, actual: file.sha256 },
    only.name,
  );
}

/** A `__pycache__` .pyc recorded without a hash, whose source the same RECORD lists with one. */
function compiledByPip(rel: string, claim: Claim, claims: Map<string, Claim[]>): boolean {
  const match = PYCACHE_PYC.exec(rel);
  if (!match) return false;
  const source = `${match[1] === undefined ? '' : `${match[1]}/`}${match[2] ?? ''}.py`;
  return (claims.get(source) ?? []).some((c) => c.distInfo === claim.distInfo && c.sha256 !== null);
}

/**
 * Entry points as importlib.metadata reads them: `[section]` headers, `name = value` pairs,
 * blank lines and `#` comments skipped.
 */
function entryPoints(text: string, groups: { has(group: string): boolean }): Array<{ group: string; name: string; value: string }> {
  const found: Array<{ group: string; name: string; value: string }> = [];
  let group: string | null = null;
  for (const raw of text.split(/\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('[') && line.endsWith(']')) {
      group = line.slice(1, -1).trim();
      continue;
    }
    const eq = line.indexOf('=');
    if (group === null || !groups.has(group) || eq < 0) continue;
    found.push({ group, name: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
  }
  return found;
}

function scriptFindings(dists: Dist[], text: (rel: string) => { text: string } | null, shadowed: Set<string>, known: readonly KnownGoodScripts[]): Finding[] {
  const findings: Finding[] = [];
  for (const dist of dists) {
    // The tool's own distribution installing the tool's own name (pip's pip) is the tool, not a shadow of it.
    const own = new Set(known.filter((k) => normalizeName(k.distribution) === dist.name).flatMap((k) => k.scripts));
    const scripts = new Map<string, Record<string, unknown>>();
    const evidenceFor = (script: string): Record<string, unknown> => {
      const existing = scripts.get(script);
      if (existing) return existing;
      const created: Record<string, unknown> = { script };
      scripts.set(script, created);
      return created;
    };

    for (const ep of entryPoints(text(`${dist.distInfo}/entry_points.txt`)?.text ?? '', SCRIPT_GROUPS)) {
      if (!shadowed.has(basename(ep.name))) continue;
      const evidence = evidenceFor(ep.name);
      evidence.group ??= ep.group;
      evidence.entryPoint ??= ep.value;
    }
    for (const row of dist.record ?? []) {
      if (row.path.startsWith('/') || row.path.includes('\0')) continue;
      const parts = path.posix.normalize(row.path).split('/');
      const name = parts.at(-1) ?? '';
      if (parts[0] !== '..' || parts.at(-2) !== 'bin' || !shadowed.has(name)) continue;
      evidenceFor(name).recordPath ??= row.path;
    }

    for (const [script, evidence] of scripts) {
      if (own.has(basename(script))) continue;
      const allow = { distribution: dist.name, scripts: [basename(script)] };
      findings.push(
        finding(
          'static.script-shadowing',
          'high',
          `${dist.name} installs a script named ${script}, like a system or Python tool; if ${dist.name} is that tool, accept it with "knownGoodScripts": [${JSON.stringify(allow)}]`,
          { ...evidence, allow },
          dist.name,
        ),
      );
    }
  }
  return findings;
}

/** Entry points that a tool runs at its every start, reported (low) so a reviewer sees them. */
function autoloadFindings(dists: Dist[], text: (rel: string) => { text: string } | null): Finding[] {
  const findings: Finding[] = [];
  for (const dist of dists) {
    for (const ep of entryPoints(text(`${dist.distInfo}/entry_points.txt`)?.text ?? '', AUTOLOAD_GROUPS)) {
      if (AUTOLOAD_GROUPS.get(ep.group)?.includes(dist.name)) continue;
      findings.push(
        finding(
          'static.autoload-entry-point',
          'low',
          `${dist.name} registers ${ep.name} in ${ep.group}: it runs whenever that tool starts, without an import`,
          { group: ep.group, name: ep.name.slice(0, MAX_LINE_CHARS), object: ep.value.slice(0, MAX_LINE_CHARS) },
          dist.name,
        ),
      );
    }
  }
  return findings;
}

function basename(name: string): string {
  return name.slice(name.lastIndexOf('/') + 1);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
