import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { importRoots, MAX_ROOTS, pthLinePlace, pthPathLines } from './import-roots.js';
import type { ScannedFile } from './static-scan.js';

function hasPython(): boolean {
  try {
    execFileSync('python3.11', ['-I', '-S', '-c', 'pass'], { stdio: 'ignore', timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/** Lines chosen where a careless reader and site.py part ways. */
const LINES = [
  '# comment',
  'plain',
  'plain', // a second time: site.py adds each directory once
  'trailing \t ',
  'ctrl\x1c\x1d\x85\u3000',
  'bom\ufeff', // not whitespace to Python: the name keeps it
  ' leading', // a path, leading space and all
  ' import nothing', // a path too: only a line starting `import` runs
  'import sys',
  '\x0c\v',
  'up/../down',
  'missing',
  './plain/', // site-packages' own `plain` again
  '/tmp',
  '../outside',
];
const DIRS = ['plain', 'trailing', 'ctrl', 'bom\ufeff', ' leading', ' import nothing', 'down', 'up'];

describe('pthPathLines and pthLinePlace', () => {
  const site = mkdtempSync(path.join(tmpdir(), 'import-roots-'));
  afterAll(() => rmSync(site, { recursive: true, force: true }));

  it('keep the path lines, right-stripped as Python strips them', () => {
    expect(pthPathLines(LINES.join('\r\n'))).toEqual([
      'plain',
      'plain',
      'trailing',
      'ctrl',
      'bom\ufeff',
      ' leading',
      ' import nothing',
      'up/../down',
      'missing',
      './plain/',
      '/tmp',
      '../outside',
    ]);
    expect(['/tmp', '../outside', 'a/../../b', 'x\0y'].map((line) => pthLinePlace(line).outside)).toEqual([true, true, true, true]);
    expect(pthLinePlace('./a//b/')).toEqual({ outside: false, rel: 'a/b' });
    expect(pthLinePlace('a/..')).toEqual({ outside: false, rel: '' });
  });

  it.runIf(hasPython())('add the directories CPython 3.11 site.addpackage adds', () => {
    for (const dir of DIRS) mkdirSync(path.join(site, dir), { recursive: true });
    writeFileSync(path.join(site, 'x.pth'), LINES.join('\n'));
    const script = [
      'import json, os, site, sys',
      'd = sys.argv[1]',
      'known = {os.path.normcase(d)}',
      'before = len(sys.path)',
      "site.addpackage(d, 'x.pth', known)",
      'print(json.dumps([os.path.relpath(p, d) for p in sys.path[before:]]))',
    ].join('\n');
    const python = JSON.parse(execFileSync('python3.11', ['-I', '-S', '-c', script, site], { encoding: 'utf8', timeout: 30_000 })) as string[];

    const ours: string[] = [];
    for (const line of pthPathLines(LINES.join('\n'))) {
      const place = pthLinePlace(line);
      if (place.outside || place.rel === '' || ours.includes(place.rel) || !DIRS.includes(place.rel)) continue;
      ours.push(place.rel);
    }
    // Outside site-packages (`/tmp` exists) is static.pth-path's, not a root.
    expect(ours).toEqual(python.filter((p) => !p.startsWith('..')));
    expect(python).toContain(path.relative(site, '/tmp'));
  });
});

describe('importRoots on hostile .pth text', () => {
  const file = (p: string, type: ScannedFile['type'] = 'file'): ScannedFile => ({
    path: p,
    type,
    mode: 0o644,
    size: 0,
    sha256: null,
    linkname: null,
    owner: 'x',
  });
  const TREE = [file('a', 'directory'), file('a/b', 'directory'), file('a/b/m.py'), file('c/n.py'), file('f.zip'), file('x.pth')];
  const piece = fc.constantFrom('a', 'b', 'c', 'f.zip', '..', '.', '/', '//', ' ', '\t', '\x1c', '\r', '\n', '\r\n', '#', 'import ', '\0', '\ufeff');

  it('yields only directories inside site-packages, site-packages first, each once, within the cap', () => {
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), (parts) => {
        const text = parts.join('');
        const { roots, findings } = importRoots({ files: TREE, text: () => text, resolve: (rel) => ({ path: rel }) });
        expect(roots[0]).toEqual({ dir: '', pth: null, pthOwner: null });
        const dirs = roots.slice(1).map((r) => r.dir);
        expect(new Set(dirs).size).toBe(dirs.length);
        expect(roots.length).toBeLessThanOrEqual(MAX_ROOTS + 1);
        for (const dir of dirs) expect(['a', 'a/b', 'c']).toContain(dir);
        for (const f of findings) expect(f.rule).toBe('static.pth-path');
      }),
      { numRuns: 500 },
    );
  });
});
