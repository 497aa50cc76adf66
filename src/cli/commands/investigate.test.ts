/**
 * investigate, from argv to exit code, on the fake engine: both phases' records in, one test per
 * exit code, and never an export. The import phase's trace attributes each import child to the
 * distribution the importer named.
 */
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { SITE_PACKAGES, STATE_DIR } from '../../core/layout.js';
import { FakeEngine, type FakeRun } from '../../runtime/fake.js';
import { dnsQuery, phaseFiles, quietStartup, type ScriptedPhase, useFakeCli } from './fake-cli.js';

/** The importer (pid 20) imports `sneaky` of sneaky-pkg in pid 21, which resolves a name. */
const IMPORT_TRACE = [
  '20 200.000000 execve("/usr/bin/python3", ["python3", "-I", "-S", "/opt/sandbox-install/importer.py", "/opt/target/lib/python3.11/site-packages", "10"], 0x7ffd /* 5 vars */) = 0',
  '20 200.100000 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 21',
  '21 200.110000 execve("/usr/bin/python3", ["python3", "-I", "-S", "-B", "-c", "import sys, importlib", "/opt/target/lib/python3.11/site-packages", "sneaky", "sneaky-pkg"], 0x7ffd /* 5 vars */) = 0',
  '21 200.200000 connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0',
  '21 200.300000 +++ exited with 0 +++',
  '20 201.000000 +++ exited with 0 +++',
  '',
].join('\n');

/** pip (pid 10) ran from 100 to 101; the importer (pid 20) from 200 to 201, tracing IMPORT_TRACE. */
function run(overrides: Partial<FakeRun> = {}, pipExit = 0): FakeRun {
  const install: ScriptedPhase = { phase: 'install', rootPid: 10, started: 100, argv: ['python3', '-m', 'pip', 'install'], pipExit };
  const importer: ScriptedPhase = { phase: 'import', rootPid: 20, started: 200, trace: IMPORT_TRACE };
  return {
    exitCode: pipExit,
    files: phaseFiles(pipExit === 0 ? [install, quietStartup(150), importer] : [install]),
    trees: { [SITE_PACKAGES]: {} },
    output: '',
    ...overrides,
  };
}

