/*
 * Hostile tar streams for the export guard (issue 10, item 8). Archives are built with tar-stream
 * from random entries (names with `..`, absolute, NUL, long pax names; every entry type; random
 * sizes, modes and link targets), then often damaged: cut short, re-typed or renamed in a header
 * (with a valid checksum, so the reader takes it), given a size the data does not have, or sprayed
 * with random bytes. Whatever arrives, extractArchive resolves with findings or rejects with an
 * InstallError (exit 4), within a time bound, and nothing is written beside the destination: the
 * sibling `outside/` canary is untouched, and `dest/` holds only files, directories and contained
 * symlinks without special mode bits or extra hard links.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { pack, type Header } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exitCodeFor, InstallError } from '../errors.js';
import { extractArchive, type ExtractLimits } from './extract.js';

// A bound for hangs, not a benchmark: the hangs fuzzing found took minutes; a loaded CI machine must not fail it.
const PER_RUN_MS = 10_000;
const SENTINEL = 'host file, must not change';

/** `promise`, or a rejection when it takes longer than PER_RUN_MS. */
async function inTime<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`extraction took more than ${PER_RUN_MS} ms`)), PER_RUN_MS);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Building and damaging archives

interface EntrySpec {
  name: string;
  type: NonNullable<Header['type']>;
  size: number;
  linkname: string;
  mode: number;
}

