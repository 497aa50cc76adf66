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

export async function provenanceFindings(scan: StaticScan, reads: WheelRead[], writerOf: (rel: string) => Writer | null): Promise<Finding[]> {
  if (scan.truncated) return []; // resource.disk already fails the run; the tree is incomplete
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
      return compare(dist.name, contents, related(dist.name, contents.distInfo), byPath, writerOf, wheel.filename);
    }),
  );
  return results.flat();
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
