import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { pack, type Header } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { InstallError } from '../errors.js';
import { extractArchive, type ExtractResult } from './extract.js';

// Hostile archives are built here, entry by entry, so a reader sees exactly what each one holds.
// Every test gets a fresh root holding `dest/` (the export directory) and `outside/` (a stand-in
// for the rest of the host filesystem, with one sentinel file), and checks `outside/` afterwards.

type Entry = Partial<Header> & { name: string; content?: string };

function archive(entries: Entry[], options: { finalize?: boolean } = {}): Readable {
  const p = pack();
  for (const { content, ...header } of entries) {
    if (content !== undefined) p.entry({ type: 'file', ...header }, content);
    else p.entry(header);
  }
  if (options.finalize !== false) p.finalize();
  return p as unknown as Readable;
}

const SENTINEL = 'host file, must not change';

interface Sandbox extends AsyncDisposable {
  root: string;
  dest: string;
  outside: string;
}

async function sandbox(): Promise<Sandbox> {
  const root = await realpath(await mkdtemp(path.join(tmpdir(), 'extract-test-')));
  const outside = path.join(root, 'outside');
  await mkdir(outside);
  await writeFile(path.join(outside, 'sentinel'), SENTINEL);
  return {
    root,
    dest: path.join(root, 'dest'),
    outside,
    async [Symbol.asyncDispose]() {
      await rm(root, { recursive: true, force: true });
    },
  };
}

async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Nothing was created next to `dest` and the stand-in host directory is untouched. */
async function expectNothingOutside(box: Sandbox): Promise<void> {
  expect((await readdir(box.root)).sort()).toEqual(['dest', 'outside']);
  expect(await readdir(box.outside)).toEqual(['sentinel']);
  expect(await readFile(path.join(box.outside, 'sentinel'), 'utf8')).toBe(SENTINEL);
}

function refusals(result: ExtractResult): Array<{ entry: unknown; reason: unknown }> {
  return result.findings.map((f) => {
    expect(f.rule).toBe('export.unsafe-entry');
    expect(f.severity).toBe('high');
    return { entry: f.evidence.entry, reason: f.evidence.reason };
  });
}

const ROOT: Entry = { name: 'site-packages/', type: 'directory', mode: 0o755 };

