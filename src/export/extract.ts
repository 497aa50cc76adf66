/**
 * Extract the site-packages archive that `getArchive` streams out of the sandbox.
 *
 * The archive is hostile input: its entries were named and shaped by whatever the installed
 * packages did. tar-fs (a patched 3.1.x, held by package-lock.json) does the writing and keeps its own defences
 * (it validates parents, refuses symlinks out of the root, never writes through a symlink, masks
 * mode bits to 0o777); on top of that every entry passes through `judge()` below, which refuses
 * anything that is not a plain file, directory or provably contained symlink. A refused entry is
 * not written; it becomes an `export.unsafe-entry` finding and extraction goes on, so one report
 * lists every problem. Any finding means the export must not be published.
 *
 * Limits: every entry read (written or refused) counts against `maxFiles`, and the data of every
 * entry counts against `maxBytes`. Crossing either records one finding with reason `limit` and
 * stops reading at once (the rest is not drained: a hostile archive may be endless); the result
 * then has `truncated: true` and the destination holds only a prefix of the archive.
 */
import { mkdir, readdir, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract as tarFsExtract, type ExtractOptions as TarFsTypedOptions } from 'tar-fs';
import { InstallError } from '../errors.js';
import { finding, type Finding } from '../core/finding.js';
import { INSTALLED_TREE_LIMITS } from '../core/layout.js';
import { syncBackedFs, type FileDigest, type OnWritten } from './sync-fs.js';
import type { TarHeader as Headers } from '../core/tar-header.js';

export interface ExtractLimits {
  /** Archive entries of any type, written or refused (the root directory entry aside). */
  maxFiles: number;
  /** Bytes of entry data read, written or refused. */
  maxBytes: number;
}

export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = INSTALLED_TREE_LIMITS;

export interface ExtractOptions {
  /** Leading path components to drop; `getArchive` prefixes every entry with `site-packages/`. */
  stripComponents?: number;
  limits?: ExtractLimits;
  /** Aborting rejects with the signal's AbortError, leaving `dest` partly written. */
  signal?: AbortSignal;
  /** Safe entries left out without a finding, by their stripped path (e.g. bytecode caches). */
  leaveOut?: (rel: string) => boolean;
  /** Told of each regular file written, by its posix path relative to `dest`, with the digest of what was written. */
  onWritten?: (rel: string, digest: FileDigest) => void;
}

export interface ExtractResult {
  /** Entries written: files, directories and symlinks. */
  files: number;
  /** Bytes of regular-file data written. */
  bytes: number;
  /** One `export.unsafe-entry` finding per refused entry, plus at most one for a limit. */
  findings: Finding[];
  /** Archive names of written entries whose setuid, setgid or sticky bit was dropped. */
  strippedModes: string[];
  /** True when a limit stopped extraction before the end of the archive. */
  truncated: boolean;
  /** Safe entries not written because `leaveOut` said so. */
  leftOut: number;
}

export type UnsafeReason =
  | 'invalid-name'
  | 'absolute-path'
  | 'parent-traversal'
  | 'empty-path'
  | 'escapes-destination'
  | 'through-symlink'
  | 'type-conflict'
  | 'hardlink'
  | 'device'
  | 'fifo'
  | 'unsupported-type'
  | 'invalid-linkname'
  | 'absolute-symlink'
  | 'symlink-escape'
  | 'symlink-indirect'
  | 'limit';

const REASON_TEXT: Record<UnsafeReason, string> = {
  'invalid-name': 'the name contains a NUL byte',
  'absolute-path': 'the path is absolute',
  'parent-traversal': 'the path contains a `..` component',
  'empty-path': 'the path is empty once the archive prefix is stripped',
  'escapes-destination': 'the path resolves outside the export directory',
  'through-symlink': 'the path goes through a symlink extracted earlier',
  'type-conflict': 'the path or one of its parents was already extracted as another type',
  hardlink: 'hard links are not exported',
  device: 'device files are not exported',
  fifo: 'fifos are not exported',
  'unsupported-type': 'only files, directories and symlinks are exported',
  'invalid-linkname': 'the symlink target is empty or contains a NUL byte',
  'absolute-symlink': 'the symlink target is absolute',
  'symlink-escape': 'the symlink target resolves outside the export directory',
  'symlink-indirect': 'the symlink target climbs with `..` after a named component, or names or passes through a symlink or file',
  limit: 'the archive exceeds the export limits; extraction stopped',
};

/** Mode bits that survive: rwx for owner, group and other. setuid, setgid and sticky are dropped. */
const PERMISSION_BITS = 0o777;
const SPECIAL_BITS = 0o7000;

type Kind = 'file' | 'directory' | 'symlink';

type Verdict = { action: 'skip' } | { action: 'refuse' } | { action: 'stop' } | { action: 'write'; rel: string };

