/**
 * The lock workflow: which files each resolved version gets (pure), the atomic write, and whole
 * runs on the fake engine, whose sandbox plays pip's part against the real proxy on its unix
 * socket (a page, then the file pip would take), then leaves pip's report behind.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { STATE_DIR } from '../core/layout.js';
import { EnvironmentError, InputError } from '../errors.js';
import { parseLock } from '../lock/parse.js';
import { ReportProblem, type Resolution } from '../lock/pip-report.js';
import { parsePylock } from '../lock/pylock.js';
import type { ServedFile } from '../proxy/index.js';
import type { UpstreamLink } from '../proxy/pages.js';
import { FakeEngine, FakeSandboxRun, type FakeRun } from '../runtime/fake.js';
import type { MonitorListener, RunSpec, SandboxRun } from '../runtime/port.js';
import { RESOLVE_REPORT } from '../core/layout.js';
import { lock, lockEntries, readResolution, writeAtomically, type LockRequest } from './lock.js';

const hex = (c: string) => c.repeat(64);
const sha = (data: string) => createHash('sha256').update(data).digest('hex');

function link(filename: string, sha256: string | null): UpstreamLink {
  return { filename, url: `https://files.example.invalid/${filename}`, sha256, requiresPython: null, yanked: null };
}

function served(project: string, filename: string, sha256: string): ServedFile {
  return { project, filename, sha256, size: 1, locked: false, cachePath: `/cache/${sha256}` };
}

const resolution = (dists: Resolution['dists']): Resolution => ({ pipVersion: '23.0.1', pythonVersion: '3.11.2', machine: 'x86_64', dists });

describe('lockEntries', () => {
  const dists: Resolution['dists'] = [
    {
      name: 'parent-app',
      version: '1.0',
      requested: true,
      requires: ['child-lib', 'not-resolved'],
      used: { filename: 'parent_app-1.0-py3-none-any.whl', sha256: hex('a') },
    },
    { name: 'child-lib', version: '2.0', requested: false, requires: [], used: { filename: 'child_lib-2.0.tar.gz', sha256: hex('b') } },
  ];
  const pages = new Map([
    ['parent-app', [link('parent_app-1.0-py3-none-any.whl', hex('a')), link('parent_app-0.9-py3-none-any.whl', hex('9'))]],
    [
      'child-lib',
      [
        link('child_lib-2.0.tar.gz', hex('b')),
        link('child_lib-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl', hex('c')),
        link('child_lib-2.0-cp311-cp311-win_amd64.whl', hex('d')),
        link('child_lib-2.0-cp312-cp312-manylinux_2_17_x86_64.whl', hex('e')),
        link('child_lib-2.0.0-py3-none-any.whl', hex('f')),
        link('child_lib-2.0-py2-none-any.whl', null),
        link('child_lib-2.0-py3.8.egg', hex('1')),
        link('../child_lib-2.0-py3-none-any.whl', hex('2')),
      ],
    ],
  ]);

  it("lists every file of the version the sandbox platform may install, with pip's own, and who requires what", () => {
    const got = lockEntries(
      resolution(dists),
      [served('parent-app', 'parent_app-1.0-py3-none-any.whl', hex('a')), served('child-lib', 'child_lib-2.0.tar.gz', hex('b'))],
      pages,
    );
    expect(got.problems).toEqual([]);
    expect(got.entries.map((e) => [e.name, e.version, e.requested, e.requiredBy, e.files.map((f) => [f.filename, f.kind])])).toEqual([
      ['parent-app', '1.0', true, [], [['parent_app-1.0-py3-none-any.whl', 'wheel']]],
      [
        'child-lib',
        '2.0',
        false,
        ['parent-app'],
        [
          ['child_lib-2.0.tar.gz', 'sdist'],
          ['child_lib-2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl', 'wheel'],
          // 2.0.0 is 2.0.
          ['child_lib-2.0.0-py3-none-any.whl', 'wheel'],
        ],
      ],
    ]);
    expect(got.entries[0]?.files[0]?.url).toBe('https://files.example.invalid/parent_app-1.0-py3-none-any.whl');
  });

  it('always lists the file pip used, even one the tag filter would not pick (a newer glibc in the image)', () => {
    const used = 'child_lib-2.0-cp311-cp311-manylinux_2_39_x86_64.whl';
    const got = lockEntries(
      resolution([{ ...dists[1]!, used: { filename: used, sha256: hex('7') } }]),
      [served('child-lib', used, hex('7'))],
      new Map([['child-lib', [link(used, hex('7')), link('child_lib-2.0-cp311-cp311-manylinux_2_38_x86_64.whl', hex('8'))]]]),
    );
    expect(got.entries[0]?.files.map((f) => f.filename)).toEqual([used]);
  });

  it('refuses a file the proxy never served, and one the page no longer lists', () => {
    const got = lockEntries(resolution(dists), [served('child-lib', 'child_lib-2.0.tar.gz', hex('b'))], new Map([['child-lib', []]]));
    expect(got.entries).toEqual([]);
    expect(got.problems.map((p) => [p.project, p.message])).toEqual([
      ['parent-app', "pip's resolution report names parent_app-1.0-py3-none-any.whl for parent-app 1.0, which the proxy never served for parent-app"],
      ['child-lib', 'child_lib-2.0.tar.gz (child-lib 2.0), which pip resolved with, is no longer on the upstream page with that sha256'],
    ]);
  });
});

describe('readResolution', () => {
  it('is a problem when the report could not be read', () => {
    expect(readResolution(null)).toEqual(new ReportProblem("pip's resolution report is missing or not a plain file of at most 64 MiB"));
    expect(readResolution('[')).toEqual(new ReportProblem("pip's resolution report is not JSON"));
  });
});

describe('writeAtomically', () => {
  it('replaces the file whole and leaves no temp file; a failure leaves nothing', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'lock-write-'));
    const file = path.join(dir, 'requirements.lock');
    await writeFile(file, 'old\n');
    await writeAtomically(file, 'new\n');
    expect(await readFile(file, 'utf8')).toBe('new\n');
    expect(await readdir(dir)).toEqual(['requirements.lock']);
    await expect(writeAtomically(path.join(dir, 'missing', 'x.lock'), 'x')).rejects.toBeInstanceOf(EnvironmentError);
    expect(await readdir(dir)).toEqual(['requirements.lock']);
  });
});

// ------------------------------------------------------------------------------------------------
// Whole runs on the fake engine.

/** GET a path from the proxy's unix socket, as pip does through the relay. */
function get(socketPath: string, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: target }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** A sandbox that asks the proxy for what pip would, before it "exits". */
class PipLikeRun extends FakeSandboxRun {
  constructor(
    spec: RunSpec,
    run: FakeRun,
    private readonly fetches: string[],
  ) {
    super(spec, run);
  }