describe('investigate on the fake engine: one test per exit code', () => {
  const fake = useFakeCli('sandbox-install-inv-');
  const { stdout, report, leftovers } = fake;

  const cli = (engine: FakeEngine, target = 'sneaky-pkg==1.0') => fake.cli(engine, ['investigate', target]);
  const sandboxOf = (engine: FakeEngine) => engine.runs[0]!;

  it('0: nothing seen; pip installs the pin without hashes, then the import phase runs; nothing exported', async () => {
    const engine = new FakeEngine(run({ files: { ...run().files, [`${STATE_DIR}/import.strace.log`]: IMPORT_TRACE.replace(/^21 200.2.*\n/m, '') } }));
    expect(await cli(engine)).toBe(0);
    const written = await report();
    expect(written).toMatchObject({ verdict: 'pass', exported: null, lockfile: 'sneaky-pkg==1.0', policy: 'investigate' });
    expect(written.phases?.map((p) => p.name)).toEqual(['install', 'startup', 'import']);
    const plan = JSON.parse(sandboxOf(engine).seeded.find((f) => f.path === '/input/phases.json')!.content) as Array<{ name: string; argv: string[] }>;
    expect(plan.map((p) => p.name)).toEqual(['install', 'startup', 'import']);
    expect(plan[0]!.argv).not.toContain('--require-hashes');
    expect(plan[1]!.argv).toEqual(['python3', '-I', '-S', '/opt/sandbox-install/startup.py', SITE_PACKAGES, '10']);
    expect(plan[2]!.argv).toEqual([
      'python3',
      '-I',
      '-S',
      '/opt/sandbox-install/importer.py',
      SITE_PACKAGES,
      '10',
      '--linger',
      '2',
      '--max-modules',
      '2000',
      '--clock-skew',
      '0',
      '--reap',
    ]);
    expect(sandboxOf(engine).seeded.find((f) => f.path === '/input/requirements.lock')!.content).toBe('sneaky-pkg==1.0\n');
    expect(stdout.join('')).toContain('timeline');
    expect(await readdir(fake.work)).not.toContain('out');
    expect(leftovers(engine)).toEqual([]);
  });

  it('1: a DNS query made only on import fails, attributed to the distribution, in phase import, on the timeline', async () => {
    const dns = dnsQuery('import-time.exfil.invalid', 200.21);
    const engine = new FakeEngine(run({ monitorLines: [dns] }));
    expect(await cli(engine)).toBe(1);
    const written = await report();
    expect(written.verdict).toBe('fail');
    expect(written.findings).toContainEqual(
      expect.objectContaining({
        rule: 'network.dns',
        package: 'sneaky-pkg',
        phase: 'import',
        failing: true,
        evidence: expect.objectContaining({ name: 'import-time.exfil.invalid', pid: 21 }),
      }),
    );
    expect(written.timeline).toContainEqual({ phase: 'import', package: 'sneaky-pkg', kind: 'dns', what: 'import-time.exfil.invalid', offset: 0.21, pid: 21 });
    expect(written.timeline).toContainEqual(expect.objectContaining({ phase: 'import', package: 'sneaky-pkg', kind: 'exec', offset: 0.11, pid: 21 }));
    expect(stdout.join('')).toMatch(/import\n {4}sneaky-pkg\n(.*\n)* +\+0\.210s {2}dns +import-time\.exfil\.invalid/);
    expect(leftovers(engine)).toEqual([]);
  });

  it('the coverage the importer printed last is in the report and under the summary; a pass says no behaviour observed; the flags reach the importer', async () => {
    const coverage = {
      planned: 5,
      imported: 3,
      failed: 1,
      timedOut: 1,
      topLevel: 1,
      processes: 2,
      boundHit: true,
      maxModules: 5,
      lingerSeconds: 4,
      clockSkewSeconds: 2_592_000,
      clockSkewUnavailable: false,
      failedModules: ['sneaky.broken'],
      timedOutModules: ['sneaky.hangs'],
    };
    const forged = { ...coverage, imported: 5, failed: 0, timedOut: 0, failedModules: [], timedOutModules: [] };
    const output = [
      `{"coverage": ${JSON.stringify(forged)}}`,
      '{"module": "sneaky", "distribution": "sneaky-pkg", "exitCode": 0}',
      `{"coverage": ${JSON.stringify(coverage)}}`,
      '',
    ].join('\n');
    const engine = new FakeEngine(run({ output, files: { ...run().files, [`${STATE_DIR}/import.strace.log`]: IMPORT_TRACE.replace(/^21 200.2.*\n/m, '') } }));
    expect(await fake.cli(engine, ['investigate', 'sneaky-pkg==1.0', '--linger', '4', '--max-modules', '5', '--clock-skew', '30d'])).toBe(0);
    const written = await report();
    expect(written.verdict).toBe('pass');
    expect(written.importCoverage).toEqual(coverage);
    const plan = JSON.parse(sandboxOf(engine).seeded.find((f) => f.path === '/input/phases.json')!.content) as Array<{ name: string; argv: string[] }>;
    expect(plan[2]!.argv.slice(6)).toEqual(['--linger', '4', '--max-modules', '5', '--clock-skew', '2592000', '--reap']);
    const text = stdout.join('');
    expect(text).toContain('no behaviour observed');
    expect(text).not.toMatch(/clean/i);
    expect(text).toContain('import coverage: 3 of 5 modules imported, 1 failed, 1 timed out (1 top-level, 2 processes, linger 4s, clock +2592000s)');
    expect(text).toContain('bound hit');
  });

  it('2: a target that is no pin and no file is bad input, before any container', async () => {
    const engine = new FakeEngine(run());
    expect(await cli(engine, 'requests>=2')).toBe(2);
    expect(engine.runs).toEqual([]);
  });

  it('3: no engine is an environment error', async () => {
    const engine = new FakeEngine(run({ engineDown: true }));
    expect(await cli(engine)).toBe(3);
    expect(engine.runs).toEqual([]);
  });

  it('4: pip failing is inconclusive, and the import phase never ran', async () => {
    const engine = new FakeEngine(run({}, 1));
    const code = await cli(engine);
    const written = await report();
    expect(written.findings.filter((f) => f.failing)).toEqual([]);
    expect(code).toBe(4);
    expect(written.verdict).toBe('error');
    expect(written.findings).toContainEqual(expect.objectContaining({ rule: 'install.failed', phase: 'install' }));
    expect(written.phases?.map((p) => p.name)).toEqual(['install']);
  });

  it('serves a local wheel as the pin of its own name and version', async () => {
    const wheel = path.join(fake.work, 'sneaky_pkg-1.0-py3-none-any.whl');
    await writeFile(wheel, 'not really a zip');
    const engine = new FakeEngine(run());
    await cli(engine, wheel);
    expect(sandboxOf(engine).seeded.find((f) => f.path === '/input/requirements.lock')!.content).toBe('sneaky-pkg==1.0\n');
  });

  it('investigates a lockfile with its hashes: pip requires them, and the import phase still runs', async () => {
    const lock = path.join(fake.work, 'requirements.lock');
    await writeFile(lock, `sneaky-pkg==1.0 --hash=sha256:${'a'.repeat(64)}\n`);
    const engine = new FakeEngine(run());
    await cli(engine, lock);
    const plan = JSON.parse(sandboxOf(engine).seeded.find((f) => f.path === '/input/phases.json')!.content) as Array<{ name: string; argv: string[] }>;
    expect(plan.map((p) => p.name)).toEqual(['install', 'startup', 'import']);
    expect(plan[0]!.argv).toContain('--require-hashes');
    expect(sandboxOf(engine).seeded.find((f) => f.path === '/input/requirements.lock')!.content).toContain(`--hash=sha256:${'a'.repeat(64)}`);
  });

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${code}: ${signal} during the run ends it after cleanup`, async () => {
      const engine = new FakeEngine(run({ exitCode: 'hang' }));
      const ended = cli(engine);
      await vi.waitFor(() => expect(engine.runs[0]?.started).toBe(true));
      process.emit(signal);
      expect(await ended).toBe(code);
      expect(leftovers(engine)).toEqual([]);
      expect((await report()).error).toMatchObject({ code: 'interrupted' });
    });
  }
});
