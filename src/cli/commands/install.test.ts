/**
 * The whole main job, from argv to exit code, on the fake engine: every exit code the CLI contract
 * names, with the report and the export each one promises. No Docker, no network: the proxy runs
 * on a unix socket in a temp dir, against an empty file:// index.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { INPUT_PHASES, INSTALLER_PYTHON, PIP_AS, SITE_PACKAGES, STATE_DIR } from '../../core/layout.js';
import { FakeEngine, type FakeRun } from '../../runtime/fake.js';
import { Report } from '../../report/schema.js';
import { dnsQuery, exists, phaseFiles, quietStartup, pipTrace, useFakeCli, writeSdistOnlyLock } from './fake-cli.js';

const PIP_INSTALL = ['python3', '-m', 'pip', 'install'];
const CLEAN_TRACE = pipTrace(10, 1, PIP_INSTALL);
const STARTUP_TRACE = pipTrace(30, 2.5, ['python3', '-I', '-S', '/opt/sandbox-install/startup.py']);

function run(overrides: Partial<FakeRun> = {}, pipExit = 0): FakeRun {
  return {
    exitCode: pipExit,
    files: phaseFiles([{ phase: 'install', rootPid: 10, started: 1, argv: PIP_INSTALL, pipExit }, ...(pipExit === 0 ? [quietStartup(2.5)] : [])]),
    trees: { [SITE_PACKAGES]: {} },
    output: pipExit === 0 ? 'Successfully installed nothing\n' : 'ERROR: No matching distribution found for nothing\n',
    ...overrides,
  };
}

describe('install on the fake engine: one test per exit code', () => {
  const fake = useFakeCli('sandbox-install-wf-');
  const { stdout, report, leftovers } = fake;
  let lock: string;

  beforeEach(async () => {
    lock = path.join(fake.work, 'requirements.lock');
    await writeFile(lock, '# nothing to install\n');
  });

  const cli = (engine: FakeEngine, extra: string[] = []) => fake.cli(engine, [lock, '--output', path.join(fake.work, 'out')], extra);

  it('0: a clean run passes and exports, with the report written', async () => {
    const engine = new FakeEngine(run());
    expect(await cli(engine)).toBe(0);
    const written = await report();
    expect(written).toMatchObject({ verdict: 'pass', exported: path.join(fake.work, 'out'), findings: [] });
    expect(await exists(path.join(fake.work, 'out', '.sandbox-install-manifest.json'))).toBe(true);
    expect(stdout.join('')).toContain('PASS');
    // The lock was copied into the sandbox, not mounted; both containers are gone.
    expect(engine.runs[0]?.seeded.map((f) => f.path)).toEqual([
      '/input/requirements.lock',
      '/input/phases.json',
      // The canaries: owned by the sandbox user, readable by no one else.
      '/home/user/.aws/config',
      '/home/user/.aws/credentials',
      '/home/user/.ssh/id_ed25519',
      '/home/user/.ssh/id_ed25519.pub',
      '/home/user/.git-credentials',
      '/home/user/.npmrc',
      '/home/user/.netrc',
      '/home/user/.pypirc',
    ]);
    // A machine's host name (not the engine's 12 hex digits), the resolver without telltale options.
    expect(engine.runs[0]?.spec.hostname).toMatch(/^[A-Za-z0-9-]+$/);
    expect(engine.runs[0]?.spec.hostname).not.toMatch(/^[0-9a-f]{12}$/);
    expect(engine.runs[0]?.spec.dns).toEqual({ servers: ['127.0.0.53'], options: [] });
    // Written weeks or months ago, not when the run began.
    const canaryTimes = (engine.runs[0]?.seeded ?? []).filter((f) => f.path.startsWith('/home/user/')).map((f) => f.mtime ?? Date.now());
    for (const mtime of canaryTimes) expect(Date.now() - mtime).toBeGreaterThan(14 * 86_400_000);
    expect(leftovers(engine)).toEqual([]);
  });

  it('--python-version 3.11.7: pip runs through the launcher for 3.11.7, and the report says so', async () => {
    const engine = new FakeEngine(run());
    expect(await cli(engine, ['--python-version', '3.11.7'])).toBe(0);
    const phases = JSON.parse(engine.runs[0]!.seeded.find((f) => f.path === INPUT_PHASES)!.content) as Array<{ name: string; argv: string[] }>;
    expect(phases.find((p) => p.name === 'install')!.argv.slice(0, 3)).toEqual([INSTALLER_PYTHON, PIP_AS, '3.11.7']);
    // The fake's image carries no version label.
    expect((await report()).python).toEqual({ image: null, target: '3.11.7' });
  });

  it('2: --python-version 3.12.1 is refused before any container, naming both versions', async () => {
    const engine = new FakeEngine(run());
    expect(await cli(engine, ['--python-version', '3.12.1'])).toBe(2);
    expect(engine.runs).toEqual([]);
    expect(fake.stderr.join('')).toContain('the target Python 3.12.1 (--python-version) is not a 3.11 release: the sandbox image runs Python 3.11,');
    expect(await exists(path.join(fake.work, 'out'))).toBe(false);
  });

  it('2: --python-version that is not X.Y.Z is bad input', async () => {
    const engine = new FakeEngine(run());
    expect(await cli(engine, ['--python-version', '3.11'])).toBe(2);
    expect(fake.stderr.join('')).toContain('--pythonVersion: a full CPython release, X.Y.Z (3.11.7)');
    expect(engine.runs).toEqual([]);
  });

  it('1: a DNS query from the install fails the policy and exports nothing', async () => {
    const dns = dnsQuery('collect.exfil.invalid');
    const engine = new FakeEngine(run({ monitorLines: [dns] }));
    expect(await cli(engine)).toBe(1);
    const written = await report();
    expect(written.verdict).toBe('fail');
    expect(written.findings).toContainEqual(
      expect.objectContaining({ rule: 'network.dns', phase: 'install', failing: true, evidence: expect.objectContaining({ name: 'collect.exfil.invalid' }) }),
    );
    expect(written.phases).toEqual([
      // Each phase ran a second by the supervisor's clock (phaseFiles: ended = started + 1).
      { name: 'install', exitCode: 0, timedOut: false, traceBytes: CLEAN_TRACE.length, ms: 1000 },
      { name: 'startup', exitCode: 0, timedOut: false, traceBytes: STARTUP_TRACE.length, ms: 1000 },
    ]);
    expect(written.exported).toBeNull();
    expect(await exists(path.join(fake.work, 'out'))).toBe(false);
    expect(leftovers(engine)).toEqual([]);
  });

  it('1: strict refuses a lock entry with only an sdist before any container starts, naming the package and its line', async () => {
    await writeSdistOnlyLock(fake.work, lock);
    const engine = new FakeEngine(run());
    expect(await cli(engine, ['--policy', 'strict'])).toBe(1);
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
    expect(written.packages.map((p) => [p.name, p.line])).toEqual([
      ['has-wheel', 1],
      ['only-sdist', 3],
    ]);
    // Nothing was created: no run, so no container.
    expect(engine.runs).toEqual([]);
    expect(written.image).toBeNull();
    expect(await exists(path.join(fake.work, 'out'))).toBe(false);
    // The default policy lets the same lock through to the sandbox.
    const again = new FakeEngine(run());
    await cli(again);
    expect(again.runs).toHaveLength(1);
  });

  it('0: a user policy that only warns on network.dns passes a DNS-only install, with the warning in the report', async () => {
    const policy = path.join(fake.work, 'dns-warn.json');
    await writeFile(policy, JSON.stringify({ extends: 'default', rules: { 'network.dns': 'warn' } }));
    const dns = dnsQuery('collect.exfil.invalid');
    const engine = new FakeEngine(run({ monitorLines: [dns] }));
    expect(await cli(engine, ['--policy', policy])).toBe(0);
    const written = await report();
    expect(written.verdict).toBe('pass');
    expect(written.policy).toBe('dns-warn');
    expect(written.findings).toEqual([
      expect.objectContaining({
        rule: 'network.dns',
        phase: 'install',
        action: 'warn',
        failing: false,
        evidence: expect.objectContaining({ name: 'collect.exfil.invalid' }),
      }),
    ]);
    expect(written.exported).toBe(path.join(fake.work, 'out'));
  });

  it("1: a sandbox that wrote past the policy's disk cap fails with resource.disk and exports nothing", async () => {
    const policy = path.join(fake.work, 'small-disk.json');
    await writeFile(policy, JSON.stringify({ extends: 'default', limits: { diskMb: 64 } }));
    // Stopped during the install: the supervisor had recorded no phase's end.
    const engine = new FakeEngine(run({ writableBytes: 65 * 1024 ** 2, files: { ...phaseFiles([]), [`${STATE_DIR}/install.strace.log`]: CLEAN_TRACE } }));
    expect(await cli(engine, ['--policy', policy])).toBe(1);
    const written = await report();
    expect(written.findings).toEqual([
      expect.objectContaining({
        rule: 'resource.disk',
        phase: 'install',
        failing: true,
        message: 'the sandbox wrote 65 MiB to its filesystem, past the 64 MiB disk cap, and was stopped',
        evidence: { writtenBytes: 65 * 1024 ** 2, limitBytes: 64 * 1024 ** 2 },
      }),
    ]);
    expect(written.exported).toBeNull();
    expect(await exists(path.join(fake.work, 'out'))).toBe(false);
    // Under the cap, the same run passes.
    expect(await cli(new FakeEngine(run({ writableBytes: 63 * 1024 ** 2 })), ['--policy', policy])).toBe(0);
  });

  it('1: a sandbox whose writes the engine cannot measure (SizeRw -1: a path too long for its walk) is stopped and fails as monitor.tampered, not passed uncapped', async () => {
    // Stopped during the install: the supervisor had recorded no phase's end.
    const engine = new FakeEngine(run({ writableBytes: -1, files: { ...phaseFiles([]), [`${STATE_DIR}/install.strace.log`]: CLEAN_TRACE } }));
    expect(await cli(engine)).toBe(1);
    const written = await report();
    expect(written.findings).toEqual([
      expect.objectContaining({
        rule: 'monitor.tampered',
        phase: 'install',
        failing: true,
        message: "the sandbox's writes could not be measured, so the disk cap could not hold; it was stopped",
        evidence: { diskUnmeasured: 'the engine gave no size (-1)', limitBytes: 10 * 1024 ** 3 },
      }),
    ]);
    expect(written.exported).toBeNull();
  });

  it('1: the report is written where --report says even when its directory does not exist yet (a failed run made no out/)', async () => {
    const nested = path.join(fake.work, 'not-yet', 'made', 'run.report.json');
    const engine = new FakeEngine(run({ writableBytes: -1, files: { ...phaseFiles([]), [`${STATE_DIR}/install.strace.log`]: CLEAN_TRACE } }));
    expect(await cli(engine, ['--report', nested])).toBe(1);
    const written = Report.parse(JSON.parse(await readFile(nested, 'utf8')));
    expect(written.verdict).toBe('fail');
    expect(written.findings.map((f) => f.rule)).toEqual(['monitor.tampered']);
  });

  it('1: the supervisor stopped the install at its own deadline (the engine had not): resource.timeout in phase install, not install.failed; the supervisor was told it', async () => {
    // pip (pid 10) killed by the supervisor at its deadline; the supervisor ended the run with 124.
    const files = phaseFiles([{ phase: 'install', rootPid: 10, started: 1, argv: PIP_INSTALL }]);
    const status = JSON.parse(files[`${STATE_DIR}/status.json`]!) as { phases: Array<Record<string, unknown>> };
    status.phases[0] = { ...status.phases[0], pip: { how: 'killed', value: 'SIGKILL' }, timedOut: true };
    const trace = pipTrace(10, 1, PIP_INSTALL).replace('+++ exited with 0 +++', '+++ killed by SIGKILL +++');
    const engine = new FakeEngine(
      run({ exitCode: 124, files: { [`${STATE_DIR}/status.json`]: JSON.stringify(status), [`${STATE_DIR}/install.strace.log`]: trace } }),
    );
    expect(await cli(engine, ['--timeout', '30'])).toBe(1);
    const written = await report();
    expect(written.findings.filter((f) => f.failing).map((f) => [f.rule, f.phase, f.evidence])).toEqual([
      ['resource.timeout', 'install', { timeoutSeconds: 30 }],
    ]);
    expect(written.phases).toEqual([expect.objectContaining({ name: 'install', exitCode: null, timedOut: true })]);
    expect(written.exported).toBeNull();
    // The supervisor holds the run to --timeout itself, on its own clock.
    const cmd = engine.runs[0]!.spec.sandbox.cmd;
    expect(cmd.slice(cmd.indexOf('--deadline'), cmd.indexOf('--deadline') + 2)).toEqual(['--deadline', '30']);
  });

  it('2: a lockfile that is not pinned and hashed is bad input, before any container', async () => {
    await writeFile(lock, 'requests>=2\n');
    const engine = new FakeEngine(run());
    expect(await cli(engine)).toBe(2);
    expect(engine.runs).toEqual([]);
  });

  it('3: no engine is an environment error', async () => {
    const engine = new FakeEngine(run({ engineDown: true }));
    expect(await cli(engine)).toBe(3);
    expect(engine.runs).toEqual([]);
  });

  it('4: pip failing on its own is inconclusive, with install.failed and no export', async () => {
    const engine = new FakeEngine(run({}, 1));
    expect(await cli(engine)).toBe(4);
    const written = await report();
    expect(written.verdict).toBe('error');
    expect(written.findings).toContainEqual(expect.objectContaining({ rule: 'install.failed', evidence: { exitCode: 1 } }));
    expect(await exists(path.join(fake.work, 'out'))).toBe(false);
  });

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${code}: ${signal} while pip runs ends the run after cleanup, with the report saying so`, async () => {
      const engine = new FakeEngine(run({ exitCode: 'hang' }));
      const ended = cli(engine);
      // Once the sandbox is waited on, the signal arrives.
      await vi.waitFor(() => expect(engine.runs[0]?.started).toBe(true));
      process.emit(signal);
      expect(await ended).toBe(code);
      expect(leftovers(engine)).toEqual([]);
      const written = await report();
      expect(written.error).toMatchObject({ code: 'interrupted' });
      expect(written.exported).toBeNull();
      expect(await exists(path.join(fake.work, 'out'))).toBe(false);
    });
  }
});
