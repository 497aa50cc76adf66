import { describe, expect, it } from 'vitest';
import { parseLock } from './parse.js';
import { parsePylock } from './pylock.js';
import { renderPylock, renderRequirementsLock, type LockEntry, type LockProvenance } from './write.js';

const sha = (c: string) => c.repeat(64);

const provenance: LockProvenance = {
  toolVersion: '0.1.0',
  source: 'requirements.in',
  date: '2026-12-03',
  pipVersion: '23.0.1',
  pythonVersion: '3.11.2',
  machine: 'x86_64',
  indexes: ['https://mirror.example.invalid/simple/'],
  command: 'sandbox-install lock requirements.in -o requirements.lock',
};

const entries: LockEntry[] = [
  {
    name: 'parent-app',
    version: '1.0',
    requested: true,
    requiredBy: [],
    files: [
      { filename: 'parent_app-1.0-py3-none-any.whl', sha256: sha('b'), url: 'https://files.example.invalid/parent_app-1.0-py3-none-any.whl', kind: 'wheel' },
    ],
  },
  {
    name: 'child-lib',
    version: '2.0',
    requested: true,
    requiredBy: ['parent-app', 'other-app'],
    files: [
      { filename: 'child_lib-2.0.tar.gz', sha256: sha('d'), url: 'https://files.example.invalid/child_lib-2.0.tar.gz', kind: 'sdist' },
      { filename: 'child_lib-2.0-py3-none-any.whl', sha256: sha('c'), url: 'https://files.example.invalid/child_lib-2.0-py3-none-any.whl', kind: 'wheel' },
    ],
  },
  {
    name: 'other-app',
    version: '3.0',
    requested: false,
    requiredBy: ['parent-app'],
    files: [{ filename: 'other_app-3.0.tar.gz', sha256: sha('e'), url: 'https://files.example.invalid/other_app-3.0.tar.gz', kind: 'sdist' }],
  },
];

describe('renderRequirementsLock', () => {
  it("writes pip-compile's layout: sorted names, sorted hashes, # via, and a header that says how", () => {
    expect(renderRequirementsLock(entries, provenance)).toBe(
      [
        '# This file was written by sandbox-install lock 0.1.0 from requirements.in on 2026-12-03; resolved inside the sandbox (pip 23.0.1, CPython 3.11.2, linux x86_64) against https://mirror.example.invalid/simple/',
        '# The resolution holds for CPython 3.11 on linux x86_64 (glibc): environment markers were evaluated for CPython 3.11.2, and only the wheels that platform can install are listed, with the sdist.',
        '#',
        '#    sandbox-install lock requirements.in -o requirements.lock',
        '#',
        'child-lib==2.0 \\',
        `    --hash=sha256:${sha('c')} \\`,
        `    --hash=sha256:${sha('d')}`,
        '    # via',
        '    #   -r requirements.in',
        '    #   other-app',
        '    #   parent-app',
        'other-app==3.0 \\',
        `    --hash=sha256:${sha('e')}`,
        '    # via parent-app',
        'parent-app==1.0 \\',
        `    --hash=sha256:${sha('b')}`,
        '    # via -r requirements.in',
        '',
      ].join('\n'),
    );
  });

  it('reads back as the same pins and hashes', () => {
    const plan = parseLock(renderRequirementsLock(entries, provenance), 'requirements.lock');
    expect(plan.requirements.map((r) => [r.name, r.version, r.sha256])).toEqual([
      ['child-lib', '2.0', [sha('c'), sha('d')]],
      ['other-app', '3.0', [sha('e')]],
      ['parent-app', '1.0', [sha('b')]],
    ]);
  });

  it('keeps a path with a line break on its comment line', () => {
    const text = renderRequirementsLock(entries.slice(0, 1), { ...provenance, source: 'a\nevil==1.0 --hash=sha256:' + sha('f') });
    expect(parseLock(text, 'requirements.lock').requirements.map((r) => r.name)).toEqual(['parent-app']);
    expect(text).toContain('from a\\x0aevil==1.0');
  });
});

describe('renderPylock', () => {
  it('writes PEP 751 that parsePylock reads back, with files, hashes and the platform it holds for', () => {
    const text = renderPylock(entries, provenance);
    expect(text).toContain("environments = [ \"python_version == '3.11' and sys_platform == 'linux' and platform_machine == 'x86_64'\" ]");
    expect(text).toContain('lock-version = "1.0"');
    expect(text).toContain('created-by = "sandbox-install"');
    expect(text.startsWith('# This file was written by sandbox-install lock 0.1.0')).toBe(true);
    const plan = parsePylock(text, 'pylock.toml');
    expect(plan.requirements.map((r) => [r.name, r.version, r.files])).toEqual([
      [
        'child-lib',
        '2.0',
        [
          { filename: 'child_lib-2.0-py3-none-any.whl', sha256: sha('c'), kind: 'wheel' },
          { filename: 'child_lib-2.0.tar.gz', sha256: sha('d'), kind: 'sdist' },
        ],
      ],
      ['other-app', '3.0', [{ filename: 'other_app-3.0.tar.gz', sha256: sha('e'), kind: 'sdist' }]],
      ['parent-app', '1.0', [{ filename: 'parent_app-1.0-py3-none-any.whl', sha256: sha('b'), kind: 'wheel' }]],
    ]);
  });
});
