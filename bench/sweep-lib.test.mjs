import { describe, expect, it } from 'vitest';
import {
  chunk,
  conflictSets,
  fileOverlaps,
  lockFromPipReport,
  parseSimpleIndex,
  pipReason,
  readRunReport,
  renderMarkdown,
  rerunId,
  rerunPlan,
  resolveGroups,
  summarize,
  trigger,
} from './sweep-lib.mjs';

const SHA = (c) => c.repeat(64);

/** An item of pip's --report, as pip 23 writes it for a file from an index page with #sha256=. */
const pipItem = (name, version, sha256, filename = `${name}-${version}-py3-none-any.whl`) => ({
  download_info: { url: `file:///mirror/files/${filename}`, archive_info: { hash: `sha256=${sha256}`, hashes: { sha256 } } },
  requested: true,
  metadata: { name, version },
});

/** A judged finding as the report holds it. */
const judged = (rule, pkg, evidence, { action = 'fail', severity = 'high', message = `${evidence.path ?? rule}` } = {}) => ({
  rule,
  severity,
  package: pkg,
  message,
  evidence,
  phase: 'install',
  action,
  failing: action === 'fail' && severity !== 'info',
});

const report = (verdict, packages, findings) => ({
  verdict,
  packages: packages.map(([name, version]) => ({ name, version })),
  findings,
  timings: { install: 3843, total: 7716 },
  error: null,
});

describe('the mirror index', () => {
  it('lists the projects a PEP 503 root page links, normalised', () => {
    const html =
      '<!DOCTYPE html><html><body>\n<a href="absl-py/">absl-py</a>\n<a href="Zope.Interface/">Zope.Interface</a>\n<a href="x/">bad name!</a>\n</body></html>';
    expect(parseSimpleIndex(html)).toEqual(['absl-py', 'zope-interface']);
  });
});

