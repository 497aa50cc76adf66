/**
 * Provenance of the installed tree: every file that a locked wheel put into site-packages is
 * compared with that wheel itself, read on the host from the verified file in the proxy's cache,
 * never with the installed RECORD (which anything that can write the target can also rewrite).
 *
 * For each distribution installed from a locked wheel:
 * - each wheel file pip puts in site-packages must be there, as a regular file with the wheel's
 *   bytes (`missing`, `symlink`, `not-a-file`, `different`);
 * - each installed file the distribution claims, or inside its dist-info, must come from the wheel
 *   (`extra`), except what pip itself writes there: INSTALLER, REQUESTED, direct_url.json and the
 *   rewritten RECORD.
 * `__pycache__` is left out on both sides: bytecode is never exported (export/ compiles the
 * verified sources on the host).
 *
 * Every difference is `integrity.installed-mismatch`, attributed to the process that wrote the
 * path when the trace knows one other than pip's installer (the attacker), else to the
 * distribution; the evidence names the distribution, the path and both hashes.
 *
 * Not covered: distributions built from sdists (their wheel is built, and deleted, inside the
 * sandbox; fs.target-tamper and the RECORD check judge them), and files outside site-packages
 * (scripts, headers, data), which are never exported.
 */
import { finding, type Finding } from '../core/finding.js';
import type { ScannedFile, StaticScan } from './static-scan.js';
import { readWheel, sitePackagesPath, WheelError, type WheelContents } from './wheel.js';

export interface LockedWheel {
  filename: string;
  sha256: string;
  /** The verified copy on the host. */
  file: string;
  /** Made by a build phase in the sandbox (workflows/built-wheels.ts): held to, but not vouched for by, the lock. */
  built?: boolean;
}

/** An installed file byte-identical to the locked (hash-verified, not built) wheel that shipped it. */
export interface VerifiedFile {
  /** The wheel's file name. */
  wheel: string;
  /** The distribution it belongs to. */
  distribution: string;
  /** The wheel ships bytecode for this source (`__pycache__/<stem>.*.pyc`, or `<stem>.pyc` beside it). */
  bytecode: boolean;
}

/** What provenance found: the differences, and every installed file a locked wheel vouches for, by path. */
export interface Provenance {
  findings: Finding[];
  verified: Map<string, VerifiedFile>;
}

export interface Writer {
  package: string | null;
  pid: number;
  argv: string;
}

/** What pip writes into a dist-info beside the wheel's own files. */
const PIP_WRITES = new Set(['INSTALLER', 'REQUESTED', 'direct_url.json', 'RECORD']);
const MAX_FINDINGS_PER_DIST = 50;

const inPycache = (rel: string) => rel.split('/').includes('__pycache__');

/** A locked wheel whose files are being read (inflated and hashed). */
export interface WheelRead {
  wheel: LockedWheel;
  contents: Promise<WheelContents>;
}

/**
 * Start reading every locked wheel. They are on the host from the start, so this begins before the
 * installed tree is scanned and the two overlap. One wheel at a time: a wheel is held in memory
 * while it is read (observe/wheel.ts), and reading is CPU work that concurrency would not speed up.
 */
export function readLockedWheels(wheels: LockedWheel[]): WheelRead[] {
  let previous: Promise<unknown> = Promise.resolve();
  return wheels.map((wheel) => {
    const contents = previous.then(() => readWheel(wheel.file, wheel.sha256));
    // Awaited in provenanceFindings; never unhandled if that never comes, and one failure does not stop the next read.
    previous = contents.catch(() => undefined);
    return { wheel, contents };
  });
}

