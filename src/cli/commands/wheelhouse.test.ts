/**
 * wheelhouse, from argv to exit code, on the fake engine: bad input before any run, a policy
 * failure in the install phase that writes nothing (not even a staging dir), strict refusing an
 * sdist-only entry before any run, and SARIF on stdout. No Docker, no network: the proxy runs on a
 * unix socket in a temp dir against a file:// index. The fake serves nothing through the proxy, so
 * a wheelhouse holding wheels (locked wheels copied from the verified cache, sdists built into
 * wheels, the lock re-hashed to them) is left to test/integration/wheelhouse.integration.test.ts;
 * here a pass publishes the wheelhouse of an empty lock.
 */
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { main } from '../index.js';
import { SITE_PACKAGES, WHEEL_DIR } from '../../core/layout.js';
import { FakeEngine, type FakeRun } from '../../runtime/fake.js';
import { dnsQuery, exists, phaseFiles, quietStartup, useFakeCli, writeSdistOnlyLock } from './fake-cli.js';

/** Both phases ran and exited 0: install from 1 to 2, wheel from 3 to 4; the wheel dir is empty. */
function run(overrides: Partial<FakeRun> = {}): FakeRun {
  return {
    exitCode: 0,
    files: phaseFiles([
      { phase: 'install', rootPid: 10, started: 1, argv: ['python3', '-m', 'pip', 'install'] },
      quietStartup(2.5),
      { phase: 'wheel', rootPid: 20, started: 3, argv: ['python3', '-m', 'pip', 'wheel'] },
    ]),
    trees: { [SITE_PACKAGES]: {}, [WHEEL_DIR]: {} },
    output: '',
    ...overrides,
  };
}

const DNS = dnsQuery('collect.wheelhouse.invalid');

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
      ['wheel', 0],
    ]);
    expect((await readdir(output)).sort()).toEqual(['.sandbox-install-manifest.json', 'report.json', 'requirements.lock']);
    // Both phases were planned in the one sandbox: install, then pip wheel into the wheel dir.
    const plan = JSON.parse(engine.runs[0]!.seeded.find((f) => f.path === '/input/phases.json')!.content) as Array<{ name: string; argv: string[] }>;
    expect(plan.map((p) => p.name)).toEqual(['install', 'startup', 'wheel']);
    expect(plan[2]!.argv).toEqual(expect.arrayContaining(['wheel', '--no-deps', '--wheel-dir', WHEEL_DIR]));
    expect(leftovers(engine)).toEqual([]);
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
