import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { renderWheelhouseLock, stageWheelhouse, type WheelDirEntry } from '../export/wheelhouse.js';
import { noPipOptions } from '../lock/pip-options.js';
import type { LockedRequirement, LockPlan } from '../lock/types.js';
import type { ServedFile } from '../proxy/index.js';
import { builtCandidate, selectWheels, wheelNameVersion } from './wheelhouse.js';

const hex = (c: string) => c.repeat(64);
const sha = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

function req(name: string, version: string, sha256: string[], marker: string | null = null): LockedRequirement {
  return { name, rawName: name, version, extras: [], marker, sha256, line: 1 };
}

const plan = (requirements: LockedRequirement[]): LockPlan => ({
  file: '/x/requirements.lock',
  requirements,
  indexUrl: null,
  extraIndexUrls: [],
  pipOptions: noPipOptions(),
});

function served(project: string, filename: string, sha256: string, cachePath = `/cache/${sha256}`): ServedFile {
  return { project, filename, sha256, size: 1, locked: true, cachePath };
}

const file = (name: string, type = 'file'): WheelDirEntry => ({ name, type, size: 10 });

const LOCK = plan([req('alpha', '1.0', [hex('a')]), req('pure-sdist', '0.3', [hex('b')]), req('win-only', '2.0', [hex('c')], 'sys_platform == "win32"')]);
const SERVED = [
  served('alpha', 'alpha-1.0-py3-none-any.whl', hex('a')),
  served('pure-sdist', 'pure_sdist-0.3.tar.gz', hex('b')),
  // Served twice (install and wheel phases): one file.
  served('pure-sdist', 'pure_sdist-0.3.tar.gz', hex('b')),
  { ...served('setuptools', 'setuptools-66.1.1-py3-none-any.whl', hex('e')), locked: false },
];

describe('wheelNameVersion', () => {
  it('reads name and version from 5- and 6-part wheel names, normalising the name', () => {
    expect(wheelNameVersion('Pure_Sdist-0.3-py3-none-any.whl')).toEqual({ name: 'pure-sdist', version: '0.3' });
    expect(wheelNameVersion('cext-1.0-1-cp311-cp311-linux_x86_64.whl')).toEqual({ name: 'cext', version: '1.0' });
    expect(wheelNameVersion('cext-1.0-cp311.whl')).toBeNull();
    expect(wheelNameVersion('cext-1.0.tar.gz')).toBeNull();
  });
});

describe('selectWheels', () => {
  it('takes locked wheels from the cache, one built wheel per locked sdist, and skips what was never served', () => {
    const selection = selectWheels([file('alpha-1.0-py3-none-any.whl'), file('pure_sdist-0.3-py3-none-any.whl')], LOCK, SERVED);
    expect(selection).toEqual({
      locked: [{ filename: 'alpha-1.0-py3-none-any.whl', requirement: 'alpha', sha256: hex('a'), cachePath: `/cache/${hex('a')}` }],
      built: [{ filename: 'pure_sdist-0.3-py3-none-any.whl', requirement: 'pure-sdist' }],
      skipped: [LOCK.requirements[2]],
      findings: [],
    });
  });

  it('accepts a built wheel whose version is spelled differently but equal (1.0 vs 1.0.0)', () => {
    const lock = plan([req('cext', '1.0.0', [hex('d')])]);
    const selection = selectWheels([file('cext-1.0-cp311-cp311-linux_x86_64.whl')], lock, [served('cext', 'cext-1.0.0.tar.gz', hex('d'))]);
    expect(selection.built).toEqual([{ filename: 'cext-1.0-cp311-cp311-linux_x86_64.whl', requirement: 'cext' }]);
    expect(selection.findings).toEqual([]);
  });

  it('refuses a wheel for another project or version, a second built wheel, a non-wheel and anything not a plain file', () => {
    const selection = selectWheels(
      [
        file('alpha-1.0-py3-none-any.whl'),
        file('pure_sdist-0.3-py3-none-any.whl'),
        file('pure_sdist-0.3-cp311-cp311-linux_x86_64.whl'),
        file('alpha-1.0-cp311-cp311-linux_x86_64.whl'),
        file('pure_sdist-0.4-py3-none-any.whl'),
        file('evil-1.0-py3-none-any.whl'),
        file('notes.txt'),
        file('link.whl', 'symlink'),
        file('.hidden.whl'),
      ],
      LOCK,
      SERVED,
    );
    expect(selection.findings.map((f) => [f.rule, f.package, f.message, f.phase])).toEqual([
      [
        'export.unexpected-file',
        'pure-sdist',
        'the wheel phase left "pure_sdist-0.3-cp311-cp311-linux_x86_64.whl": a second wheel for pure-sdist==0.3',
        'wheel',
      ],
      [
        'export.unexpected-file',
        'alpha',
        `the wheel phase left "alpha-1.0-cp311-cp311-linux_x86_64.whl": a wheel of alpha 1.0, which is not a locked sdist's project and version`,
        'wheel',
      ],
      [
        'export.unexpected-file',
        'pure-sdist',
        `the wheel phase left "pure_sdist-0.4-py3-none-any.whl": a wheel of pure-sdist 0.4, which is not a locked sdist's project and version`,
        'wheel',
      ],
      [
        'export.unexpected-file',
        'evil',
        `the wheel phase left "evil-1.0-py3-none-any.whl": a wheel of evil 1.0, which is not a locked sdist's project and version`,
        'wheel',
      ],
      ['export.unexpected-file', null, 'the wheel phase left "notes.txt": not a wheel', 'wheel'],
      ['export.unsafe-entry', null, 'the wheel dir holds symlink "link.whl", not a plain file with a safe name', 'wheel'],
      ['export.unsafe-entry', null, 'the wheel dir holds file ".hidden.whl", not a plain file with a safe name', 'wheel'],
    ]);
  });

  it('says which installed requirement the wheel phase left no wheel for', () => {
    const selection = selectWheels([file('alpha-1.0-py3-none-any.whl')], LOCK, SERVED);
    expect(selection.findings.map((f) => [f.rule, f.package, f.message])).toEqual([
      ['install.failed', 'pure-sdist', 'the wheel phase left no wheel for pure-sdist==0.3'],
    ]);
  });

  it('reads only candidates for built wheels from the container: never a locked wheel, never an unsafe name', () => {
    const wanted = builtCandidate(SERVED);
    expect(
      ['alpha-1.0-py3-none-any.whl', 'pure_sdist-0.3-py3-none-any.whl', 'notes.txt', '../x.whl', 'setuptools-66.1.1-py3-none-any.whl'].filter(wanted),
    ).toEqual(['pure_sdist-0.3-py3-none-any.whl', 'setuptools-66.1.1-py3-none-any.whl']);
  });
});

