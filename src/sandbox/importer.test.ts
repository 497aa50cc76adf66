/**
 * images/importer.py on this machine's python3, on a site-packages made here: what it plans to
 * import, how it counts what did, and that a process hanging or dying costs one module, not the
 * rest; with --reap, that nothing an import started outlives it. Without the tracer.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseImportCoverage } from '../core/import-coverage.js';

const IMPORTER = new URL('../../images/importer.py', import.meta.url).pathname;

function python(): string | null {
  try {
    execFileSync('python3', ['-I', '-S', '-c', 'import sys; assert sys.version_info >= (3, 9)'], { stdio: 'ignore' });
    return 'python3';
  } catch {
    return null;
  }
}
const PYTHON = python();

let work = '';
let site = '';
const files: Record<string, string> = {
  'good/__init__.py': '',
  'good/core.py': 'VALUE = 1\n',
  'good/sub/__init__.py': '',
  'good/sub/deep.py': 'VALUE = 2\n',
  'good/__main__.py': 'raise SystemExit("a command line, never imported")\n',
  'good/not-a-name.py': '',
  'broken/__init__.py': '',
  'broken/a.py': 'import does_not_exist_anywhere\n',
  'broken/b.py': 'VALUE = 3\n',
  'stuck/__init__.py': '',
  'stuck/a_hangs.py': 'import threading\nthreading.Event().wait()\n',
  'stuck/b_after.py': 'VALUE = 4\n',
  'dies/__init__.py': '',
  'dies/a_exits.py': 'import os\nos._exit(3)\n',
  'dies/b_after.py': 'VALUE = 5\n',
  'nsp/inner/__init__.py': '',
  'nsp/inner/leaf.py': '',
  'single.py': '',
  'good-1.0.dist-info/RECORD': 'good/__init__.py,,\ngood/core.py,,\n',
};

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-importer-'));
  site = path.join(work, 'site-packages');
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(site, name)), { recursive: true });
    await writeFile(path.join(site, name), content);
  }
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function plan(maxModules: number): { groups: Array<[string, string, string[]]>; boundHit: boolean } {
  const code = `import json, sys; sys.path.insert(0, sys.argv[1]); import importer; g, b = importer.plan(sys.argv[2], int(sys.argv[3])); print(json.dumps({"groups": g, "boundHit": b}))`;
  return JSON.parse(execFileSync(PYTHON!, ['-I', '-S', '-B', '-c', code, path.dirname(IMPORTER), site, String(maxModules)], { encoding: 'utf8' })) as never;
}

describe.runIf(PYTHON !== null)('images/importer.py', () => {
  it('plans every top-level module and each submodule by its files; __main__ and non-names are left out; a namespace stands for what it holds', () => {
    const { groups, boundHit } = plan(2000);
    expect(groups).toEqual([
      ['broken', '', ['broken', 'broken.a', 'broken.b']],
      ['dies', '', ['dies', 'dies.a_exits', 'dies.b_after']],
      ['good', 'good', ['good', 'good.core', 'good.sub', 'good.sub.deep']],
      ['nsp.inner', '', ['nsp.inner', 'nsp.inner.leaf']],
      ['single', '', ['single']],
      ['stuck', '', ['stuck', 'stuck.a_hangs', 'stuck.b_after']],
    ]);
    expect(boundHit).toBe(false);
  });

  it('the bound cuts submodules, never a top-level module before them, and says it was hit', () => {
    const { groups, boundHit } = plan(8);
    expect(groups.map((g) => g[2])).toEqual([['broken', 'broken.a', 'broken.b'], ['dies'], ['good'], ['nsp.inner'], ['single'], ['stuck']]);
    expect(boundHit).toBe(true);
    expect(plan(3).groups.map((g) => g[0])).toEqual(['broken', 'dies', 'good']);
  });

  it('imports everything as an application; one module that hangs or kills its process costs only itself', () => {
    const out = execFileSync(PYTHON!, ['-I', '-S', IMPORTER, site, '3', '--linger', '0.2'], { encoding: 'utf8', timeout: 120_000 });
    const coverage = parseImportCoverage(out);
    expect(coverage).toMatchObject({
      planned: 16,
      imported: 13,
      failed: 2,
      timedOut: 1,
      topLevel: 6,
      // One more process after the hang, and one more after the exit.
      processes: 8,
      boundHit: false,
      failedModules: ['broken.a', 'dies.a_exits'],
      timedOutModules: ['stuck.a_hangs'],
    });
    const lines = out
      .trim()
      .split('\n')
      .slice(0, -1)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l.module === 'stuck').map((l) => [l.timedOut, l.from])).toEqual([
      [true, 0],
      [false, 2],
    ]);
    expect(lines.filter((l) => l.module === 'dies').map((l) => [l.exitCode, l.from])).toEqual([
      [3, 0],
      [0, 2],
    ]);
    expect(lines.find((l) => l.module === 'good')).toMatchObject({ distribution: 'good', exitCode: 0, timedOut: false });
  }, 120_000);

  it('a process that repeats its progress lines cannot keep its deadline away', async () => {
    const spamSite = path.join(work, 'spam-site');
    await mkdir(path.join(spamSite, 'chatty'), { recursive: true });
    await writeFile(
      path.join(spamSite, 'chatty', '__init__.py'),
      `import sys, threading
frame = sys._getframe()
while frame is not None and "out" not in frame.f_locals:
    frame = frame.f_back
out = frame.f_locals["out"]
while True:
    out.write("start 0\\n")
    threading.Event().wait(0.1)
`,
    );
    const started = Date.now();
    const out = execFileSync(PYTHON!, ['-I', '-S', IMPORTER, spamSite, '2', '--linger', '0'], { encoding: 'utf8', timeout: 60_000 });
    expect(parseImportCoverage(out)).toMatchObject({ planned: 1, timedOut: 1, timedOutModules: ['chatty'] });
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);

  it('with --reap, a hung import and the process it started in a session of its own are both killed', async () => {
    const marker = `marker-${process.pid}-${Date.now()}`;
    const reapSite = path.join(work, 'reap-site');
    await mkdir(path.join(reapSite, 'spawner'), { recursive: true });
    await writeFile(
      path.join(reapSite, 'spawner', '__init__.py'),
      `import subprocess, sys, threading
subprocess.Popen([sys.executable, "-c", "import threading; threading.Event().wait(300)", ${JSON.stringify(marker)}], start_new_session=True)
threading.Event().wait(300)
`,
    );
    const out = execFileSync(PYTHON!, ['-I', '-S', IMPORTER, reapSite, '2', '--linger', '0', '--reap'], { encoding: 'utf8', timeout: 60_000 });
    expect(parseImportCoverage(out)).toMatchObject({ planned: 1, timedOut: 1, timedOutModules: ['spawner'] });
    const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes(marker));
    expect(left).toEqual([]);
  }, 60_000);

  it('an import process runs main.py unisolated, with site, bytecode on (to its own prefix), the stdlib loaded, and lingers', async () => {
    const probe = path.join(work, 'probe');
    await mkdir(path.join(probe, 'site', 'ctx'), { recursive: true });
    const seen = path.join(work, 'seen.json');
    await writeFile(
      path.join(probe, 'site', 'ctx', '__init__.py'),
      `import json, sys, threading
main = sys.modules["__main__"]
def later():
    with open(${JSON.stringify(seen)}, "w") as f:
        json.dump({"isolated": sys.flags.isolated, "no_site": sys.flags.no_site, "dont_write_bytecode": sys.flags.dont_write_bytecode,
                   "argv": sys.argv, "orig_argv": sys.orig_argv, "main_file": getattr(main, "__file__", None),
                   "logging": "logging" in sys.modules, "prefix": sys.pycache_prefix}, f)
t = threading.Timer(0.3, later)
t.daemon = True
t.start()
`,
    );
    execFileSync(PYTHON!, ['-I', '-S', IMPORTER, path.join(probe, 'site'), '5', '--linger', '1.5'], { encoding: 'utf8', timeout: 60_000 });
    expect(existsSync(seen)).toBe(true);
    const got = JSON.parse(await readFile(seen, 'utf8')) as Record<string, unknown>;
    expect(got).toMatchObject({ isolated: 0, no_site: 0, dont_write_bytecode: 0, argv: ['main.py'], logging: true });
    expect(String(got.main_file)).toMatch(/\/main\.py$/);
    expect(got.orig_argv).not.toContain('-c');
    expect(JSON.stringify(got.argv)).not.toContain('site');
    expect(String(got.prefix)).not.toContain(path.join(probe, 'site'));
    // Nothing was written into the site dir: bytecode went to the prefix, which is gone.
    expect(existsSync(path.join(probe, 'site', 'ctx', '__pycache__'))).toBe(false);
    expect(existsSync(String(got.prefix))).toBe(false);
  }, 60_000);
});