export async function provenanceFindings(scan: StaticScan, reads: WheelRead[], writerOf: (rel: string) => Writer | null): Promise<Provenance> {
  const verified = new Map<string, VerifiedFile>();
  if (scan.truncated) return { findings: [], verified }; // resource.disk already fails the run; the tree is incomplete
  const byPath = new Map(scan.files.map((f) => [f.path, f]));
  const installed = new Map(scan.distributions.map((d) => [d.distInfo, d]));
  const related = relatedFiles(scan.files);
  const results = await Promise.all(
    reads.map(async ({ wheel, contents: reading }): Promise<Finding[]> => {
      let contents: WheelContents;
      try {
        contents = await reading;
      } catch (error: unknown) {
        if (!(error instanceof WheelError)) throw error;
        return [
          finding('integrity.installed-mismatch', 'high', `${wheel.filename} cannot be read to check what it installed: ${error.message}`, {
            wheel: wheel.filename,
            reason: 'unreadable wheel',
          }),
        ];
      }
      const dist = installed.get(contents.distInfo);
      // Not installed at all (a marker excluded it): nothing of it reaches the export. Files of
      // it left without their dist-info are claimed by no RECORD, which the scan reports.
      if (!dist) return [];
      if (!wheel.built) for (const [rel, file] of vouchedFor(dist.name, contents, byPath, wheel.filename)) verified.set(rel, file);
      return compare(dist.name, contents, related(dist.name, contents.distInfo), byPath, writerOf, wheel.filename);
    }),
  );
  return { findings: results.flat(), verified };
}

/** The installed files that are, byte for byte, what the wheel ships at that path. */
function vouchedFor(name: string, wheel: WheelContents, byPath: Map<string, ScannedFile>, filename: string): Array<[string, VerifiedFile]> {
  const shipped = new Set<string>();
  for (const entry of wheel.files.values()) {
    const rel = sitePackagesPath(entry.name, wheel.distInfo);
    if (rel !== null) shipped.add(rel);
  }
  const found: Array<[string, VerifiedFile]> = [];
  for (const entry of wheel.files.values()) {
    const rel = sitePackagesPath(entry.name, wheel.distInfo);
    if (rel === null || inPycache(rel)) continue;
    const actual = byPath.get(rel);
    if (actual?.type !== 'file' || actual.sha256 !== entry.sha256) continue;
    found.push([rel, { wheel: filename, distribution: name, bytecode: shipsBytecode(rel, shipped) }]);
  }
  return found;
}

/** Whether `rel` (a `.py`) has bytecode in the wheel: a legacy `<stem>.pyc` beside it, or any `__pycache__/<stem>.*.pyc`. */
function shipsBytecode(rel: string, shipped: Set<string>): boolean {
  if (!rel.endsWith('.py')) return false;
  const slash = rel.lastIndexOf('/');
  const dir = slash < 0 ? '' : rel.slice(0, slash + 1);
  const stem = rel.slice(slash + 1, -'.py'.length);
  if (shipped.has(`${dir}${stem}.pyc`)) return true;
  const cache = `${dir}__pycache__/${stem}.`;
  for (const other of shipped) if (other.startsWith(cache) && other.endsWith('.pyc') && !other.slice(cache.length).includes('/')) return true;
  return false;
}

/**
 * The installed files a distribution answers for: those it claims (owner) and those in its
 * dist-info dir, in tree order, bytecode and directories left out. Indexed once for the whole
 * tree; asked once per wheel (a pass over every file per wheel took 1 s on 128 wheels).
 */
function relatedFiles(files: ScannedFile[]): (name: string, distInfo: string) => ScannedFile[] {
  const byKey = new Map<string, number[]>();
  const add = (key: string, i: number) => {
    const list = byKey.get(key);
    if (list) list.push(i);
    else byKey.set(key, [i]);
  };
  files.forEach((file, i) => {
    if (file.type === 'directory' || inPycache(file.path)) return;
    if (file.owner !== null) add(`owner:${file.owner}`, i);
    const top = file.path.split('/', 1)[0]!;
    if (top.endsWith('.dist-info') && file.path.length > top.length) add(`dir:${top}`, i);
  });
  return (name, distInfo) => {
    const picked = new Set([...(byKey.get(`owner:${name}`) ?? []), ...(byKey.get(`dir:${distInfo}`) ?? [])]);
    return [...picked].sort((a, b) => a - b).map((i) => files[i]!);
  };
}

