import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderWheelhouseLock, stageWheelhouse } from '../export/wheelhouse.js';
import { noPipOptions } from '../lock/pip-options.js';
import type { LockedRequirement, LockPlan } from '../lock/types.js';
import type { ServedFile } from '../proxy/index.js';
import type { BuiltWheel } from './built-wheels.js';
import { selectWheels } from './wheelhouse.js';

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

const LOCK = plan([req('alpha', '1.0', [hex('a')]), req('pure-sdist', '0.3', [hex('b')]), req('win-only', '2.0', [hex('c')], 'sys_platform == "win32"')]);
const SERVED = [
  served('alpha', 'alpha-1.0-py3-none-any.whl', hex('a')),
  served('pure-sdist', 'pure_sdist-0.3.tar.gz', hex('b')),
  // Served twice (say, to a second try): one file.
  served('pure-sdist', 'pure_sdist-0.3.tar.gz', hex('b')),
  { ...served('setuptools', 'setuptools-66.1.1-py3-none-any.whl', hex('e')), locked: false },
];

describe('selectWheels', () => {
  const built = (requirement: string, filename: string, sha256: string): BuiltWheel => ({ filename, requirement, sha256, size: 1, file: `/built/${filename}` });

  it('takes the locked wheels pip was served from the cache, the built wheel of each built sdist, and skips what was never served', () => {
    const selection = selectWheels(LOCK, SERVED, [built('pure-sdist', 'pure_sdist-0.3-py3-none-any.whl', hex('9'))]);
    expect(selection).toEqual({
      locked: [{ filename: 'alpha-1.0-py3-none-any.whl', requirement: 'alpha', sha256: hex('a'), cachePath: `/cache/${hex('a')}` }],
      built: [{ filename: 'pure_sdist-0.3-py3-none-any.whl', requirement: 'pure-sdist', sha256: hex('9'), file: '/built/pure_sdist-0.3-py3-none-any.whl' }],
      skipped: [LOCK.requirements[2]],
      findings: [],
    });
  });

  it('says which requirement was served only an sdist and has no built wheel', () => {
    const selection = selectWheels(LOCK, SERVED, []);
    expect(selection.findings.map((f) => [f.rule, f.package, f.message])).toEqual([
      ['install.failed', 'pure-sdist', 'no wheel of pure-sdist==0.3 was installed: its sdist was served, and no wheel built from it'],
    ]);
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
    /** The wheel the build phase built, as the host read it. */
    const builtWheel = async (data: string, claimed = sha(data)): Promise<BuiltWheel> => {
      const file = path.join(await mkdtemp(path.join(tmpdir(), 'built-test-')), 'pure_sdist-0.3-py3-none-any.whl');
      await writeFile(file, data);
      return { filename: 'pure_sdist-0.3-py3-none-any.whl', requirement: 'pure-sdist', sha256: claimed, size: data.length, file };
    };
    const stage = async (wheel: BuiltWheel, output = path.join(work, 'wheels')) =>
      stageWheelhouse({ output, plan: lock, selection: selectWheels(lock, servedFiles, [wheel]), date: new Date('2026-12-03T10:00:00Z') });
    return { work, stage, builtWheel };
  }

  it('stages the locked bytes from the cache, the built wheel as installed, the re-hashed lock; publishes by rename', async () => {
    const { work, stage, builtWheel } = await setup();
    const staged = await stage(await builtWheel('built wheel'));
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
    const again = await stage(await builtWheel('rebuilt'));
    await again.publish('{}\n');
    expect(await readFile(path.join(output, 'pure_sdist-0.3-py3-none-any.whl'), 'utf8')).toBe('rebuilt');
    expect(await readdir(work)).toEqual(['cached-alpha.whl', 'wheels']);
  });

  it('refuses a built wheel whose bytes changed on the host since they were read, and leaves nothing', async () => {
    const { work, stage, builtWheel } = await setup();
    await expect(stage(await builtWheel('changed', sha('as installed')))).rejects.toThrow();
    expect(await readdir(work)).toEqual(['cached-alpha.whl']);
  });

  it('refuses to replace a directory that is not an earlier export', async () => {
    const { work, stage, builtWheel } = await setup();
    const output = path.join(work, 'mine');
    await import('node:fs/promises').then((fs) => fs.mkdir(output));
    await writeFile(path.join(output, 'precious.txt'), 'keep');
    const staged = await stage(await builtWheel('b'), output);
    await expect(staged.publish('{}')).rejects.toThrow(/refusing to replace/);
    expect((await readdir(work)).sort()).toEqual(['cached-alpha.whl', 'mine']);
    expect(await readdir(output)).toEqual(['precious.txt']);
  });
});