describe('extractArchive', () => {
  it('extracts a benign tree with nested directories and contained relative symlinks', async () => {
    await using box = await sandbox();
    const result = await extractArchive(
      archive([
        ROOT,
        { name: 'site-packages/pkg/', type: 'directory', mode: 0o755 },
        { name: 'site-packages/pkg/__init__.py', content: 'print("hi")\n', mode: 0o644 },
        { name: 'site-packages/pkg/sub/', type: 'directory', mode: 0o755 },
        { name: 'site-packages/pkg/sub/data.txt', content: 'data', mode: 0o644 },
        { name: 'site-packages/pkg/sub/tool', content: '#!/bin/sh\n', mode: 0o755 },
        { name: 'site-packages/pkg/link', type: 'symlink', linkname: 'sub/data.txt' },
        { name: 'site-packages/pkg/sub/up', type: 'symlink', linkname: '../__init__.py' },
        { name: 'site-packages/self', type: 'symlink', linkname: '.' },
        // A file whose parent directory has no entry of its own.
        { name: 'site-packages/implicit/dir/f.py', content: 'x = 1\n' },
      ]),
      box.dest,
    );

    expect(result).toEqual({ files: 9, bytes: 32, findings: [], leftOut: 0, strippedModes: [], truncated: false });
    const d = box.dest;
    expect(await readFile(path.join(d, 'pkg/__init__.py'), 'utf8')).toBe('print("hi")\n');
    expect(await readFile(path.join(d, 'pkg/sub/data.txt'), 'utf8')).toBe('data');
    expect(await readFile(path.join(d, 'implicit/dir/f.py'), 'utf8')).toBe('x = 1\n');
    expect(await readlink(path.join(d, 'pkg/link'))).toBe('sub/data.txt');
    expect(await readFile(path.join(d, 'pkg/link'), 'utf8')).toBe('data');
    expect(await readFile(path.join(d, 'pkg/sub/up'), 'utf8')).toBe('print("hi")\n');
    expect(await readlink(path.join(d, 'self'))).toBe('.');
    expect((await lstat(path.join(d, 'pkg/sub/tool'))).mode & 0o7777).toBe(0o755);
    expect((await lstat(path.join(d, 'pkg/__init__.py'))).mode & 0o7777).toBe(0o644);
    await expectNothingOutside(box);
  });

  it('refuses `..` components, absolute paths and names that strip to nothing', async () => {
    await using box = await sandbox();
    const absolute = path.join(box.root, 'abs');
    const result = await extractArchive(
      archive([
        ROOT,
        { name: 'site-packages/../x', content: 'escape' },
        { name: 'site-packages/pkg/../../y', content: 'escape' },
        { name: `${absolute}`, content: 'escape' },
        { name: 'site-packages', type: 'file', content: 'root as a file' },
        { name: 'z', content: 'no prefix to strip' },
        { name: 'site-packages/ok.py', content: 'ok' },
      ]),
      box.dest,
    );

    expect(refusals(result)).toEqual([
      { entry: 'site-packages/../x', reason: 'parent-traversal' },
      { entry: 'site-packages/pkg/../../y', reason: 'parent-traversal' },
      { entry: absolute, reason: 'absolute-path' },
      { entry: 'site-packages', reason: 'empty-path' },
      { entry: 'z', reason: 'empty-path' },
    ]);
    expect(await readdir(box.dest)).toEqual(['ok.py']);
    expect(await exists(absolute)).toBe(false);
    expect(await exists(path.join(box.root, 'x'))).toBe(false);
    await expectNothingOutside(box);
  });

  it('refuses absolute symlinks and symlinks that climb out of the destination', async () => {
    await using box = await sandbox();
    const result = await extractArchive(
      archive([
        ROOT,
        { name: 'site-packages/link', type: 'symlink', linkname: box.outside },
        { name: 'site-packages/a', type: 'symlink', linkname: '../../..' },
        { name: 'site-packages/pkg/b', type: 'symlink', linkname: '../..' },
        { name: 'site-packages/pkg/c', type: 'symlink', linkname: './../../outside/sentinel' },
      ]),
      box.dest,
    );

    expect(refusals(result)).toEqual([
      { entry: 'site-packages/link', reason: 'absolute-symlink' },
      { entry: 'site-packages/a', reason: 'symlink-escape' },
      { entry: 'site-packages/pkg/b', reason: 'symlink-escape' },
      { entry: 'site-packages/pkg/c', reason: 'symlink-escape' },
    ]);
    expect(result.findings[0]?.evidence).toEqual({
      entry: 'site-packages/link',
      type: 'symlink',
      reason: 'absolute-symlink',
      linkname: box.outside,
    });
    for (const name of ['link', 'a', 'pkg/b', 'pkg/c']) expect(await exists(path.join(box.dest, name))).toBe(false);
    await expectNothingOutside(box);
  });

  it('refuses a symlink that looks contained but escapes through another symlink', async () => {
    await using box = await sandbox();
    // Lexically `p/q/l1/../..` is `p`, but the kernel follows l1 to the root first, so the
    // second link would point two levels above the destination.
    const result = await extractArchive(
      archive([
        ROOT,
        { name: 'site-packages/p/q/l1', type: 'symlink', linkname: '../..' },
        { name: 'site-packages/p/q/l2', type: 'symlink', linkname: 'l1/../..' },
        { name: 'site-packages/p/q/l3', type: 'symlink', linkname: 'l1/outside' },
        // Through a file: harmless, but tar-fs would abort the whole extraction on it.
        { name: 'site-packages/p/q/f', content: 'file' },
        { name: 'site-packages/p/q/l4', type: 'symlink', linkname: 'f/x' },
      ]),
      box.dest,
    );

    expect(refusals(result)).toEqual([
      { entry: 'site-packages/p/q/l2', reason: 'symlink-indirect' },
      { entry: 'site-packages/p/q/l3', reason: 'symlink-indirect' },
      { entry: 'site-packages/p/q/l4', reason: 'symlink-indirect' },
    ]);
    expect(await readlink(path.join(box.dest, 'p/q/l1'))).toBe('../..');
    expect(await exists(path.join(box.dest, 'p/q/l2'))).toBe(false);
    await expectNothingOutside(box);
  });

  it('refuses `..` after a name even when that name only becomes a symlink later', async () => {
    await using box = await sandbox();
    // When b/a is made, `a` does not exist and `b/../a/..` is lexically the root. Once `a -> .`
    // exists, the kernel reads b/a as root/a/.. = the root's parent. (Found by the property below.)
    const result = await extractArchive(
      archive([ROOT, { name: 'site-packages/b/a', type: 'symlink', linkname: '../a/..' }, { name: 'site-packages/a', type: 'symlink', linkname: '.' }]),
      box.dest,
    );

    expect(refusals(result)).toEqual([{ entry: 'site-packages/b/a', reason: 'symlink-indirect' }]);
    expect(await exists(path.join(box.dest, 'b/a'))).toBe(false);
    await expectContained(box.dest);
    await expectNothingOutside(box);
  });

  it('never writes through a symlink, whether it was refused or extracted', async () => {
    await using box = await sandbox();
    const result = await extractArchive(
      archive([
        ROOT,
        { name: 'site-packages/d', type: 'symlink', linkname: box.outside },
        { name: 'site-packages/d/x', content: 'through a refused link' },
        { name: 'site-packages/sub/', type: 'directory' },
        { name: 'site-packages/e', type: 'symlink', linkname: 'sub' },
        { name: 'site-packages/e/x', content: 'through an extracted link' },
        { name: 'site-packages/e/deeper/y', content: 'through an extracted link' },
        { name: 'site-packages/e', type: 'directory' },
        { name: 'site-packages/self', type: 'symlink', linkname: '.' },
        { name: 'site-packages/self/self/z', content: 'through a loop' },
      ]),
      box.dest,
    );

    expect(refusals(result)).toEqual([
      { entry: 'site-packages/d', reason: 'absolute-symlink' },
      { entry: 'site-packages/e/x', reason: 'through-symlink' },
      { entry: 'site-packages/e/deeper/y', reason: 'through-symlink' },
      { entry: 'site-packages/e', reason: 'type-conflict' },
      { entry: 'site-packages/self/self/z', reason: 'through-symlink' },
    ]);
    // The refused link was not made, so `d/x` landed in a real directory inside dest.
    expect((await lstat(path.join(box.dest, 'd'))).isDirectory()).toBe(true);
    expect(await exists(path.join(box.outside, 'x'))).toBe(false);
    expect(await readdir(path.join(box.dest, 'sub'))).toEqual([]);
    expect(await exists(path.join(box.dest, 'z'))).toBe(false);
    expect((await lstat(path.join(box.dest, 'e'))).isSymbolicLink()).toBe(true);
    await expectNothingOutside(box);
  });

  it('refuses hard links, devices, fifos and other special entries', async () => {
    await using box = await sandbox();
    const sentinel = path.join(box.outside, 'sentinel');
    const result = await extractArchive(
      archive([
        ROOT,
        { name: 'site-packages/real.py', content: 'real' },
        { name: 'site-packages/h1', type: 'link', linkname: sentinel },
        { name: 'site-packages/h2', type: 'link', linkname: 'site-packages/real.py' },
        // If h1 had been linked, this would overwrite the host file through the shared inode.
        { name: 'site-packages/h1', content: 'pwned' },
        { name: 'site-packages/null', type: 'character-device', devmajor: 1, devminor: 3 },
        { name: 'site-packages/sda', type: 'block-device', devmajor: 8, devminor: 0 },
        { name: 'site-packages/pipe', type: 'fifo' },
        { name: 'site-packages/contig', type: 'contiguous-file', content: 'c' },
      ]),
      box.dest,
    );

    expect(refusals(result)).toEqual([
      { entry: 'site-packages/h1', reason: 'hardlink' },
      { entry: 'site-packages/h2', reason: 'hardlink' },
      { entry: 'site-packages/null', reason: 'device' },
      { entry: 'site-packages/sda', reason: 'device' },
      { entry: 'site-packages/pipe', reason: 'fifo' },
      { entry: 'site-packages/contig', reason: 'unsupported-type' },
    ]);
    expect(result.findings[0]?.evidence).toEqual({
      entry: 'site-packages/h1',
      type: 'link',
      reason: 'hardlink',
      linkname: sentinel,
    });
    expect(result.findings[2]?.evidence).toEqual({ entry: 'site-packages/null', type: 'character-device', reason: 'device' });
    expect((await readdir(box.dest)).sort()).toEqual(['h1', 'real.py']);
    expect((await lstat(path.join(box.dest, 'h1'))).nlink).toBe(1);
    expect(await readFile(path.join(box.dest, 'h1'), 'utf8')).toBe('pwned');
    await expectNothingOutside(box);
  });

  it('refuses an entry over, or under, one of another type', async () => {
    await using box = await sandbox();
    const result = await extractArchive(
      archive([
        ROOT,
        { name: 'site-packages/f', content: 'file' },
        { name: 'site-packages/f/g', content: 'under a file' },
        { name: 'site-packages/f', type: 'directory' },
        { name: 'site-packages/dir/inner.py', content: 'x' },
        { name: 'site-packages/dir', content: 'file over an implicit directory' },
        { name: 'site-packages/f', content: 'same type: last one wins' },
      ]),
      box.dest,
    );

    expect(refusals(result)).toEqual([
      { entry: 'site-packages/f/g', reason: 'type-conflict' },
      { entry: 'site-packages/f', reason: 'type-conflict' },
      { entry: 'site-packages/dir', reason: 'type-conflict' },
    ]);
    expect(await readFile(path.join(box.dest, 'f'), 'utf8')).toBe('same type: last one wins');
    expect(await readFile(path.join(box.dest, 'dir/inner.py'), 'utf8')).toBe('x');
    await expectNothingOutside(box);
  });

  it('strips setuid, setgid and sticky bits and reports which entries had them', async () => {
    await using box = await sandbox();
    const result = await extractArchive(
      archive([
        ROOT,
        { name: 'site-packages/shared/', type: 'directory', mode: 0o2775 },
        { name: 'site-packages/shared/su', content: '#!/bin/sh\n', mode: 0o4755 },
        { name: 'site-packages/shared/sg', content: 'x', mode: 0o2711 },
        { name: 'site-packages/tmp/', type: 'directory', mode: 0o1777 },
        { name: 'site-packages/plain', content: 'x', mode: 0o644 },
      ]),
      box.dest,
    );

    expect(result.findings).toEqual([]);
    expect(result.strippedModes).toEqual(['site-packages/shared/', 'site-packages/shared/su', 'site-packages/shared/sg', 'site-packages/tmp/']);
    const mode = async (name: string): Promise<number> => (await lstat(path.join(box.dest, name))).mode & 0o7777;
    expect(await mode('shared/su')).toBe(0o755);
    expect(await mode('shared/sg')).toBe(0o711);
    expect(await mode('shared')).toBe(0o755);
    expect(await mode('tmp')).toBe(0o755);
    expect(await mode('plain')).toBe(0o644);
    await expectNothingOutside(box);
  });

  it('keeps directories and files usable by their owner whatever modes the archive claims', async () => {
    await using box = await sandbox();
    const result = await extractArchive(
      archive([
        ROOT,
        // (tar-stream's packer turns a mode of 0 into its default, so use other-only bits.)
        { name: 'site-packages/locked/', type: 'directory', mode: 0o005 },
        { name: 'site-packages/locked/f', content: 'x', mode: 0o004 },
        { name: 'site-packages/world', content: 'x', mode: 0o666 },
      ]),
      box.dest,
    );

    expect(result.findings).toEqual([]);
    expect((await lstat(path.join(box.dest, 'locked'))).mode & 0o777).toBe(0o705);
    expect((await lstat(path.join(box.dest, 'locked/f'))).mode & 0o777).toBe(0o604);
    expect((await lstat(path.join(box.dest, 'world'))).mode & 0o777).toBe(0o644);
  });

  it('stops at the file cap with one limit finding', async () => {
    await using box = await sandbox();
    const result = await extractArchive(archive([ROOT, ...[1, 2, 3, 4, 5].map((i) => ({ name: `site-packages/f${i}`, content: `${i}` }))]), box.dest, {
      limits: { maxFiles: 3, maxBytes: 1024 },
    });

    expect(result.findings).toHaveLength(1);
    expect(result.findings[0]?.evidence).toEqual({
      entry: 'site-packages/f4',
      type: 'file',
      reason: 'limit',
      limit: 'maxFiles',
      max: 3,
    });
    expect(result).toMatchObject({ files: 3, bytes: 3, truncated: true });
    expect((await readdir(box.dest)).sort()).toEqual(['f1', 'f2', 'f3']);
    await expectNothingOutside(box);
  });

  it('stops at the byte cap, counting refused entries too', async () => {
    await using box = await sandbox();
    const result = await extractArchive(
      archive([
        ROOT,
        { name: 'site-packages/a', content: '0123456789' },
        { name: 'site-packages/../b', content: '0123456789' },
        { name: 'site-packages/c', content: '0123456789' },
      ]),
      box.dest,
      { limits: { maxFiles: 100, maxBytes: 25 } },
    );

    expect(refusals(result)).toEqual([
      { entry: 'site-packages/../b', reason: 'parent-traversal' },
      { entry: 'site-packages/c', reason: 'limit' },
    ]);
    expect(result.findings[1]?.evidence).toMatchObject({ limit: 'maxBytes', max: 25 });
    expect(await readdir(box.dest)).toEqual(['a']);
  });

  it('returns at the cap without draining an archive that never ends', async () => {
    await using box = await sandbox();
    const endless = archive([ROOT, ...[1, 2, 3].map((i) => ({ name: `site-packages/f${i}`, content: 'x' }))], { finalize: false });
    const result = await extractArchive(endless, box.dest, { limits: { maxFiles: 2, maxBytes: 1024 } });

    expect(refusals(result)).toEqual([{ entry: 'site-packages/f3', reason: 'limit' }]);
    expect(result.truncated).toBe(true);
    expect(endless.destroyed).toBe(true);
  });

  it('rejects with the AbortError when aborted', async () => {
    await using box = await sandbox();
    const controller = new AbortController();
    const endless = archive([ROOT], { finalize: false });
    const pending = extractArchive(endless, box.dest, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects a malformed archive with an InstallError', async () => {
    await using box = await sandbox();
    const garbage = Readable.from([Buffer.alloc(1024, 'A')]);
    const error: unknown = await extractArchive(garbage, box.dest).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InstallError);
    expect(error).toMatchObject({ code: 'export.extract-failed' });
  });

  it('refuses to extract into a non-empty directory', async () => {
    await using box = await sandbox();
    await mkdir(box.dest);
    await writeFile(path.join(box.dest, 'already'), 'x');
    await expect(extractArchive(archive([ROOT]), box.dest)).rejects.toMatchObject({ code: 'export.dest-not-empty' });
  });

  it('turns any random archive into findings, never a write outside dest or an escaping symlink', async () => {
    // Mostly plausible names and short relative targets, so that links land on links; now and
    // then something plainly hostile.
    const segment = fc.oneof({ weight: 8, arbitrary: fc.constantFrom('a', 'b') }, { weight: 1, arbitrary: fc.constantFrom('..', '.', '') });
    const entry = fc.record({
      absolute: fc.oneof({ weight: 9, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
      segments: fc.array(segment, { minLength: 1, maxLength: 3 }),
      type: fc.constantFrom<NonNullable<Header['type']>>('file', 'directory', 'symlink', 'symlink', 'symlink', 'link'),
      target: fc.array(fc.oneof({ weight: 8, arbitrary: fc.constantFrom('..', 'a', 'b', '.') }, { weight: 1, arbitrary: fc.constantFrom('', '@outside') }), {
        minLength: 1,
        maxLength: 4,
      }),
      mode: fc.constantFrom(0o644, 0o4755, 0o2755, 0o005),
    });

    await fc.assert(
      fc.asyncProperty(fc.array(entry, { maxLength: 12 }), async (spec) => {
        await using box = await sandbox();
        const entries: Entry[] = [ROOT];
        for (const e of spec) {
          const name = `${e.absolute ? '/' : ''}site-packages/${e.segments.join('/')}`;
          const linkname = e.target.map((t) => (t === '@outside' ? box.outside : t)).join('/');
          if (e.type === 'file') entries.push({ name, mode: e.mode, content: 'x' });
          else if (e.type === 'directory') entries.push({ name, mode: e.mode, type: 'directory' });
          else entries.push({ name, type: e.type, linkname });
        }
        // Every hostile shape becomes a finding; none aborts the extraction.
        await extractArchive(archive(entries), box.dest);
        await expectNothingOutside(box);
        await expectContained(box.dest);
      }),
      { numRuns: 150 },
    );
  });
});

/** Every symlink under `dest` resolves inside it, and no file kept a setuid/setgid/sticky bit. */
async function expectContained(dest: string): Promise<void> {
  const inside = (p: string): boolean => p === dest || p.startsWith(dest + path.sep);
  for (const dirent of await readdir(dest, { recursive: true, withFileTypes: true })) {
    const full = path.join(dirent.parentPath, dirent.name);
    expect((await lstat(full)).mode & 0o7000).toBe(0);
    if (!dirent.isSymbolicLink()) continue;
    const target = await readlink(full);
    expect(path.isAbsolute(target)).toBe(false);
    // Walk the target as the kernel would, following links that exist.
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