function compare(
  name: string,
  wheel: WheelContents,
  files: ScannedFile[],
  byPath: Map<string, ScannedFile>,
  writerOf: (rel: string) => Writer | null,
  filename: string,
): Finding[] {
  const findings: Finding[] = [];
  let more = 0;
  const report = (rel: string, kind: string, expected: string | null, actual: ScannedFile | undefined) => {
    if (findings.length >= MAX_FINDINGS_PER_DIST) {
      more += 1;
      return;
    }
    const writer = writerOf(rel);
    const what = {
      missing: 'is missing',
      symlink: 'was replaced by a symlink',
      'not-a-file': 'is not a regular file',
      different: 'differs from the wheel',
      extra: 'is not in the wheel',
    }[kind];
    findings.push(
      finding(
        'integrity.installed-mismatch',
        'high',
        `${rel} of ${name} ${what ?? kind}${writer ? `; written by ${writer.package ?? 'an unattributed process'}` : ''}`,
        {
          distribution: name,
          wheel: filename,
          path: rel,
          kind,
          expected,
          actual: actual?.sha256 ?? null,
          ...(actual?.type === 'symlink' ? { linkname: actual.linkname } : {}),
          ...(writer ? { writerPid: writer.pid, writerArgv: writer.argv } : {}),
        },
        writer?.package ?? name,
      ),
    );
  };

  const expected = new Map<string, string>();
  for (const entry of wheel.files.values()) {
    const rel = sitePackagesPath(entry.name, wheel.distInfo);
    if (rel === null || inPycache(rel) || rel === `${wheel.distInfo}/RECORD`) continue;
    expected.set(rel, entry.sha256);
  }
  for (const [rel, sha256] of expected) {
    const actual = byPath.get(rel);
    if (!actual) report(rel, 'missing', sha256, actual);
    else if (actual.type === 'symlink') report(rel, 'symlink', sha256, actual);
    else if (actual.type !== 'file') report(rel, 'not-a-file', sha256, actual);
    else if (actual.sha256 !== sha256) report(rel, 'different', sha256, actual);
  }
  const pipWrites = (rel: string) => rel.startsWith(`${wheel.distInfo}/`) && PIP_WRITES.has(rel.slice(wheel.distInfo.length + 1));
  // Only the files the distribution claims or that sit in its dist-info (relatedFiles).
  for (const file of files) {
    if (expected.has(file.path) || pipWrites(file.path)) continue;
    report(file.path, 'extra', null, file);
  }
  const last = findings.at(-1);
  if (more > 0 && last) last.evidence.more = more;
  return findings;
}

/** At most this many paths are named in one distribution's packaging note. */
const NOTE_PATHS = 5;

/**
 * RECORD defects the locked wheel disproves. A `static.unrecorded-file` for a file its RECORD lists
 * without a usable sha256 (none, or a hex digest where the spec says urlsafe base64) says nothing
 * was changed behind pip when that file is byte-identical to the verified wheel that shipped it:
 * those become one info-level `static.record-unhashed` note per distribution. Every other finding
 * is kept as it is (a file that differs, that no RECORD claims, that a built wheel shipped).
 */
export function packagingNotes(findings: Finding[], verified: ReadonlyMap<string, VerifiedFile>): Finding[] {
  const notes = new Map<string, { wheel: string; paths: string[] }>();
  const kept: Finding[] = [];
  for (const f of findings) {
    const rel = f.evidence.path;
    const file = typeof rel === 'string' ? verified.get(rel) : undefined;
    if (f.rule !== 'static.unrecorded-file' || !('recorded' in f.evidence) || f.evidence.recorded !== null || !file || f.package !== file.distribution) {
      kept.push(f);
      continue;
    }
    const note = notes.get(file.distribution) ?? { wheel: file.wheel, paths: [] };
    note.paths.push(rel as string);
    notes.set(file.distribution, note);
  }
  for (const [distribution, { wheel, paths }] of notes) {
    kept.push(
      finding(
        'static.record-unhashed',
        'info',
        `${distribution}'s RECORD lists ${paths.length} file${paths.length === 1 ? '' : 's'} without a sha256 pip can read (none, or a hex digest), each byte-identical to the verified ${wheel}: a packaging defect, nothing changed`,
        { distribution, wheel, files: paths.length, paths: paths.slice(0, NOTE_PATHS) },
        distribution,
      ),
    );
  }
  return kept;
}