/** tar-fs 3 options that its DefinitelyTyped types (written for tar-fs 2) do not list. */
interface TarFsExtractOptions {
  map: (header: Headers) => Headers;
  ignore: (name: string, header?: Headers) => boolean;
  dmode: number;
  fmode: number;
  umask: number;
  chown: boolean;
  strict: boolean;
  validateSymlinks: boolean;
  fs: ReturnType<typeof syncBackedFs>;
}

class LimitReached extends Error {}

/**
 * Extract `archive` into `dest`, which must be missing or empty. Resolves with what was written
 * and what was refused; rejects with `InstallError` (code `export.extract-failed`) when the
 * archive is malformed or the filesystem refuses a write, and with the AbortError on abort.
 */
export async function extractArchive(archive: NodeJS.ReadableStream | Readable, dest: string, options: ExtractOptions = {}): Promise<ExtractResult> {
  const strip = options.stripComponents ?? 1;
  const limits = options.limits ?? DEFAULT_EXTRACT_LIMITS;
  const root = await prepareDestination(dest);

  const state = new Judge(strip, limits, options.leaveOut ?? (() => false));
  const verdicts = new WeakMap<Headers, Verdict>();

  const tarOptions: TarFsExtractOptions = {
    map(header) {
      const verdict = state.judge(header);
      verdicts.set(header, verdict);
      // tar-fs derives the target path from the mapped name before it asks `ignore`; give it our
      // normalised, stripped name (or the root, for entries that will be ignored anyway).
      header.name = verdict.action === 'write' ? verdict.rel : '.';
      if (typeof header.mode === 'number') header.mode &= PERMISSION_BITS;
      return header;
    },
    ignore(_name, header) {
      const verdict = header ? verdicts.get(header) : undefined;
      if (verdict?.action === 'stop') {
        // Stop reading now rather than draining what may be an endless stream.
        extractor.destroy(new LimitReached());
        return true;
      }
      return verdict?.action !== 'write';
    },
    // Owner may always traverse, read and write what we extract (shebang rewriting, cleanup);
    // group and other lose write.
    dmode: 0o700,
    fmode: 0o600,
    umask: 0o022,
    // We may run as root; never hand files to the sandbox's uids.
    chown: false,
    strict: true,
    validateSymlinks: true,
    fs: syncBackedFs(options.onWritten && written(root, options.onWritten)),
  };
  // The cast only bridges the outdated typings; every option above exists in tar-fs 3.1.
  const extractor = tarFsExtract(root, tarOptions as unknown as TarFsTypedOptions);
  // Destroying the extractor (limit, abort, bad data) also destroys the entry being read. tar-fs
  // listens for errors only on entries it writes, so on one it drains the error would escape as
  // an uncaught exception; the pipeline below still sees the extractor's own error.
  extractor.prependListener('entry', (_header: unknown, entry: NodeJS.EventEmitter) => {
    entry.on('error', () => {});
  });

  try {
    await pipeline(archive, extractor, options.signal ? { signal: options.signal } : {});
  } catch (error: unknown) {
    if (!(error instanceof LimitReached)) {
      if (options.signal?.aborted) throw error;
      throw new InstallError('export.extract-failed', `could not extract the site-packages archive: ${message(error)}`, {
        cause: error,
        hint: 'the archive may be malformed; nothing from it should be used',
      });
    }
  }
  return state.result();
}

/** onWritten in paths relative to `root` (tar-fs writes only beneath it). */
function written(root: string, onWritten: (rel: string, digest: FileDigest) => void): OnWritten {
  return (file, digest) => onWritten(path.relative(root, file).split(path.sep).join('/'), digest);
}

async function prepareDestination(dest: string): Promise<string> {
  await mkdir(dest, { recursive: true });
  const root = await realpath(dest);
  if ((await readdir(root)).length > 0) {
    throw new InstallError('export.dest-not-empty', `extraction directory ${root} is not empty`);
  }
  return root;
}

/** The guard: decides every entry from its header and what was written before it. Pure state, no I/O. */
class Judge {
  private readonly findings: Finding[] = [];
  private readonly strippedModes: string[] = [];
  /** Normalised relative path -> what we made there (including directories tar-fs creates implicitly). */
  private readonly written = new Map<string, Kind>();
  private entries = 0;
  private bytesRead = 0;
  private files = 0;
  private bytes = 0;
  private stopped = false;
  private leftOut = 0;

  constructor(
    private readonly strip: number,
    private readonly limits: ExtractLimits,
    private readonly leaveOut: (rel: string) => boolean,
  ) {}

  result(): ExtractResult {
    return {
      files: this.files,
      bytes: this.bytes,
      findings: this.findings,
      strippedModes: this.strippedModes,
      truncated: this.stopped,
      leftOut: this.leftOut,
    };
  }