describe('renderWheelhouseLock', () => {
  it("writes pip-compile's layout: one --hash per file, markers in canonical form, skipped requirements as comments", () => {
    const text = renderWheelhouseLock({
      lockfile: '/src/requirements.lock',
      date: new Date('2026-12-03T10:00:00Z'),
      requirements: [
        { req: { ...req('alpha', '1.0', []), extras: ['fast'] }, sha256: [hex('a')] },
        // A marker is written as rendered from its parse, whatever the plan holds.
        { req: req('cext', '1.0', [], `python_version>='3.8'`), sha256: [hex('1'), hex('2')] },
      ],
      skipped: [req('win-only', '2.0', [hex('c')], `sys_platform  ==  "win32"`)],
    });
    expect(text).toBe(
      [
        '#',
        '# This file was written by sandbox-install wheelhouse from requirements.lock on 2026-12-03T10:00:00.000Z.',
        '# Every hash is that of a wheel in this directory. Install offline with:',
        '#',
        '#    pip install --no-index --find-links <this dir> --require-hashes -r <this dir>/requirements.lock',
        '#',
        'alpha[fast]==1.0 \\',
        `    --hash=sha256:${hex('a')}`,
        'cext==1.0 ; python_version >= "3.8" \\',
        `    --hash=sha256:${hex('1')} \\`,
        `    --hash=sha256:${hex('2')}`,
        '# skipped: win-only==2.0 ; sys_platform == "win32" (its marker is false in the sandbox: not installed, no wheel here)',
        '',
      ].join('\n'),
    );
  });

  it('never writes a line break or a control character from a marker: it refuses the marker', () => {
    for (const marker of ['os_name == "posix"\n--index-url http://evil.invalid/', 'os_name == "\u001b[2J"']) {
      expect(() =>
        renderWheelhouseLock({
          lockfile: 'requirements.lock',
          date: new Date(0),
          requirements: [{ req: req('x', '1.0', [], marker), sha256: [hex('a')] }],
          skipped: [],
        }),
      ).toThrow(/a marker is one line of printable text/);
    }
  });
});

/** A tar stream as readArchive('/tmp/pip-wheelhouse') gives it. */
function wheelDirArchive(entries: Array<{ name: string; data?: string; type?: 'file' | 'symlink' | 'directory'; linkname?: string }>): Readable {
  const pack = tarStream.pack();
  pack.entry({ name: 'pip-wheelhouse/', type: 'directory' });
  for (const entry of entries) pack.entry({ name: `pip-wheelhouse/${entry.name}`, type: entry.type ?? 'file', linkname: entry.linkname }, entry.data ?? '');
  pack.finalize();
  return pack as unknown as Readable;
}