describe('grouping', () => {
  it('slices projects into groups of the given size', () => {
    expect(chunk(['a', 'b', 'c', 'd', 'e'], 2)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    expect(() => chunk(['a'], 0)).toThrow(/at least 1/);
  });

  it('splits a group that does not resolve in halves, skips a project that does not resolve alone with its reason, and joins the rest again', async () => {
    const seen = [];
    const resolve = async (part) => {
      seen.push(part.join(','));
      return part.includes('broken') ? { ok: false, reason: `ERROR: no ${part.join(' ')}` } : { ok: true, lock: { dists: part }, overlaps: [] };
    };
    const { groups, skipped } = await resolveGroups(['a', 'b', 'broken', 'c', 'd'], 4, resolve);
    expect(groups.map((g) => g.projects)).toEqual([['a', 'b', 'c'], ['d']]);
    expect(groups[0].lock.dists).toEqual(['a', 'b', 'c']);
    expect(skipped).toEqual([{ project: 'broken', reason: 'ERROR: no broken' }]);
    // The halves, the halves of the half that failed, then the parts that resolved, together.
    expect(seen).toEqual(['a,b,broken,c', 'a,b', 'broken,c', 'broken', 'c', 'a,b,c', 'd']);
  });

  it('splits a group whose wheels share files until they are apart, and keeps a project that overlaps on its own', async () => {
    const overlap = [{ path: 'cv2/__init__.py', distributions: ['opencv-python', 'opencv-python-headless'] }];
    const calls = [];
    const resolve = async (part) => {
      calls.push(part.join());
      const overlaps = (part.includes('opencv-python') && part.includes('opencv-python-headless')) || part.includes('both') ? overlap : [];
      return { ok: true, lock: { dists: part }, overlaps };
    };
    const { groups, skipped } = await resolveGroups(['opencv-python', 'opencv-python-headless', 'x', 'y', 'both'], 4, resolve);
    expect(skipped).toEqual([]);
    expect(groups.map((g) => [g.projects, g.overlaps.length])).toEqual([
      [['opencv-python'], 0],
      [['opencv-python-headless', 'x', 'y'], 0],
      [['both'], 1],
    ]);
    expect(calls).toHaveLength(new Set(calls).size); // each set of projects resolved once
  });
});

describe('file overlaps between wheels', () => {
  it('finds site-packages paths two wheels install, purelib and platlib included, scripts and dist-info left out', () => {
    const overlaps = fileOverlaps([
      { name: 'pygame', entries: ['pygame/__init__.py', 'pygame/base.so', 'pygame-2.6.dist-info/RECORD', 'pygame-2.6.data/scripts/pg', 'pygame/'] },
      {
        name: 'pygame-ce',
        entries: ['pygame-ce-2.5.data/platlib/pygame/base.so', 'pygame/__init__.py', 'pygame_ce-2.5.dist-info/RECORD', 'pygame-ce-2.5.data/scripts/pg'],
      },
      { name: 'other', entries: ['other/__init__.py', 'pygame/'] },
    ]);
    expect(overlaps).toEqual([
      { path: 'pygame/__init__.py', distributions: ['pygame', 'pygame-ce'] },
      { path: 'pygame/base.so', distributions: ['pygame', 'pygame-ce'] },
    ]);
    expect(conflictSets(overlaps)).toEqual([{ distributions: ['pygame', 'pygame-ce'], paths: ['pygame/__init__.py', 'pygame/base.so'], count: 2 }]);
  });
});

describe('the lock', () => {
  it('pins each distribution pip chose to the sha256 of its file, sorted by name', () => {
    const lock = lockFromPipReport({
      install: [pipItem('Requests', '2.34.2', SHA('b'), 'requests-2.34.2-py3-none-any.whl'), pipItem('certifi', '2026.1.1', SHA('a'))],
    });
    expect(lock.text).toBe(`certifi==2026.1.1 \\\n    --hash=sha256:${SHA('a')}\nrequests==2.34.2 \\\n    --hash=sha256:${SHA('b')}\n`);
    expect(lock.dists.map((d) => [d.name, d.filename])).toEqual([
      ['certifi', 'certifi-2026.1.1-py3-none-any.whl'],
      ['requests', 'requests-2.34.2-py3-none-any.whl'],
    ]);
  });

  it('refuses an entry without a sha256', () => {
    const item = pipItem('x', '1', SHA('c'));
    item.download_info.archive_info = {};
    expect(() => lockFromPipReport({ install: [item] })).toThrow(/no sha256 for x 1/);
  });

  it("takes pip's reason from its first ERROR line, warnings left out", () => {
    const stderr =
      "WARNING: Location 'file:///m/x/' is ignored\nERROR: Could not find a version that satisfies the requirement x (from versions: none)\nERROR: No matching distribution found for x\n";
    expect(pipReason(stderr)).toBe('ERROR: Could not find a version that satisfies the requirement x (from versions: none)');
  });
});

describe("a run's report", () => {
  it('reads the failing findings with their package and trigger, and counts warnings per rule', () => {
    const read = readRunReport(
      report(
        'fail',
        [
          ['coverage', '7.16.2'],
          ['Flask', '3.1'],
        ],
        [
          judged('static.pth-exec', 'coverage', { path: 'a1_coverage.pth', lines: ['import sys; exec(\n"x")'] }),
          judged('static.script-shadowing', 'pip', { script: 'pip3', path: 'bin/pip3' }),
          judged('static.autoload-entry-point', 'flask', { group: 'x' }, { action: 'warn', severity: 'low' }),
          judged('static.autoload-entry-point', 'flask', { group: 'y' }, { action: 'warn', severity: 'low' }),
          judged('network.dns', null, { name: 'x.invalid' }, { action: 'fail', message: 'DNS query for x.invalid' }),
          judged('static.pth-exec', 'other', { path: 'o.pth' }, { action: 'ignore' }),
        ],
      ),
    );
    expect(read.installed).toEqual([
      { name: 'coverage', version: '7.16.2' },
      { name: 'flask', version: '3.1' },
    ]);
    expect(read.failing).toEqual([
      { rule: 'static.pth-exec', package: 'coverage', phase: 'install', severity: 'high', trigger: 'a1_coverage.pth: import sys; exec( "x")' },
      { rule: 'static.script-shadowing', package: 'pip', phase: 'install', severity: 'high', trigger: 'bin/pip3: script pip3' },
      { rule: 'network.dns', package: null, phase: 'install', severity: 'high', trigger: 'DNS query for x.invalid' },
    ]);
    expect(read.warnings).toEqual({ 'static.autoload-entry-point': 2 });
    expect(read.conflicts).toEqual([]);
    expect(read.seconds).toBe(7.716); // the report's total, not the wall time with the wait for the engine
  });

  it('reports files claimed by several RECORDs, mismatches on those files and shadowing between them as conflicts, not failures', () => {
    const read = readRunReport(
      report(
        'fail',
        [
          ['opencv-python', '4.12'],
          ['opencv-python-headless', '4.12'],
        ],
        [
          judged('static.unrecorded-file', null, { path: 'cv2/__init__.py', claimedBy: ['opencv_python', 'opencv-python-headless'] }),
          judged('integrity.installed-mismatch', 'opencv-python', { path: 'cv2/__init__.py', kind: 'different', distribution: 'opencv-python' }),
          judged('integrity.installed-mismatch', 'opencv-python', { path: 'cv2/data/x.xml', kind: 'different' }),
          judged('static.import-shadowing', 'opencv-python', {
            path: 'cv2/cv2.so',
            module: 'cv2.cv2',
            shadowed: 'opencv-python-headless',
            shadowedPath: 'cv2/cv2.py',
          }),
          judged(
            'static.import-shadowing',
            'opencv-python',
            { path: 'cv2/y.so', module: 'cv2.y', shadowed: 'numpy', shadowedPath: 'cv2/y.py' },
            { message: 'cv2/y.so of opencv-python shadows cv2/y.py of numpy' },
          ),
        ],
      ),
      { overlaps: [{ path: 'cv2/data/x.xml', distributions: ['opencv-python', 'opencv-python-headless'] }] },
    );
    // Shadowing between the two conflicting distributions is the conflict; shadowing another's module is not.
    expect(read.failing.map((f) => [f.rule, f.package, f.trigger])).toEqual([
      ['static.import-shadowing', 'opencv-python', 'cv2/y.so: of opencv-python shadows cv2/y.py of numpy'],
    ]);
    expect(read.conflicts).toEqual([
      { distributions: ['opencv-python', 'opencv-python-headless'], paths: ['cv2/data/x.xml', 'cv2/__init__.py'], count: 2, findings: 4 },
    ]);
  });

  it("reads the tool's integrity.file-conflict as the conflict, with what it leaves on the shared files", () => {
    const read = readRunReport(
      report(
        'fail',
        [
          ['pygame', '2.6.1'],
          ['pygame-ce', '2.5.8'],
        ],
        [
          judged('integrity.file-conflict', null, {
            distributions: ['pygame', 'pygame-ce'],
            files: 375,
            paths: ['pygame/__init__.py', 'pygame/base.so'],
            overwritten: 50,
          }),
          judged('integrity.installed-mismatch', 'pygame', { path: 'pygame/base.so', kind: 'missing', distribution: 'pygame' }),
          judged('static.import-shadowing', 'pygame', { path: 'pygame/_sprite.so', shadowed: 'pygame-ce', shadowedPath: 'pygame/_sprite.py' }),
          judged('static.pth-exec', 'pygame-ce', { path: 'x.pth', lines: ['import x'] }),
        ],
      ),
    );
    expect(read.conflicts).toEqual([{ distributions: ['pygame', 'pygame-ce'], paths: ['pygame/__init__.py', 'pygame/base.so'], count: 375, findings: 3 }]);
    expect(read.failing.map((f) => [f.rule, f.package])).toEqual([['static.pth-exec', 'pygame-ce']]);
  });

  it('counts nothing as installed when the install did not run to a verdict', () => {
    expect(readRunReport(report('error', [['x', '1']], [])).installed).toEqual([]);
  });

  it('puts package-controlled evidence on one escaped, bounded line', () => {
    const line = trigger(judged('static.pth-exec', 'x', { path: 'x.pth', lines: [`import os\u202e${'y'.repeat(300)}`] }), (s) =>
      s.replace('\u202e', '\\u202e'),
    );
    expect(line.startsWith('x.pth: import os\\u202eyyy')).toBe(true);
    expect(line).toHaveLength(160);
    expect(line.endsWith('…')).toBe(true);
  });
});

describe('the totals', () => {
  const run = (id, verdict, installed, failing, extra = {}) => ({
    id,
    projects: [],
    seconds: 10,
    wallSeconds: 25,
    exitCode: verdict === 'pass' ? 0 : 1,
    verdict,
    installed: installed.map(([name, version]) => ({ name, version })),
    failing,
    conflicts: [],
    warnings: {},
    error: null,
    ...extra,
  });
  const fail = (pkg, rule, trigger) => ({ rule, package: pkg, phase: 'install', severity: 'high', trigger });

  it('counts distinct distributions, those failing (per rule, triggers folded), the rate and the time', () => {
    const s = summarize([
      run(
        'group-001',
        'fail',
        [
          ['gmsh', '4.15'],
          ['numpy', '2.3'],
          ['a', '1'],
        ],
        [fail('gmsh', 'static.unrecorded-file', 'METADATA'), fail('gmsh', 'static.unrecorded-file', 'WHEEL'), fail(null, 'network.dns', 'x.invalid')],
        { warnings: { 'static.autoload-entry-point': 1 } },
      ),
      run(
        'group-001-r2',
        'pass',
        [
          ['numpy', '2.3'],
          ['b', '1'],
        ],
        [],
        { warnings: { 'static.autoload-entry-point': 2 } },
      ),
    ]);
    expect(s.installed).toBe(4);
    expect(s.exported).toBe(2);
    expect(s.notExported).toEqual(['a==1']);
    expect(s.failing).toEqual([
      {
        name: 'gmsh',
        version: '4.15',
        groups: ['group-001'],
        findings: [{ rule: 'static.unrecorded-file', phase: 'install', count: 2, triggers: ['METADATA', 'WHEEL'] }],
      },
    ]);
    expect(s.rate).toBe(25);
    expect(s.unattributed).toEqual([{ group: 'group-001', ...fail(null, 'network.dns', 'x.invalid') }]);
    expect(s.warnings).toEqual({ 'static.autoload-entry-point': 3 });
    expect(s.seconds).toBe(20);
    expect(s.wallSeconds).toBe(50);
  });

  it('runs again what did not fail, without what failed or conflicts', () => {
    const read = {
      verdict: 'fail',
      exitCode: 1,
      installed: [
        { name: 'virtualenv', version: '21' },
        { name: 'filelock', version: '4' },
        { name: 'pygame', version: '2' },
      ],
      failing: [fail('virtualenv', 'static.script-shadowing', 'script virtualenv')],
      conflicts: [{ distributions: ['pygame', 'pygame-ce'], paths: ['pygame/x.py'], count: 1 }],
    };
    expect(rerunPlan(read, ['virtualenv', 'pygame'])).toEqual({ kind: 'without', parts: [['filelock==4']], bad: ['pygame', 'pygame-ce', 'virtualenv'] });
    expect(rerunPlan({ ...read, verdict: 'pass', failing: [], conflicts: [] }, ['a', 'b'])).toBeNull();
  });

  it('runs the projects again in halves when a failing finding names no package or the install had no verdict', () => {
    const read = { verdict: 'fail', exitCode: 1, installed: [], failing: [fail('a', 'static.pth-exec', 'x'), fail(null, 'network.dns', 'x')], conflicts: [] };
    const halves = { kind: 'halves', parts: [['a', 'b'], ['c']], bad: [] };
    expect(rerunPlan(read, ['a', 'b', 'c'])).toEqual(halves);
    expect(rerunPlan({ ...read, verdict: 'error', exitCode: 4, failing: [] }, ['a', 'b', 'c'])).toEqual(halves);
    expect(rerunPlan(read, ['a'])).toBeNull();
    // The environment, not the packages: nothing to learn from running them again.
    expect(rerunPlan({ ...read, verdict: 'error', exitCode: 3, failing: [] }, ['a', 'b', 'c'])).toBeNull();
    expect(rerunPlan({ ...read, verdict: null, exitCode: null }, ['a', 'b', 'c'])).toBeNull();
  });

  it('names the runs of the next round after their group, uniquely', () => {
    expect(rerunId('group-001', 2, 0, 1)).toBe('group-001-r2');
    expect(rerunId('group-001-r2', 3, 0, 1)).toBe('group-001-r3');
    expect([rerunId('group-001-r2', 3, 0, 2), rerunId('group-001-r2', 3, 1, 2)]).toEqual(['group-001-r3.1', 'group-001-r3.2']);
    expect(rerunId('group-001-r3.2', 4, 0, 1)).toBe('group-001-r3.2-r4');
  });

  it('writes a subset run as a subset, with the rate to two decimals', () => {
    const groups = [
      run(
        'group-001',
        'fail',
        [
          ['coverage', '7'],
          ['b', '1'],
          ['c', '1'],
        ],
        [fail('coverage', 'static.pth-exec', 'a1_coverage.pth: import sys')],
      ),
    ];
    const md = renderMarkdown({
      date: '2026-12-08T00:00:00Z',
      tool: { version: '0.1.0', commit: 'abc' },
      mirror: ['file:///opt/pypi/simple'],
      policy: 'default',
      resolver: 'pip 23.2.1 on python3.11',
      machine: { cpus: '2', memoryGiB: 24, kernel: 'Linux', node: 'v20', engine: '20' },
      subset: '--limit 3',
      resolveSeconds: 1,
      projects: { listed: 881, covered: ['coverage', 'b', 'c', 'd'], skipped: [{ project: 'd', reason: 'ERROR: no | wheel' }] },
      keptApart: [],
      summary: summarize(groups),
      groups,
      command: 'npm run sweep -- --limit 3',
    });
    expect(md).toContain('**Subset run** (--limit 3): 4 of the mirror');
    expect(md).toContain('| rate (of the distributions installed) | 33.33 % |');
    expect(md).toContain('| coverage | 7 | `static.pth-exec` | install | a1_coverage.pth: import sys | group-001 |');
    expect(md).toContain('| d | ERROR: no \\| wheel |');
  });
});
