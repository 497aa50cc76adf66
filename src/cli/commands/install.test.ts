/**
 * The whole main job, from argv to exit code, on the fake engine: every exit code the CLI contract
 * names, with the report and the export each one promises. No Docker, no network: the proxy runs
 * on a unix socket in a temp dir, against an empty file:// index.
 */
import { access, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../index.js';
import { SITE_PACKAGES, STATE_DIR } from '../../core/layout.js';
import { FakeEngine, type FakeRun } from '../../runtime/fake.js';
import { Report } from '../../report/schema.js';

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

const CLEAN_TRACE = [
  '10 1.000000 execve("/usr/bin/python3", ["python3", "-m", "pip", "install"], 0x7ffd /* 5 vars */) = 0',
  '10 2.000000 +++ exited with 0 +++',
  '',
].join('\n');

function run(overrides: Partial<FakeRun> = {}, pipExit = 0): FakeRun {
  return {
    exitCode: pipExit,
    files: {
      [`${STATE_DIR}/status.json`]: JSON.stringify({
        phases: [
          {
            phase: 'install',
            started: 1,
            ended: 2,
            rootPid: 10,
            pip: { how: 'exited', value: pipExit },
            tracerIntact: true,
            tracerExit: 0,
            lingering: [],
            detached: [],
            execAliases: {},
          },
        ],
      }),
      [`${STATE_DIR}/install.strace.log`]: CLEAN_TRACE.replace('exited with 0', `exited with ${pipExit}`),
    },
    trees: { [SITE_PACKAGES]: {} },
    output: pipExit === 0 ? 'Successfully installed nothing\n' : 'ERROR: No matching distribution found for nothing\n',
    ...overrides,
  };
}

describe('install on the fake engine: one test per exit code', () => {
  let work: string;
  let lock: string;
  let stdout: string[];

  beforeEach(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-wf-'));
    await mkdir(path.join(work, 'index'));
    lock = path.join(work, 'requirements.lock');
    await writeFile(lock, '# nothing to install\n');
    stdout = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (stdout.push(String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const cli = (engine: FakeEngine, extra: string[] = []) =>
    main(
      [
        'node',
        'sandbox-install',
        lock,
        '--index-url',
        `file://${path.join(work, 'index')}`,
        '--image',
        'sandbox-install:fake',
        '--cache-dir',
        path.join(work, 'cache'),
        '--output',
        path.join(work, 'out'),
        '--report',
        path.join(work, 'report.json'),
        '-q',
        ...extra,
      ],
      () => engine,
    );
  const report = async () => Report.parse(JSON.parse(await readFile(path.join(work, 'report.json'), 'utf8')));
  const leftovers = (engine: FakeEngine) => engine.runs.filter((r) => !r.removed).map((r) => r.id);

  it('0: a clean run passes and exports, with the report written', async () => {
    const engine = new FakeEngine(run());
    expect(await cli(engine)).toBe(0);
    const written = await report();
    expect(written).toMatchObject({ verdict: 'pass', exported: path.join(work, 'out'), findings: [] });
    expect(await exists(path.join(work, 'out', '.sandbox-install-manifest.json'))).toBe(true);
    expect(stdout.join('')).toContain('PASS');
    // The lock was copied into the sandbox, not mounted; both containers are gone.
    expect(engine.runs[0]?.seeded.map((f) => f.path)).toEqual([
      '/input/requirements.lock',
      '/input/phases.json',
      // The canaries: owned by the sandbox user, readable by no one else.
      '/home/user/.aws/credentials',
      '/home/user/.ssh/id_rsa',
      '/home/user/.netrc',
      '/home/user/.pypirc',
    ]);
    expect(leftovers(engine)).toEqual([]);
  });

  it('1: a DNS query from the install fails the policy and exports nothing', async () => {
    const dns = JSON.stringify({ type: 'dns', name: 'collect.exfil.invalid', qtype: 1, answer: '127.1.0.1', src: '127.0.0.1:4000', time: 1.5 });
    const engine = new FakeEngine(run({ monitorLines: [dns] }));
    expect(await cli(engine)).toBe(1);
    const written = await report();
    expect(written.verdict).toBe('fail');
    expect(written.findings).toContainEqual(
      expect.objectContaining({ rule: 'network.dns', phase: 'install', failing: true, evidence: expect.objectContaining({ name: 'collect.exfil.invalid' }) }),
    );
    expect(written.phases).toEqual([{ name: 'install', exitCode: 0, timedOut: false, traceBytes: CLEAN_TRACE.length }]);
    expect(written.exported).toBeNull();
    expect(await exists(path.join(work, 'out'))).toBe(false);
    expect(leftovers(engine)).toEqual([]);
  });

  it('1: strict refuses a lock entry with only an sdist before any container starts, naming the package and its line', async () => {
    const sdist = 'a'.repeat(64);
    const wheel = 'b'.repeat(64);
    await mkdir(path.join(work, 'index', 'only-sdist'));
    await writeFile(path.join(work, 'index', 'only-sdist', 'index.html'), `<a href="only_sdist-1.0.tar.gz#sha256=${sdist}">only_sdist-1.0.tar.gz</a>\n`);
    await mkdir(path.join(work, 'index', 'has-wheel'));
    await writeFile(
      path.join(work, 'index', 'has-wheel', 'index.html'),
      `<a href="has_wheel-2.0-py3-none-any.whl#sha256=${wheel}">has_wheel-2.0-py3-none-any.whl</a>\n<a href="has_wheel-2.0.tar.gz#sha256=${'c'.repeat(64)}">has_wheel-2.0.tar.gz</a>\n`,
    );
    await writeFile(lock, `has-wheel==2.0 --hash=sha256:${wheel}\n# a comment\nonly-sdist==1.0 \\\n    --hash=sha256:${sdist}\n`);
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
    expect(await exists(path.join(work, 'out'))).toBe(false);
    // The default policy lets the same lock through to the sandbox.
    const again = new FakeEngine(run());
    await cli(again);
    expect(again.runs).toHaveLength(1);
  });

  it('0: a user policy that only warns on network.dns passes a DNS-only install, with the warning in the report', async () => {
    const policy = path.join(work, 'dns-warn.json');
    await writeFile(policy, JSON.stringify({ extends: 'default', rules: { 'network.dns': 'warn' } }));
    const dns = JSON.stringify({ type: 'dns', name: 'collect.exfil.invalid', qtype: 1, answer: '127.1.0.1', src: '127.0.0.1:4000', time: 1.5 });
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
    expect(written.exported).toBe(path.join(work, 'out'));
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
    expect(await exists(path.join(work, 'out'))).toBe(false);
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
      expect(await exists(path.join(work, 'out'))).toBe(false);
    });
  }
});