describe('stageWheelhouse', () => {
  async function setup() {
    const work = await mkdtemp(path.join(tmpdir(), 'wheelhouse-test-'));
    const cached = path.join(work, 'cached-alpha.whl');
    await writeFile(cached, 'locked alpha bytes');
    const lock = plan([req('alpha', '1.0', [sha('locked alpha bytes')]), req('pure-sdist', '0.3', [hex('b')])]);
    const servedFiles = [
      served('alpha', 'alpha-1.0-py3-none-any.whl', sha('locked alpha bytes'), cached),
      served('pure-sdist', 'pure_sdist-0.3.tar.gz', hex('b')),
    ];
    const stage = (archive: Readable, output = path.join(work, 'wheels')) =>
      stageWheelhouse({
        output,
        archive,
        plan: lock,
        wanted: builtCandidate(servedFiles),
        select: (entries) => selectWheels(entries, lock, servedFiles),
        date: new Date('2026-12-03T10:00:00Z'),
      });
    return { work, stage };
  }

  it('stages the locked bytes from the cache (not the container), the built wheel as built, the re-hashed lock; publishes by rename', async () => {
    const { work, stage } = await setup();
    const staged = await stage(
      wheelDirArchive([
        { name: 'alpha-1.0-py3-none-any.whl', data: 'whatever the container says' },
        { name: 'pure_sdist-0.3-py3-none-any.whl', data: 'built wheel' },
      ]),
    );
    expect(staged.findings).toEqual([]);
    expect(path.dirname(staged.dir)).toBe(work);
    const output = await staged.publish('{"report":1}\n');
    expect(output).toBe(path.join(work, 'wheels'));
    expect((await readdir(output)).sort()).toEqual([
      '.sandbox-install-manifest.json',
      'alpha-1.0-py3-none-any.whl',
      'pure_sdist-0.3-py3-none-any.whl',
      'report.json',
      'requirements.lock',
    ]);
    expect(await readFile(path.join(output, 'alpha-1.0-py3-none-any.whl'), 'utf8')).toBe('locked alpha bytes');
    expect(await readFile(path.join(output, 'pure_sdist-0.3-py3-none-any.whl'), 'utf8')).toBe('built wheel');
    const lockText = await readFile(path.join(output, 'requirements.lock'), 'utf8');
    expect(lockText).toContain(`alpha==1.0 \\\n    --hash=sha256:${sha('locked alpha bytes')}\n`);
    expect(lockText).toContain(`pure-sdist==0.3 \\\n    --hash=sha256:${sha('built wheel')}\n`);
    expect(await readFile(path.join(output, 'report.json'), 'utf8')).toBe('{"report":1}\n');
    // Nothing else beside the output: the staging dir is gone.
    expect(await readdir(work)).toEqual(['cached-alpha.whl', 'wheels']);

    // A second wheelhouse replaces the first (it carries our manifest).
    const again = await stage(wheelDirArchive([{ name: 'alpha-1.0-py3-none-any.whl' }, { name: 'pure_sdist-0.3-py3-none-any.whl', data: 'rebuilt' }]));
    await again.publish('{}\n');
    expect(await readFile(path.join(output, 'pure_sdist-0.3-py3-none-any.whl'), 'utf8')).toBe('rebuilt');
    expect(await readdir(work)).toEqual(['cached-alpha.whl', 'wheels']);
  });

  it('with a planted file, reports it and discards the staging dir', async () => {
    const { work, stage } = await setup();
    const staged = await stage(
      wheelDirArchive([
        { name: 'alpha-1.0-py3-none-any.whl' },
        { name: 'pure_sdist-0.3-py3-none-any.whl', data: 'built' },
        { name: 'evil-1.0-py3-none-any.whl', data: 'x' },
        { name: 'escape.whl', type: 'symlink', linkname: '/etc/passwd' },
      ]),
    );
    expect(staged.findings.map((f) => f.rule)).toEqual(['export.unexpected-file', 'export.unsafe-entry']);
    await staged.discard();
    expect(await readdir(work)).toEqual(['cached-alpha.whl']);
  });

  it('stops at the entry limit with a finding', async () => {
    const { work } = await setup();
    const staged = await stageWheelhouse({
      output: path.join(work, 'wheels'),
      archive: wheelDirArchive(Array.from({ length: 5 }, (_, i) => ({ name: `f${i}-1.0-py3-none-any.whl`, data: 'x' }))),
      plan: plan([]),
      wanted: () => true,
      select: (entries) => selectWheels(entries, plan([]), []),
      date: new Date(),
      limits: { maxEntries: 3, maxBytes: 1024 },
    });
    expect(staged.findings[0]).toMatchObject({ rule: 'export.unsafe-entry', evidence: { reason: 'limit', limit: 'maxEntries', max: 3 } });
    await staged.discard();
  });

  it('refuses to replace a directory that is not an earlier export', async () => {
    const { work, stage } = await setup();
    const output = path.join(work, 'mine');
    await import('node:fs/promises').then((fs) => fs.mkdir(output));
    await writeFile(path.join(output, 'precious.txt'), 'keep');
    const staged = await stage(wheelDirArchive([{ name: 'alpha-1.0-py3-none-any.whl' }, { name: 'pure_sdist-0.3-py3-none-any.whl', data: 'b' }]), output);
    await expect(staged.publish('{}')).rejects.toThrow(/refusing to replace/);
    expect((await readdir(work)).sort()).toEqual(['cached-alpha.whl', 'mine']);
    expect(await readdir(output)).toEqual(['precious.txt']);
  });
});
