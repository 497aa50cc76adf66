import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { readWheelDir, type WheelDirEntry } from '../export/wheelhouse.js';
import type { LockedRequirement } from '../lock/types.js';
import { selectBuilt, wheelNameVersion } from './built-wheels.js';

const hex = (c: string) => c.repeat(64);
const req = (name: string, version: string): LockedRequirement => ({ name, rawName: name, version, extras: [], marker: null, sha256: [hex('b')], line: 1 });
const file = (name: string, type = 'file'): WheelDirEntry => ({ name, type, size: 10 });

describe('wheelNameVersion', () => {
  it('reads name and version from 5- and 6-part wheel names, normalising the name', () => {
    expect(wheelNameVersion('Pure_Sdist-0.3-py3-none-any.whl')).toEqual({ name: 'pure-sdist', version: '0.3' });
    expect(wheelNameVersion('cext-1.0-1-cp311-cp311-linux_x86_64.whl')).toEqual({ name: 'cext', version: '1.0' });
    expect(wheelNameVersion('cext-1.0-cp311.whl')).toBeNull();
    expect(wheelNameVersion('cext-1.0.tar.gz')).toBeNull();
  });
});

describe('selectBuilt', () => {
  const builds = [req('pure-sdist', '0.3'), req('cext', '1.0.0')];

  it('takes one wheel per built sdist, its version spelled any equal way (1.0 for 1.0.0)', () => {
    const selection = selectBuilt([file('pure_sdist-0.3-py3-none-any.whl'), file('cext-1.0-cp311-cp311-linux_x86_64.whl')], builds);
    expect(selection).toEqual({
      built: [
        { filename: 'pure_sdist-0.3-py3-none-any.whl', requirement: 'pure-sdist' },
        { filename: 'cext-1.0-cp311-cp311-linux_x86_64.whl', requirement: 'cext' },
      ],
      findings: [],
    });
  });

  it('refuses a wheel for another project or version, a second built wheel, a non-wheel and anything not a plain file, in phase build', () => {
    const selection = selectBuilt(
      [
        file('pure_sdist-0.3-py3-none-any.whl'),
        file('pure_sdist-0.3-cp311-cp311-linux_x86_64.whl'),
        file('pure_sdist-0.4-py3-none-any.whl'),
        file('evil-1.0-py3-none-any.whl'),
        file('notes.txt'),
        file('link.whl', 'symlink'),
        file('.hidden.whl'),
      ],
      builds,
    );
    expect(selection.findings.map((f) => [f.rule, f.package, f.message, f.phase])).toEqual([
      [
        'export.unexpected-file',
        'pure-sdist',
        'the build phase left "pure_sdist-0.3-cp311-cp311-linux_x86_64.whl": a second wheel for pure-sdist==0.3',
        'build',
      ],
      [
        'export.unexpected-file',
        'pure-sdist',
        `the build phase left "pure_sdist-0.4-py3-none-any.whl": a wheel of pure-sdist 0.4, which is not a locked sdist's project and version`,
        'build',
      ],
      [
        'export.unexpected-file',
        'evil',
        `the build phase left "evil-1.0-py3-none-any.whl": a wheel of evil 1.0, which is not a locked sdist's project and version`,
        'build',
      ],
      ['export.unexpected-file', null, 'the build phase left "notes.txt": not a wheel', 'build'],
      ['export.unsafe-entry', null, 'the wheel dir holds symlink "link.whl", not a plain file with a safe name', 'build'],
      ['export.unsafe-entry', null, 'the wheel dir holds file ".hidden.whl", not a plain file with a safe name', 'build'],
    ]);
  });
});

/** A tar stream as readArchive('/tmp/pip-wheelhouse') gives it. */
function wheelDirArchive(entries: Array<{ name: string; data?: string }>): Readable {
  const pack = tarStream.pack();
  pack.entry({ name: 'pip-wheelhouse/', type: 'directory' });
  for (const entry of entries) pack.entry({ name: `pip-wheelhouse/${entry.name}` }, entry.data ?? '');
  pack.finalize();
  return pack as unknown as Readable;
}

describe('readWheelDir', () => {
  it('writes only the wanted files, hashed, and stops at the entry limit with a finding', async () => {
    const dest = await mkdtemp(path.join(tmpdir(), 'wheel-dir-test-'));
    const read = await readWheelDir(
      wheelDirArchive(Array.from({ length: 5 }, (_, i) => ({ name: `f${i}-1.0-py3-none-any.whl`, data: 'x' }))),
      dest,
      (name) => name.startsWith('f0'),
      { maxEntries: 3, maxBytes: 1024 },
    );
    expect(read.findings[0]).toMatchObject({ rule: 'export.unsafe-entry', evidence: { reason: 'limit', limit: 'maxEntries', max: 3 } });
    expect([...read.written.keys()]).toEqual(['f0-1.0-py3-none-any.whl']);
    expect(await readdir(dest)).toEqual(['f0-1.0-py3-none-any.whl']);
  });
});
