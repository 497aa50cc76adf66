import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { buildPinsHeader, buildPinsPath, buildRequirementsFor, mergeBuildPins, parseBuildPins, readBuildPins, renderBuildPins } from './build-pins.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);
const C = 'c'.repeat(64);

describe('build pins', () => {
  it('live beside the lock, named after it', () => {
    expect(buildPinsPath('locks/requirements.lock')).toBe('locks/requirements.lock.build.txt');
    expect(buildPinsPath('pylock.toml')).toBe('pylock.toml.build.txt');
  });

  it('render as a hashed requirements file that parses back to the same pins', () => {
    const pins = [
      { name: 'wheel', version: '0.44.0', sha256: [C] },
      { name: 'setuptools', version: '75.1.0', sha256: [B, A] },
    ];
    const text = renderBuildPins(pins, buildPinsHeader('requirements.lock', 'lock on 2026-12-07'));
    expect(text).toBe(
      [
        '# Build requirements, pinned by sandbox-install lock on 2026-12-07.',
        '# What pip needed to build the sdists of requirements.lock. sandbox-install reads this file beside that',
        '# lock and serves a build these files, and no other file of these projects. To fetch them yourself:',
        '#    pip download --no-deps --require-hashes -r requirements.lock.build.txt',
        'setuptools==75.1.0 \\',
        `    --hash=sha256:${A} \\`,
        `    --hash=sha256:${B}`,
        'wheel==0.44.0 \\',
        `    --hash=sha256:${C}`,
        '',
      ].join('\n'),
    );
    expect(parseBuildPins(text, 'x.build.txt')).toEqual([
      { name: 'setuptools', version: '75.1.0', sha256: [A, B] },
      { name: 'wheel', version: '0.44.0', sha256: [C] },
    ]);
  });

  it.each([
    ['an index URL', `--index-url https://example.invalid/simple\nsetuptools==75.1.0 --hash=sha256:${A}\n`, 'no options'],
    ['a pip option', `--pre\nsetuptools==75.1.0 --hash=sha256:${A}\n`, 'no options'],
    ['a marker', `setuptools==75.1.0 ; python_version < "3.12" --hash=sha256:${A}\n`, 'x.build.txt:1: a build pin has no extras and no marker'],
    ['an extra', `setuptools[core]==75.1.0 --hash=sha256:${A}\n`, 'x.build.txt:1: a build pin has no extras and no marker'],
    ['a pin without a hash', 'setuptools==75.1.0\n', 'x.build.txt:1'],
  ])('refuse %s', (_what, text, message) => {
    expect(() => parseBuildPins(text, 'x.build.txt')).toThrow(InputError);
    expect(() => parseBuildPins(text, 'x.build.txt')).toThrow(message);
  });

  it('are read when the file is there, and are none when it is not', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'build-pins-'));
    try {
      const lock = path.join(dir, 'requirements.lock');
      expect(await readBuildPins(lock)).toBeNull();
      await writeFile(`${lock}.build.txt`, `Setuptools==75.1.0 --hash=sha256:${A}\n`);
      expect(await readBuildPins(lock)).toEqual({ file: `${lock}.build.txt`, pins: [{ name: 'setuptools', version: '75.1.0', sha256: [A] }] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('merge by name and version, every sha256 once', () => {
    expect(
      mergeBuildPins([{ name: 'Flit_Core', version: '3.9.0', sha256: [A] }], [{ name: 'flit-core', version: '3.9.0', sha256: [B.toUpperCase(), A] }]),
    ).toEqual([{ name: 'flit-core', version: '3.9.0', sha256: [A, B] }]);
  });
});

describe('buildRequirementsFor', () => {
  const policy = { allow: ['setuptools', 'wheel'], pins: [{ name: 'flit-core', version: '3.9.0', sha256: [A] }] };

  it('is nothing for a run that builds nothing', () => {
    expect(buildRequirementsFor(policy, [{ name: 'setuptools', version: '75.1.0', sha256: [B] }], false)).toEqual({ pins: [], unpinned: [] });
  });

  it("holds the lock's pins and the policy's; a pinned name is no longer served unpinned", () => {
    expect(buildRequirementsFor(policy, [{ name: 'setuptools', version: '75.1.0', sha256: [B] }], true)).toEqual({
      pins: [
        { name: 'flit-core', version: '3.9.0', sha256: [A] },
        { name: 'setuptools', version: '75.1.0', sha256: [B] },
      ],
      unpinned: ['wheel'],
    });
  });
});