  override async startSandbox(): Promise<void> {
    await super.startSandbox();
    const socket = this.spec.monitor.cmd[this.spec.monitor.cmd.indexOf('--proxy-socket') + 1]!;
    const host = path.join(this.spec.proxySocketDir.host, path.basename(socket));
    for (const target of this.fetches) expect(await get(host, target)).toBe(200);
  }
}

/** `fetches`: what every run's "pip" asks for, or what the run with this index (0, 1, …) asks for. */
class PipLikeEngine extends FakeEngine {
  constructor(
    private readonly script: FakeRun,
    private readonly fetches: string[] | ((run: number) => string[]),
  ) {
    super(script);
  }

  override async startRun(spec: RunSpec, listener: MonitorListener): Promise<SandboxRun> {
    const fetches = typeof this.fetches === 'function' ? this.fetches(this.runs.length) : this.fetches;
    const run = new PipLikeRun(spec, this.script, fetches);
    this.runs.push(run);
    run.play(listener);
    return run;
  }
}

const TRACE = [
  '10 1.000000 execve("/usr/bin/python3", ["python3", "-m", "pip", "install", "--dry-run"], 0x7ffd /* 5 vars */) = 0',
  '10 2.000000 +++ exited with 0 +++',
  '',
].join('\n');

function script(report: string | null, pipExit = 0, monitorLines: string[] = []): FakeRun {
  return {
    exitCode: pipExit,
    monitorLines,
    files: {
      [`${STATE_DIR}/status.json`]: JSON.stringify({
        phases: [
          {
            phase: 'resolve',
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
      [`${STATE_DIR}/resolve.strace.log`]: TRACE.replace('exited with 0', `exited with ${pipExit}`),
      ...(report === null ? {} : { [RESOLVE_REPORT]: report }),
    },
    trees: { '/opt/target/lib/python3.11/site-packages': {} },
    output: pipExit === 0 ? 'Would install child-lib-2.0 parent-app-1.0\n' : 'ERROR: ResolutionImpossible\n',
  };
}

function pipReport(files: Record<string, { name: string; version: string; sha256: string; requires?: string[]; requested?: boolean }>): string {
  return JSON.stringify({
    version: '1',
    pip_version: '23.0.1',
    install: Object.entries(files).map(([filename, f]) => ({
      download_info: { url: `http://127.0.0.1:3141/files/${f.sha256}/${filename}`, archive_info: { hash: `sha256=${f.sha256}` } },
      is_direct: false,
      requested: f.requested ?? false,
      metadata: { metadata_version: '2.1', name: f.name, version: f.version, requires_dist: f.requires ?? [] },
    })),
    environment: { implementation_name: 'cpython', sys_platform: 'linux', platform_machine: 'x86_64', python_full_version: '3.11.2', python_version: '3.11' },
  });
}

describe('lock on the fake engine', () => {
  let work: string;
  let index: Record<string, string>;
  const body = (filename: string) => `bytes of ${filename}`;

  beforeEach(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-lock-'));
    const projects: Record<string, string[]> = {
      'parent-app': ['parent_app-1.0-py3-none-any.whl', 'parent_app-1.0.tar.gz'],
      'child-lib': ['child_lib-2.0-py3-none-any.whl', 'child_lib-2.0-cp311-cp311-win_amd64.whl', 'child_lib-1.0-py3-none-any.whl'],
    };
    index = {};
    await mkdir(path.join(work, 'index', 'files'), { recursive: true });
    for (const [project, filenames] of Object.entries(projects)) {
      await mkdir(path.join(work, 'index', 'simple', project), { recursive: true });
      for (const filename of filenames) {
        await writeFile(path.join(work, 'index', 'files', filename), body(filename));
        index[filename] = sha(body(filename));
      }
      const anchors = filenames.map((f) => `<a href="../../files/${f}#sha256=${index[f]}">${f}</a>`).join('\n');
      await writeFile(path.join(work, 'index', 'simple', project, 'index.html'), `<html><body>\n${anchors}\n</body></html>\n`);
    }
    await writeFile(path.join(work, 'requirements.in'), 'parent-app>=1\n');
    // The fixture index is the only upstream: nothing from this machine's pip configuration.
    vi.stubEnv('PIP_CONFIG_FILE', '/dev/null');
    vi.stubEnv('PIP_EXTRA_INDEX_URL', '');
    vi.stubEnv('PIP_INDEX_URL', '');
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  const request = (extra: Partial<LockRequest> = {}): LockRequest => ({
    requirementsIn: path.join(work, 'requirements.in'),
    output: path.join(work, 'requirements.lock'),
    format: 'requirements',
    indexUrl: `file://${path.join(work, 'index', 'simple')}`,
    extraIndexUrls: [],
    policy: 'default',
    report: path.join(work, 'report.json'),
    image: 'sandbox-install:fake',
    cacheDir: path.join(work, 'cache'),
    now: new Date('2026-12-03T10:00:00Z'),
    ...extra,
  });
  // No python3.11 on the host: the target is the image's own (unlabelled here), whatever this machine has.
  const deps = (engine: FakeEngine, hostPython: string | null = null) => ({
    engine,
    logger: pino({ level: 'silent' }),
    signal: new AbortController().signal,
    hostPython: () => Promise.resolve(hostPython),
  });
  const resolved = () =>
    pipReport({
      'parent_app-1.0-py3-none-any.whl': {
        name: 'parent-app',
        version: '1.0',
        sha256: index['parent_app-1.0-py3-none-any.whl']!,
        requires: ['child-lib>=2'],
        requested: true,
      },
      'child_lib-2.0-py3-none-any.whl': { name: 'child_lib', version: '2.0', sha256: index['child_lib-2.0-py3-none-any.whl']! },
    });
  const pipFetches = () => [
    '/simple/parent-app/',
    `/files/${index['parent_app-1.0-py3-none-any.whl']}/parent_app-1.0-py3-none-any.whl`,
    '/simple/child-lib/',
    `/files/${index['child_lib-2.0-py3-none-any.whl']}/child_lib-2.0-py3-none-any.whl`,
  ];

  it('0: a clean resolution writes the hashed lock, pip-compile style, and says so in the report', async () => {
    const engine = new PipLikeEngine(script(resolved()), pipFetches());
    const { exitCode, report } = await lock(request(), deps(engine));
    expect(report.findings).toEqual([]);
    expect(exitCode).toBe(0);
    const url = `file://${path.join(work, 'index', 'simple')}`;
    expect(await readFile(path.join(work, 'requirements.lock'), 'utf8')).toBe(
      [
        `# This file was written by sandbox-install lock ${report.tool.version} from ${path.join(work, 'requirements.in')} on 2026-12-03; resolved inside the sandbox (pip 23.0.1, CPython 3.11.2, linux x86_64) against ${url}`,
        '# The resolution holds for CPython 3.11 on linux x86_64 (glibc): environment markers were evaluated for CPython 3.11.2, and only the wheels that platform can install are listed, with the sdist.',
        '#',
        `#    sandbox-install lock ${path.join(work, 'requirements.in')} -o ${path.join(work, 'requirements.lock')}`,
        '#',
        'child-lib==2.0 \\',
        `    --hash=sha256:${index['child_lib-2.0-py3-none-any.whl']}`,
        '    # via parent-app',
        'parent-app==1.0 \\',
        ...[index['parent_app-1.0-py3-none-any.whl']!, index['parent_app-1.0.tar.gz']!].sort().map((h, i) => `    --hash=sha256:${h}${i === 0 ? ' \\' : ''}`),
        `    # via -r ${path.join(work, 'requirements.in')}`,
        '',
      ].join('\n'),
    );
    expect(report.exported).toBe(path.join(work, 'requirements.lock'));
    // The second, independent resolve is reported as resolve-check; each request with the phase that asked.
    expect(report.phases?.map((p) => [p.name, p.exitCode])).toEqual([
      ['resolve', 0],
      ['resolve-check', 0],
    ]);
    expect(engine.runs).toHaveLength(2);
    expect(report.proxy.map((r) => [r.phase, r.path])).toEqual([
      ...pipFetches().map((target) => ['resolve', target]),
      ...pipFetches().map((target) => ['resolve-check', target]),
    ]);
    expect(report.packages.map((p) => [p.name, p.version, p.files.map((f) => f.filename)])).toEqual([
      ['parent-app', '1.0', ['parent_app-1.0-py3-none-any.whl']],
      ['child-lib', '2.0', ['child_lib-2.0-py3-none-any.whl']],
    ]);
    // pip saw the requirements as checked here, copied in; it ran the dry run with a report and no hashes.
    const seeded = engine.runs[0]!.seeded;
    expect(seeded.find((f) => f.path === '/input/requirements.lock')?.content).toBe('parent-app>=1\n');
    const phases = JSON.parse(String(seeded.find((f) => f.path === '/input/phases.json')?.content)) as Array<{ name: string; argv: string[] }>;
    expect(phases.map((p) => p.name)).toEqual(['resolve']);
    expect(phases[0]!.argv.slice(2, 8)).toEqual(['install', '--dry-run', '--ignore-installed', '--report', RESOLVE_REPORT, '--no-input']);
    expect(phases[0]!.argv).not.toContain('--require-hashes');
    expect(engine.runs.every((r) => r.removed)).toBe(true);
    // What was written installs: it parses as a hashed lock.
    expect(parseLock(await readFile(path.join(work, 'requirements.lock'), 'utf8'), 'x').requirements.map((r) => `${r.name}==${r.version}`)).toEqual([
      'child-lib==2.0',
      'parent-app==1.0',
    ]);
  });

  it('0: --lock-format pylock writes a pylock.toml that parses back', async () => {
    const engine = new PipLikeEngine(script(resolved()), pipFetches());
    const { exitCode } = await lock(request({ format: 'pylock', output: path.join(work, 'pylock.toml') }), deps(engine));
    expect(exitCode).toBe(0);
    const plan = parsePylock(await readFile(path.join(work, 'pylock.toml'), 'utf8'), 'pylock.toml');
    expect(plan.requirements.map((r) => [r.name, r.version, r.files?.map((f) => f.filename)])).toEqual([
      ['child-lib', '2.0', ['child_lib-2.0-py3-none-any.whl']],
      ['parent-app', '1.0', ['parent_app-1.0-py3-none-any.whl', 'parent_app-1.0.tar.gz']],
    ]);
  });

  it('1: a DNS query during the resolution fails it in phase resolve, and no lock is written', async () => {
    await writeFile(path.join(work, 'requirements.lock'), 'the old lock\n');
    const dns = JSON.stringify({
      type: 'dns',
      name: 'collect.exfil.invalid',
      qtype: 1,
      answer: '127.1.0.1',
      src: '127.0.0.1:4000',
      bytes: 0,
      payload: '',
      cut: false,
      time: 1.5,
    });
    const engine = new PipLikeEngine(script(resolved(), 0, [dns]), pipFetches());
    const { exitCode, report } = await lock(request(), deps(engine));
    expect(exitCode).toBe(1);
    expect(report.findings).toEqual([
      expect.objectContaining({ rule: 'network.dns', phase: 'resolve', failing: true, evidence: expect.objectContaining({ name: 'collect.exfil.invalid' }) }),
      // Both resolves are judged: the second one looked the name up too.
      expect.objectContaining({
        rule: 'network.dns',
        phase: 'resolve-check',
        failing: true,
        evidence: expect.objectContaining({ name: 'collect.exfil.invalid' }),
      }),
    ]);
    expect(report.exported).toBeNull();
    expect(await readFile(path.join(work, 'requirements.lock'), 'utf8')).toBe('the old lock\n');
    expect(await readdir(work)).not.toContain('pylock.toml');
  });

  it('1: the second resolve asking for a project the first did not: integrity.resolve-divergence, and no lock', async () => {
    // Build code that spells a canary in a project name asks for another name in each run.
    for (const leak of ['leak-0a1b2c', 'leak-9f8e7d']) {
      await mkdir(path.join(work, 'index', 'simple', leak), { recursive: true });
      await writeFile(path.join(work, 'index', 'simple', leak, 'index.html'), '<html><body></body></html>\n');
    }
    const engine = new PipLikeEngine(script(resolved()), (run) => [...pipFetches(), run === 0 ? '/simple/leak-0a1b2c/' : '/simple/leak-9f8e7d/']);
    const { exitCode, report } = await lock(request(), deps(engine));
    expect(report.findings).toEqual([
      {
        rule: 'integrity.resolve-divergence',
        severity: 'high',
        package: null,
        phase: 'resolve-check',
        action: 'fail',
        failing: true,
        message: expect.stringContaining('asked the proxy for 1 thing(s) only in resolve and 1 only in resolve-check'),
        evidence: {
          kind: 'requests',
          runs: ['resolve', 'resolve-check'],
          onlyFirst: ['GET /simple/leak-0a1b2c/'],
          onlyFirstCount: 1,
          onlySecond: ['GET /simple/leak-9f8e7d/'],
          onlySecondCount: 1,
        },
      },
    ]);
    expect(exitCode).toBe(1);
    expect(report.exported).toBeNull();
    expect(await readdir(work)).not.toContain('requirements.lock');
  });

  it('a report naming a file the proxy never served writes no lock', async () => {
    const engine = new PipLikeEngine(script(resolved()), pipFetches().slice(0, 2));
    const { exitCode, report } = await lock(request(), deps(engine));
    expect(report.findings.map((f) => [f.rule, f.package, f.phase, f.message])).toEqual([
      [
        'install.failed',
        'child-lib',
        'resolve',
        "pip's resolution report names child_lib-2.0-py3-none-any.whl for child-lib 2.0, which the proxy never served for child-lib; no lock was written",
      ],
    ]);
    expect(exitCode).not.toBe(0);
    expect(report.exported).toBeNull();
    expect(await readdir(work)).not.toContain('requirements.lock');
  });

  it('pip failing to resolve writes no lock and reads no report', async () => {
    const engine = new PipLikeEngine(script(null, 1), []);
    const { exitCode, report } = await lock(request(), deps(engine));
    expect(report.findings.map((f) => [f.rule, f.phase, f.message])).toEqual([
      ['install.failed', 'resolve', 'the resolve phase exited with 1: ERROR: ResolutionImpossible'],
      ['install.failed', 'resolve-check', 'the resolve phase exited with 1: ERROR: ResolutionImpossible'],
    ]);
    expect(exitCode).not.toBe(0);
    expect(await readdir(work)).not.toContain('requirements.lock');
  });

  it('2: a pylock output not named pylock*.toml, or a requirements.in with an index line, is refused before any container', async () => {
    const engine = new PipLikeEngine(script(resolved()), []);
    await expect(lock(request({ format: 'pylock', output: path.join(work, 'lock.toml') }), deps(engine))).rejects.toThrow(
      new InputError('options.invalid', `--output ${path.join(work, 'lock.toml')}: a PEP 751 lock must be named pylock.toml or pylock.<name>.toml`),
    );
    await expect(lock(request({ output: path.join(work, 'nowhere', 'requirements.lock') }), deps(engine))).rejects.toThrow(
      `--output ${path.join(work, 'nowhere', 'requirements.lock')}: its directory does not exist`,
    );
    await writeFile(path.join(work, 'requirements.in'), '--index-url https://example.invalid/simple\nparent-app\n');
    await expect(lock(request(), deps(engine))).rejects.toMatchObject({ code: 'lock.invalid' });
    expect(engine.runs).toEqual([]);
  });
});
