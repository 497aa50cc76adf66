/**
 * The manifest takes the digest of each extracted file from the bytes extraction wrote, instead of
 * reading the tree back; only what was made after (the host's bytecode) is read and hashed.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { extractArchive } from './extract.js';
import { buildManifest } from './manifest.js';
import { stageExport } from './publish.js';
import type { FileDigest } from './sync-fs.js';

type Entry = { name: string; content: string } | { name: string; type: 'directory' | 'symlink'; linkname?: string };

function archive(entries: Entry[]): Readable {
  const pack = tarStream.pack();
  pack.entry({ name: 'site-packages/', type: 'directory', mode: 0o755 });
  for (const entry of entries) {
    if ('content' in entry) pack.entry({ name: `site-packages/${entry.name}`, mode: 0o644 }, entry.content);
    else pack.entry({ name: `site-packages/${entry.name}`, type: entry.type, mode: 0o755, ...(entry.linkname ? { linkname: entry.linkname } : {}) });
  }
  pack.finalize();
  return pack as unknown as Readable;
}

const digest = (content: string): FileDigest => ({ sha256: createHash('sha256').update(content).digest('hex'), size: Buffer.byteLength(content) });

describe('digests taken while extracting', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'digests-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('extraction tells of each regular file it wrote, the last write of a path counting; nothing of what it left out or refused', async () => {
    const seen: Array<[string, FileDigest]> = [];
    const result = await extractArchive(
      archive([
        { name: 'pkg/', type: 'directory' },
        { name: 'pkg/mod.py', content: 'x = 1\n' },
        { name: 'pkg/__pycache__/mod.cpython-311.pyc', content: 'shipped' },
        { name: 'pkg/link', type: 'symlink', linkname: 'mod.py' },
        { name: 'pkg/abs', type: 'symlink', linkname: '/etc/passwd' },
        { name: 'pkg/mod.py', content: 'x = 2\n' },
        { name: 'empty.txt', content: '' },
      ]),
      path.join(dir, 'site'),
      { leaveOut: (rel) => rel.includes('__pycache__'), onWritten: (rel, d) => seen.push([rel, d]) },
    );
    expect(result.findings.map((f) => f.evidence.reason)).toEqual(['absolute-symlink']);
    expect(seen).toEqual([
      ['pkg/mod.py', digest('x = 1\n')],
      ['pkg/mod.py', digest('x = 2\n')],
      ['empty.txt', digest('')],
    ]);
  });

  it('the manifest uses a written digest as given, and reads back only the files it has none for', async () => {
    await writeFile(path.join(dir, 'a.py'), 'a\n');
    await writeFile(path.join(dir, 'b.py'), 'b\n');
    // Not a.py's real digest: proof that a.py is not read back.
    const given = { sha256: 'f'.repeat(64), size: 99 };
    expect(await buildManifest(dir, new Map([['a.py', given]]))).toEqual([
      { path: 'a.py', ...given, distribution: null },
      { path: 'b.py', ...digest('b\n'), distribution: null },
    ]);
  });

  it('a staged export lists exactly what reading the staged tree back would: the sources as written, the bytecode as compiled', async () => {
    const staged = await stageExport(
      archive([
        { name: 'pkg/__init__.py', content: '' },
        { name: 'pkg/mod.py', content: 'VALUE = 1\n' },
        { name: 'pkg/data.bin', content: 'data'.repeat(5000) },
      ]),
      path.join(dir, 'out'),
    );
    try {
      expect(staged.findings).toEqual([]);
      expect(staged.manifest.map((e) => e.path).filter((p) => !p.includes('__pycache__'))).toEqual(['pkg/__init__.py', 'pkg/data.bin', 'pkg/mod.py']);
      expect(staged.manifest).toEqual(await buildManifest(staged.dir));
    } finally {
      await staged.discard();
    }
  });
});
