/**
 * wheelhouse, from argv to exit code, on the fake engine: bad input before any run, a policy
 * failure in the install phase that writes nothing (not even a staging dir), strict refusing an
 * sdist-only entry before any run, and SARIF on stdout. No Docker, no network: the proxy runs on a
 * unix socket in a temp dir against a file:// index. The fake serves nothing through the proxy, so
 * a wheelhouse holding wheels (locked wheels copied from the verified cache, sdists built into
 * wheels, the lock re-hashed to them) is left to test/integration/wheelhouse.integration.test.ts;
 * here a pass publishes the wheelhouse of an empty lock.
 */
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { beforeEach, describe, expect, it } from 'vitest';
import { main } from '../index.js';
import { BUILT_DIR, SITE_PACKAGES, WHEEL_DIR } from '../../core/layout.js';
import type { PhaseSpec } from '../../core/outcome.js';
import { FakeEngine, type FakeRun } from '../../runtime/fake.js';
import { dnsQuery, exists, phaseFiles, quietStartup, useFakeCli, writeSdistOnlyLock } from './fake-cli.js';

/** Both phases ran and exited 0: install from 1 to 2, startup from 2.5; the wheel dir is empty. */
function run(overrides: Partial<FakeRun> = {}): FakeRun {
  return {
    exitCode: 0,
    files: phaseFiles([{ phase: 'install', rootPid: 10, started: 1, argv: ['python3', '-m', 'pip', 'install'] }, quietStartup(2.5)]),
    trees: { [SITE_PACKAGES]: {}, [BUILT_DIR]: {} },
    output: '',
    ...overrides,
  };
}

/** A run that built only_sdist in the build phase (its wheel `wheel` left in the wheel dir) and installed `tree`. */
function builtRun(tree: Record<string, string>, wheel: Buffer): FakeRun {
  return run({
    files: phaseFiles([
      { phase: 'build', rootPid: 5, started: 0.5, argv: ['python3', '-m', 'pip', 'wheel'] },
      { phase: 'install', rootPid: 10, started: 1, argv: ['python3', '-m', 'pip', 'install'] },
      quietStartup(2.5),
    ]),
    trees: { [SITE_PACKAGES]: tree, [BUILT_DIR]: { 'only_sdist-1.0-py3-none-any.whl': wheel } },
  });
}

const DNS = dnsQuery('collect.wheelhouse.invalid');

const MAKE_DIST = fileURLToPath(new URL('../../../test/fixtures/make_dist.py', import.meta.url));

/** A wheel built by the fixture builder (a correct RECORD), its bytes, and its entries as pip installs them into site-packages. */
async function realWheel(work: string, name: string, files: Record<string, string>): Promise<{ bytes: Buffer; tree: Record<string, string> }> {
  const dir = await mkdtemp(path.join(work, 'wheel-'));
  const { stdout } = await execa('python3', ['-I', '-S', MAKE_DIST], {
    input: JSON.stringify({ outDir: dir, packages: [{ name, version: '1.0', kind: 'wheel', files }] }),
  });
  const [built] = JSON.parse(stdout) as Array<{ filename: string }>;
  const file = path.join(dir, built!.filename);
  const { stdout: entries } = await execa('python3', [
    '-I',
    '-S',
    '-c',
    'import zipfile,json,sys; z=zipfile.ZipFile(sys.argv[1]); print(json.dumps({n: z.read(n).decode() for n in z.namelist()}))',
    file,
  ]);
  return { bytes: await readFile(file), tree: JSON.parse(entries) as Record<string, string> };
}