/** The archive's bytes, as tar-stream writes them; `@outside` in a name or target is the canary directory. */
async function tarBytes(entries: EntrySpec[], outside: string): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (chunk: unknown) => {
    chunks.push(chunk as Buffer);
  });
  const done = new Promise<void>((resolve, reject) => {
    p.on('end', resolve);
    p.on('error', reject);
  });
  for (const e of entries) {
    const name = e.name.replaceAll('@outside', outside);
    const linkname = e.linkname.replaceAll('@outside', outside);
    if (e.type === 'file' || e.type === 'contiguous-file') p.entry({ name, type: e.type, mode: e.mode }, Buffer.alloc(e.size, 0x78));
    else p.entry({ name, type: e.type, mode: e.mode, linkname, size: 0 });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** Offsets of the 512-byte blocks whose checksum is right: the headers, pax records aside. */
function headerOffsets(tar: Buffer): number[] {
  const offsets: number[] = [];
  for (let off = 0; off + 512 <= tar.length; off += 512) {
    const stored = parseInt(
      tar
        .subarray(off + 148, off + 156)
        .toString('latin1')
        .replace(/\0.*$/s, '')
        .trim(),
      8,
    );
    if (Number.isFinite(stored) && stored === checksum(tar, off)) offsets.push(off);
  }
  return offsets;
}

function checksum(tar: Buffer, off: number): number {
  let sum = 8 * 32;
  for (let i = 0; i < 512; i += 1) if (i < 148 || i >= 156) sum += tar[off + i] ?? 0;
  return sum;
}

function fixChecksum(tar: Buffer, off: number): void {
  tar.write(`${checksum(tar, off).toString(8).padStart(6, '0')}\0 `, off + 148, 8, 'latin1');
}

type Damage =
  | { kind: 'none' }
  | { kind: 'cut'; at: number }
  | { kind: 'retype'; header: number; flag: number }
  | { kind: 'rename'; header: number; bytes: Uint8Array }
  | { kind: 'resize'; header: number; size: string }
  | { kind: 'spray'; at: number; bytes: Uint8Array }
  | { kind: 'append'; bytes: Uint8Array };

function damage(tar: Buffer, d: Damage): Buffer {
  const out = Buffer.from(tar);
  const headers = headerOffsets(out);
  const header = (i: number) => headers[i % Math.max(1, headers.length)];
  switch (d.kind) {
    case 'none':
      return out;
    case 'cut':
      return out.subarray(0, d.at % (out.length + 1));
    case 'retype': {
      const off = header(d.header);
      if (off === undefined) return out;
      out[off + 156] = d.flag;
      fixChecksum(out, off);
      return out;
    }
    case 'rename': {
      const off = header(d.header);
      if (off === undefined) return out;
      out.fill(0, off, off + 100);
      Buffer.from(d.bytes).copy(out, off, 0, 100);
      fixChecksum(out, off);
      return out;
    }
    case 'resize': {
      const off = header(d.header);
      if (off === undefined) return out;
      out.write(d.size.padEnd(12, '\0').slice(0, 12), off + 124, 12, 'latin1');
      fixChecksum(out, off);
      return out;
    }
    case 'spray': {
      const at = d.at % (out.length + 1);
      Buffer.from(d.bytes).copy(out, at);
      return out;
    }
    case 'append':
      return Buffer.concat([out, Buffer.from(d.bytes)]);
  }
}

const segment = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('a', 'b', 'pkg', '__init__.py') },
  { weight: 1, arbitrary: fc.constantFrom('..', '.', '', '@outside', 'a\u0000b', '\u0000', '..\\..', 'ü', '\u202e') },
  { weight: 1, arbitrary: fc.nat({ max: 300 }).map((n) => 'n'.repeat(n + 1)) },
);
const entry = fc.record<EntrySpec>({
  name: fc
    .tuple(
      fc.oneof(
        { weight: 6, arbitrary: fc.constant('site-packages/') },
        { weight: 1, arbitrary: fc.constantFrom('/site-packages/', '', '../', 'site-packages/../../', '@outside/', './site-packages//') },
      ),
      fc.array(segment, { minLength: 1, maxLength: 4 }),
    )
    .map(([prefix, segments]) => `${prefix}${segments.join('/')}`),
  type: fc.constantFrom<NonNullable<Header['type']>>(
    'file',
    'file',
    'file',
    'directory',
    'directory',
    'directory',
    'symlink',
    'symlink',
    'symlink',
    'link',
    'fifo',
    'character-device',
    'block-device',
    'contiguous-file',
  ),
  size: fc.oneof(fc.nat({ max: 600 }), fc.constant(0)),
  linkname: fc.oneof(
    fc.array(fc.constantFrom('..', 'a', 'b', '.', 'pkg'), { minLength: 1, maxLength: 4 }).map((parts) => parts.join('/')),
    fc.constantFrom('', '@outside', '@outside/sentinel', '../../outside/sentinel', '/etc/passwd', 'a\u0000b', 'x'.repeat(200)),
  ),
  mode: fc.constantFrom(0o644, 0o755, 0o4755, 0o2755, 0o1777, 0o000, 0o7777),
});
const damageOf = fc.oneof(
  { weight: 8, arbitrary: fc.constant<Damage>({ kind: 'none' }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('retype' as const),
      header: fc.nat(),
      flag: fc.oneof(fc.constantFrom(...'01234567LKxgDMNSV'.split('').map((c) => c.charCodeAt(0))), fc.integer({ min: 0, max: 255 })),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('rename' as const), header: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 100 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('resize' as const),
      header: fc.nat(),
      size: fc.oneof(
        fc.constantFrom('77777777777', '00000001000', '-1', 'zzzz', '', '\u0080\u0000\u0000\u0000\u0000\u0000\u0000\u0001\u0000\u0000\u0000\u0000'),
        fc.nat().map((n) => n.toString(8)),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('spray' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('append' as const), bytes: fc.uint8Array({ maxLength: 1500 }) }) },
);
const limitsOf = fc.oneof(
  { weight: 3, arbitrary: fc.constant<ExtractLimits | undefined>(undefined) },
  { weight: 1, arbitrary: fc.record({ maxFiles: fc.integer({ min: 1, max: 10 }), maxBytes: fc.integer({ min: 1, max: 3000 }) }) },
);
/** How the bytes arrive: whole, or in chunks that split headers. */
const chunkSize = fc.oneof(fc.constant(Infinity), fc.integer({ min: 1, max: 700 }));

// ---------------------------------------------------------------------------------------------
// What must hold afterwards

async function expectNothingOutside(root: string, outside: string): Promise<void> {
  expect((await readdir(root)).sort()).toEqual(['dest', 'outside']);
  expect(await readdir(outside)).toEqual(['sentinel']);
  const sentinel = path.join(outside, 'sentinel');
  expect(await readFile(sentinel, 'utf8')).toBe(SENTINEL);
  // A hard link to it from dest/ would raise its link count.
  expect((await lstat(sentinel)).nlink).toBe(1);
}

/** Only files, directories and symlinks; no special bits; no hard links; every symlink resolves inside `dest`. */
async function expectContained(dest: string): Promise<void> {
  const inside = (p: string): boolean => p === dest || p.startsWith(dest + path.sep);
  for (const dirent of await readdir(dest, { recursive: true, withFileTypes: true })) {
    const full = path.join(dirent.parentPath, dirent.name);
    const stat = await lstat(full);
    expect(stat.isFile() || stat.isDirectory() || stat.isSymbolicLink(), `${full} is a special file`).toBe(true);
    expect(stat.mode & 0o7000).toBe(0);
    if (stat.isFile()) expect(stat.nlink).toBe(1);
    if (!stat.isSymbolicLink()) continue;
    const target = await readlink(full);
    expect(path.isAbsolute(target)).toBe(false);
    let current = await realpath(path.dirname(full));
    for (const part of target.split('/')) {
      if (part === '' || part === '.') continue;
      current = part === '..' ? path.dirname(current) : path.join(current, part);
      expect(inside(current), `${full} -> ${target} passes ${current}`).toBe(true);
      current = await realpath(current).catch(() => current);
      expect(inside(current), `${full} -> ${target} passes ${current}`).toBe(true);
    }
  }
}

describe('extractArchive on random tar streams', () => {
  let base: string;
  beforeAll(async () => {
    base = await realpath(await mkdtemp(path.join(tmpdir(), 'export-fuzz-')));
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  it('resolves with findings or rejects with an InstallError, in time, and never writes beside dest', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 12, size: 'medium' }), damageOf, limitsOf, chunkSize, async (entries, d, limits, chunk) => {
        n += 1;
        const root = path.join(base, `run-${n}`);
        const dest = path.join(root, 'dest');
        const outside = path.join(root, 'outside');
        await mkdir(outside, { recursive: true });
        await writeFile(path.join(outside, 'sentinel'), SENTINEL);
        try {
          const bytes = damage(await tarBytes(entries, outside), d);
          const chunks: Buffer[] = [];
          for (let at = 0; at < bytes.length; at += Math.min(chunk, bytes.length)) chunks.push(bytes.subarray(at, at + chunk));
          const outcome = await inTime(
            extractArchive(Readable.from(chunks), dest, limits ? { limits } : {}).then(
              (result) => ({ ok: true as const, result }),
              (error: unknown) => ({ ok: false as const, error }),
            ),
          );
          if (outcome.ok) {
            for (const f of outcome.result.findings) expect(f.rule).toBe('export.unsafe-entry');
            if (outcome.result.truncated) expect(outcome.result.findings.at(-1)?.evidence.reason).toBe('limit');
            if (limits) expect(outcome.result.findings.filter((f) => f.evidence.reason === 'limit').length).toBeLessThanOrEqual(1);
          } else {
            const error = outcome.error;
            if (!(error instanceof InstallError)) throw error;
            expect(error.code).toBe('export.extract-failed');
            expect(exitCodeFor(error)).toBe(4);
          }
          await expectNothingOutside(root, outside);
          await expectContained(await realpath(dest));
        } finally {
          await rm(root, { recursive: true, force: true });
        }
      }),
      { numRuns: 400, interruptAfterTimeLimit: 6000 },
    );
  });

  it('rejects a stream of random bytes with an InstallError, or reads it as an empty archive', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 3000, size: 'medium' }), async (bytes) => {
        n += 1;
        const root = path.join(base, `bytes-${n}`);
        const dest = path.join(root, 'dest');
        const outside = path.join(root, 'outside');
        await mkdir(outside, { recursive: true });
        await writeFile(path.join(outside, 'sentinel'), SENTINEL);
        try {
          const outcome = await inTime(
            extractArchive(Readable.from([Buffer.from(bytes)]), dest).then(
              (result) => result,
              (error: unknown) => error,
            ),
          );
          if (outcome instanceof Error) {
            expect(outcome).toBeInstanceOf(InstallError);
            expect((outcome as InstallError).code).toBe('export.extract-failed');
          } else {
            expect(outcome).toMatchObject({ files: 0, findings: [] });
          }
          await expectNothingOutside(root, outside);
          expect(await readdir(dest)).toEqual([]);
        } finally {
          await rm(root, { recursive: true, force: true });
        }
      }),
      { numRuns: 200, interruptAfterTimeLimit: 2000 },
    );
  });
});