  judge(header: Headers): Verdict {
    if (this.stopped) return { action: 'stop' };

    const entry = header.name;
    const type = header.type ?? 'unknown';
    const size = type === 'directory' ? 0 : Math.max(0, header.size ?? 0);
    const linkname = header.linkname ?? undefined;
    const refuse = (reason: UnsafeReason, extra: Record<string, unknown> = {}): Verdict => {
      this.findings.push(
        finding('export.unsafe-entry', 'high', `refused archive entry ${JSON.stringify(entry)}: ${REASON_TEXT[reason]}`, {
          entry,
          type,
          reason,
          ...(linkname !== undefined && (type === 'symlink' || type === 'link') ? { linkname } : {}),
          ...extra,
        }),
      );
      return { action: 'refuse' };
    };

    const parts = entry.split('/').filter((p) => p !== '' && p !== '.');
    const relParts = parts.slice(this.strip);

    // The archive's own top directory (`site-packages/`) is the destination itself.
    const unsafeName = entry.includes('\0') || entry.startsWith('/') || parts.includes('..');
    if (!unsafeName && relParts.length === 0 && type === 'directory') return { action: 'skip' };

    this.entries += 1;
    this.bytesRead += size;
    if (this.entries > this.limits.maxFiles || this.bytesRead > this.limits.maxBytes) {
      const limit = this.entries > this.limits.maxFiles ? 'maxFiles' : 'maxBytes';
      refuse('limit', { limit, max: this.limits[limit] });
      this.stopped = true;
      return { action: 'stop' };
    }

    if (entry.includes('\0')) return refuse('invalid-name');
    if (entry.startsWith('/')) return refuse('absolute-path');
    if (parts.includes('..')) return refuse('parent-traversal');
    if (relParts.length === 0) return refuse('empty-path');
    const rel = relParts.join('/');
    // Defence in depth: after the checks above this cannot trigger.
    if (path.posix.normalize(rel) !== rel || rel.startsWith('../')) return refuse('escapes-destination');
    if (this.leaveOut(rel)) {
      this.leftOut += 1;
      return { action: 'skip' };
    }

    let kind: Kind;
    switch (type) {
      case 'file':
        kind = 'file';
        break;
      case 'directory':
        kind = 'directory';
        break;
      case 'symlink':
        kind = 'symlink';
        break;
      case 'link':
        return refuse('hardlink');
      case 'character-device':
      case 'block-device':
        return refuse('device');
      case 'fifo':
        return refuse('fifo');
      default:
        return refuse('unsupported-type');
    }

    // Never write through, or over, something of another type we made earlier.
    for (let i = 1; i < relParts.length; i += 1) {
      const made = this.written.get(relParts.slice(0, i).join('/'));
      if (made === 'symlink') return refuse('through-symlink');
      if (made === 'file') return refuse('type-conflict');
    }
    const existing = this.written.get(rel);
    if (existing !== undefined && existing !== kind) return refuse('type-conflict');

    if (kind === 'symlink') {
      const reason = this.unsafeLinkTarget(relParts, linkname);
      if (reason) return refuse(reason);
    }

    for (let i = 1; i < relParts.length; i += 1) this.written.set(relParts.slice(0, i).join('/'), 'directory');
    this.written.set(rel, kind);
    this.files += 1;
    if (kind === 'file') this.bytes += size;
    if (((header.mode ?? 0) & SPECIAL_BITS) !== 0 && kind !== 'symlink') this.strippedModes.push(entry);
    return { action: 'write', rel };
  }

  /**
   * A relative target is accepted only in the form `../../a/b`: some `..` first, then names. With
   * every parent of the link a real directory (enforced above), the leading `..` climb real
   * directories and are checked lexically against the link's depth; the names that follow can
   * only descend, so even if one of them is (or later becomes) a symlink, it lands where that
   * symlink, itself checked the same way, points. `..` after a name is refused because the name
   * may be a symlink, which would make the lexical check meaningless. A target that names or
   * passes through a symlink we already made, or passes through a file, is refused too: tar-fs
   * would abort the whole extraction on it.
   */
  private unsafeLinkTarget(linkParts: string[], linkname: string | undefined): UnsafeReason | null {
    if (!linkname || linkname.includes('\0')) return 'invalid-linkname';
    if (linkname.startsWith('/')) return 'absolute-symlink';
    const target = linkname.split('/').filter((p) => p !== '' && p !== '.');
    let up = 0;
    while (target[up] === '..') up += 1;
    const down = target.slice(up);
    const parentDepth = linkParts.length - 1;
    if (up > parentDepth) return 'symlink-escape';
    if (down.includes('..')) return 'symlink-indirect';
    const resolved = [...linkParts.slice(0, parentDepth - up), ...down];
    for (let i = 1; i <= resolved.length; i += 1) {
      const made = this.written.get(resolved.slice(0, i).join('/'));
      if (made === 'symlink' || (made === 'file' && i < resolved.length)) return 'symlink-indirect';
    }
    return null;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