describe('wheelhouse on the fake engine', () => {
  const fake = useFakeCli('sandbox-install-wh-');
  const { stdout, stderr, report, leftovers } = fake;
  let lock: string;
  let output: string;

  beforeEach(async () => {
    lock = path.join(fake.work, 'requirements.lock');
    await writeFile(lock, '# nothing to install\n');
    output = path.join(fake.work, 'wheels');
  });

  const cli = (engine: FakeEngine, extra: string[] = ['-o', output]) => fake.cli(engine, ['wheelhouse', lock], extra);

  it('2: without -o, commander refuses the command before the engine is asked for', async () => {
    let asked = false;
    const code = await main(['node', 'sandbox-install', 'wheelhouse', lock, '-q'], () => {
      asked = true;
      return new FakeEngine(run());
    });
    expect(code).toBe(2);
    expect(stderr.join('')).toBe("error: required option '-o, --output <dir>' not specified\n");
    expect(asked).toBe(false);
  });

  it('2: a lockfile that is not pinned and hashed is bad input, before any run', async () => {
    await writeFile(lock, 'requests>=2\n');
    const engine = new FakeEngine(run());
    expect(await cli(engine)).toBe(2);
    expect(stderr.join('')).toBe(
      `sandbox-install: ${lock}:1: requests>=2 is not pinned: '>=' allows a range of versions; pin one exact version with == (pip-compile, uv export)\n`,
    );
    expect(engine.runs).toEqual([]);
    expect(await exists(output)).toBe(false);
  });

  it('0: a clean run of an empty lock publishes the wheelhouse: the re-hashed lock, the manifest and the report', async () => {
    const engine = new FakeEngine(run());
    expect(await cli(engine)).toBe(0);
    const written = await report();
    expect(written).toMatchObject({ verdict: 'pass', exported: output, findings: [] });
    expect(written.phases?.map((p) => [p.name, p.exitCode])).toEqual([
      ['install', 0],
      ['startup', 0],
    ]);
    expect((await readdir(output)).sort()).toEqual(['.sandbox-install-manifest.json', 'report.json', 'requirements.lock']);
    // Nothing to build: pip installs wheels only, then the first interpreter start is watched.
    const plan = JSON.parse(engine.runs[0]!.seeded.find((f) => f.path === '/input/phases.json')!.content) as Array<{ name: string; argv: string[] }>;
    expect(plan.map((p) => p.name)).toEqual(['install', 'startup']);
    expect(plan[0]!.argv).toEqual(expect.arrayContaining(['install', '--only-binary', ':all:']));
    expect(leftovers(engine)).toEqual([]);
  });

  it('0: a locked sdist is built once, in the build phase, installed from the wheel dir by hash, and that wheel is what is published', async () => {
    await writeSdistOnlyLock(fake.work, lock);
    // A real wheel, as the build phase would leave it, and the tree pip installs from it.
    const { bytes: builtBytes, tree } = await realWheel(fake.work, 'only-sdist', { 'only_sdist/__init__.py': 'VALUE = 1\n' });
    const engine = new FakeEngine(builtRun(tree, builtBytes));
    expect(await cli(engine)).toBe(0);
    const seeded = engine.runs[0]!.seeded;
    const plan = JSON.parse(seeded.find((f) => f.path === '/input/phases.json')!.content) as PhaseSpec[];
    expect(plan.map((p) => p.name)).toEqual(['build', 'install', 'startup']);
    expect(plan[0]!.argv).toEqual(expect.arrayContaining(['wheel', '--no-deps', '--wheel-dir', WHEEL_DIR, '-r', '/input/build/1.lock']));
    // Once built, its wheels are copied out of the sandbox user's reach and its temp dirs removed.
    expect(plan[0]!.after).toEqual({ keep: { from: WHEEL_DIR, to: BUILT_DIR }, scrub: 'pip-' });
    expect(plan[1]!.after).toBeUndefined();
    expect(plan[1]!.argv.slice(0, 9)).toEqual([
      'python3',
      '-I',
      '-S',
      '/opt/sandbox-install/install-built.py',
      BUILT_DIR,
      '/input/built-pins.json',
      '/input/requirements.lock',
      '--',
      '/opt/installer/bin/python',
    ]);
    expect(plan[1]!.argv).toEqual(expect.arrayContaining(['--only-binary', ':all:', '--find-links', BUILT_DIR, '--require-hashes']));
    expect(plan[1]!.argv.at(-1)).toBe('-r');
    // The build phase's lock holds the sdist-only entry; the install lock the rest; the pins say what to hash.
    expect(seeded.find((f) => f.path === '/input/build/1.lock')!.content).toMatch(/^only-sdist==1\.0 \\\n {4}--hash=sha256:[0-9a-f]{64}\n$/);
    expect(seeded.find((f) => f.path === '/input/requirements.lock')!.content).toMatch(/^has-wheel==2\.0 /);
    expect(JSON.parse(seeded.find((f) => f.path === '/input/built-pins.json')!.content)).toEqual([{ name: 'only-sdist', line: 'only-sdist==1.0' }]);
    const written = await report();
    expect(written.phases?.map((p) => p.name)).toEqual(['build', 'install', 'startup']);
    expect(await readFile(path.join(output, 'only_sdist-1.0-py3-none-any.whl'))).toEqual(builtBytes);
    expect(written.packages.find((p) => p.name === 'only-sdist')?.files.map((f) => f.filename)).toEqual(['only_sdist-1.0-py3-none-any.whl']);
    expect(leftovers(engine)).toEqual([]);
  });

  it('1: an installed file of an sdist-built distribution that differs from its built wheel fails provenance; nothing is published', async () => {
    await writeSdistOnlyLock(fake.work, lock);
    const { bytes, tree } = await realWheel(fake.work, 'only-sdist', { 'only_sdist/__init__.py': 'VALUE = 1\n' });
    const engine = new FakeEngine(builtRun({ ...tree, 'only_sdist/__init__.py': 'import os\n' }, bytes));
    expect(await cli(engine)).toBe(1);
    const written = await report();
    expect(written.findings).toContainEqual(
      expect.objectContaining({
        rule: 'integrity.installed-mismatch',
        package: 'only-sdist',
        phase: 'install',
        failing: true,
        evidence: expect.objectContaining({ wheel: 'only_sdist-1.0-py3-none-any.whl', path: 'only_sdist/__init__.py' }),
      }),
    );
    expect(await exists(output)).toBe(false);
  });

  it('1: a DNS query in the install phase fails the run, and nothing is written: no wheelhouse, no staging dir beside it', async () => {
    const engine = new FakeEngine(run({ monitorLines: [DNS] }));
    expect(await cli(engine)).toBe(1);
    const written = await report();
    expect(written.verdict).toBe('fail');
    expect(written.findings).toContainEqual(
      expect.objectContaining({
        rule: 'network.dns',
        phase: 'install',
        failing: true,
        evidence: expect.objectContaining({ name: 'collect.wheelhouse.invalid' }),
      }),
    );
    expect(written.findings.filter((f) => f.failing && f.phase !== 'install')).toEqual([]);
    expect(written.exported).toBeNull();
    expect(written.manifest ?? null).toBeNull();
    // Only what the test made and the report: neither wheels/ nor .wheels.staging-*.
    expect((await readdir(fake.work)).filter((name) => name !== 'cache').sort()).toEqual(['index', 'report.json', 'requirements.lock']);
    expect(leftovers(engine)).toEqual([]);
  });

  it('1: strict refuses a lock entry with only an sdist before any run, and writes no wheelhouse', async () => {
    await writeSdistOnlyLock(fake.work, lock);
    const engine = new FakeEngine(run());
    expect(await cli(engine, ['-o', output, '--policy', 'strict'])).toBe(1);
    const written = await report();
    expect(written.verdict).toBe('fail');
    expect(written.findings).toEqual([
      {
        rule: 'policy.sdist-forbidden',
        severity: 'high',
        package: 'only-sdist',
        message: `only-sdist==1.0 (${lock}:3) has only an sdist, and policy strict installs wheels only`,
        evidence: { line: 3, files: ['only_sdist-1.0.tar.gz'] },
        action: 'fail',
        failing: true,
      },
    ]);
    expect(engine.runs).toEqual([]);
    expect(written.image).toBeNull();
    expect(written.exported).toBeNull();
    expect(await exists(output)).toBe(false);
    // The default policy takes the same lock to the sandbox, where the sdist would be built.
    const again = new FakeEngine(run());
    await cli(again);
    expect(again.runs).toHaveLength(1);
  });

  it('--format sarif: stdout is a SARIF log whose result is the failing rule, at the line of its lock entry', async () => {
    await writeSdistOnlyLock(fake.work, lock);
    const engine = new FakeEngine(run());
    expect(await cli(engine, ['-o', output, '--policy', 'strict', '--format', 'sarif'])).toBe(1);
    const sarif = JSON.parse(stdout.join('')) as {
      version: string;
      runs: Array<{ results: Array<{ ruleId: string; level: string; locations: Array<{ physicalLocation: { region: { startLine: number } } }> }> }>;
    };
    expect(sarif.version).toBe('2.1.0');
    expect(sarif.runs).toHaveLength(1);
    expect(sarif.runs[0]!.results.map((r) => [r.ruleId, r.level, r.locations[0]!.physicalLocation.region.startLine])).toEqual([
      ['policy.sdist-forbidden', 'error', 3],
    ]);
  });
});
