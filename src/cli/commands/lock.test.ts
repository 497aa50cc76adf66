/**
 * The lock command: its options, then from argv to exit code on the fake engine. A requirements.in
 * that cannot be locked from an index is refused before any run; a resolve phase that makes a DNS
 * query fails and writes no lock; a clean resolve of nothing writes the lock (a pylock.toml when -o
 * names one). No Docker, no network: the proxy runs on a unix socket against a file:// index. The
 * fake serves nothing through the proxy, so a lock listing resolved files, hashed from the upstream
 * pages, is left to test/integration/lock.integration.test.ts.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { beforeEach, describe, expect, it } from 'vitest';
import { INSTALLER_PYTHON, PIP_AS, RESOLVE_REPORT, SITE_PACKAGES } from '../../core/layout.js';
import { FakeEngine, type FakeRun } from '../../runtime/fake.js';
import { dnsQuery, exists, phaseFiles, useFakeCli } from './fake-cli.js';
import { defaultLockPath, lockFormatFor, LockOptions, runLock } from './lock.js';

describe('lock command options', () => {
  it('puts the lock beside the requirements.in by default, named for its format', () => {
    expect(defaultLockPath('deps/requirements.in', 'requirements')).toBe('deps/requirements.lock');
    expect(defaultLockPath('requirements.in', 'pylock')).toBe('pylock.toml');
  });

  it('defaults to a requirements lock under the default policy, with stdout in text', () => {
    expect(LockOptions.parse({})).toMatchObject({ policy: 'default', format: 'text', extraIndexUrl: [] });
  });

  it('writes pylock.toml when -o names one (PEP 751 names), unless --lock-format says otherwise', () => {
    expect(lockFormatFor(undefined, undefined)).toBe('requirements');
    expect(lockFormatFor('out/pylock.toml', undefined)).toBe('pylock');
    expect(lockFormatFor('pylock.dev.toml', undefined)).toBe('pylock');
    expect(lockFormatFor('my-pylock.toml', undefined)).toBe('requirements');
    expect(lockFormatFor('requirements.lock', 'pylock')).toBe('pylock');
    expect(lockFormatFor('pylock.toml', 'requirements')).toBe('requirements');
  });

  it('an unknown --lock-format is bad input, before the engine is asked for', async () => {
    const ctx = {
      logger: undefined as never,
      signal: new AbortController().signal,
      color: false,
      engine: () => {
        throw new Error('no engine in this test');
      },
    };
    await expect(runLock('requirements.in', { lockFormat: 'poetry' }, ctx)).rejects.toMatchObject({ kind: 'input', code: 'options.invalid' });
  });
});

/** pip's report of a resolution that installs nothing, from the sandbox's interpreter. */
const EMPTY_RESOLUTION = JSON.stringify({
  version: '1',
  pip_version: '23.0.1',
  install: [],
  environment: { implementation_name: 'cpython', sys_platform: 'linux', platform_machine: 'x86_64', python_full_version: '3.11.2' },
});

/** The resolve phase ran from 1 to 2, exited 0 and left its report. */
function run(overrides: Partial<FakeRun> = {}): FakeRun {
  return {
    exitCode: 0,
    files: {
      ...phaseFiles([{ phase: 'resolve', rootPid: 10, started: 1, argv: ['python3', '-m', 'pip', 'install', '--dry-run'] }]),
      [RESOLVE_REPORT]: EMPTY_RESOLUTION,
    },
    trees: { [SITE_PACKAGES]: {} },
    output: '',
    ...overrides,
  };
}

describe('lock on the fake engine', () => {
  const fake = useFakeCli('sandbox-install-lock-');
  const { stderr, report, leftovers } = fake;
  let requirementsIn: string;

  beforeEach(async () => {
    requirementsIn = path.join(fake.work, 'requirements.in');
    await writeFile(requirementsIn, 'lock-app\n');
  });

  const cli = (engine: FakeEngine, output = path.join(fake.work, 'requirements.lock')) => fake.cli(engine, ['lock', requirementsIn, '-o', output]);

  for (const [what, line, message] of [
    [
      'an editable requirement',
      '-e .',
      '-e is not allowed in a requirements.in for lock: editable requirements are local checkouts, not released files an index serves; lock a released version',
    ],
    [
      'a URL requirement',
      'lock-app @ https://files.example.invalid/lock_app-1.0.tar.gz',
      'lock-app @ https://files.example.invalid/lock_app-1.0.tar.gz is a URL, VCS or path requirement; lock resolves only released projects from the index, by name',
    ],
  ] as const) {
    it(`2: ${what} is bad input, before any run, and no lock is written`, async () => {
      await writeFile(requirementsIn, `lock-dep-a\n${line}\n`);
      const engine = new FakeEngine(run());
      expect(await cli(engine)).toBe(2);
      expect(stderr.join('')).toContain(`sandbox-install: ${requirementsIn}:2: ${message}\n`);
      expect(engine.runs).toEqual([]);
      expect(await exists(path.join(fake.work, 'requirements.lock'))).toBe(false);
    });
  }

  it('0: a clean resolve writes the lock, with the report saying where', async () => {
    const engine = new FakeEngine(run());
    const output = path.join(fake.work, 'requirements.lock');
    expect(await fake.cli(engine, ['lock', requirementsIn, '-o', output, '--python-version', '3.11.2'])).toBe(0);
    const written = await report();
    expect(written).toMatchObject({ verdict: 'pass', exported: output, findings: [] });
    expect(written.phases?.map((p) => [p.name, p.exitCode])).toEqual([
      ['resolve', 0],
      ['resolve-check', 0],
    ]);
    expect(await readFile(output, 'utf8')).toMatch(
      /^# This file was written by sandbox-install lock \S+ from .*requirements\.in on \d{4}-\d\d-\d\d; resolved inside the sandbox \(pip 23\.0\.1, CPython 3\.11\.2, linux x86_64\)/,
    );
    // pip resolved the requirements.in as checked, in the one resolve phase.
    expect(engine.runs[0]!.seeded.find((f) => f.path === '/input/requirements.lock')!.content).toBe('lock-app\n');
    const plan = JSON.parse(engine.runs[0]!.seeded.find((f) => f.path === '/input/phases.json')!.content) as Array<{ name: string; argv: string[] }>;
    expect(plan.map((p) => p.name)).toEqual(['resolve']);
    expect(plan[0]!.argv).toEqual(expect.arrayContaining(['--dry-run', '--report', RESOLVE_REPORT]));
    expect(leftovers(engine)).toEqual([]);
  });

  it('--python-version 3.11.7: pip resolves through the launcher for 3.11.7, and the header and report say so', async () => {
    const engine = new FakeEngine(run());
    const output = path.join(fake.work, 'requirements.lock');
    expect(await fake.cli(engine, ['lock', requirementsIn, '-o', output, '--python-version', '3.11.7'])).toBe(0);
    const written = await report();
    // The fake's image carries no version label.
    expect(written.python).toEqual({ image: null, target: '3.11.7' });
    expect(await readFile(output, 'utf8')).toMatch(
      /\(pip 23\.0\.1, CPython 3\.11\.7, linux x86_64\).*\n.*environment markers were evaluated for CPython 3\.11\.7,/,
    );
    for (const sandbox of engine.runs) {
      const plan = JSON.parse(sandbox.seeded.find((f) => f.path === '/input/phases.json')!.content) as Array<{ name: string; argv: string[] }>;
      expect(plan[0]!.argv.slice(0, 3)).toEqual([INSTALLER_PYTHON, PIP_AS, '3.11.7']);
    }
  });

  it('--python-version 3.12.1: exit 2 before any container, naming both versions', async () => {
    const engine = new FakeEngine(run());
    expect(await fake.cli(engine, ['lock', requirementsIn, '--python-version', '3.12.1'])).toBe(2);
    expect(engine.runs).toEqual([]);
    expect(fake.stderr.join('')).toContain(
      'the target Python 3.12.1 (--python-version) is not a 3.11 release: the sandbox image runs Python 3.11, and markers and Requires-Python can be evaluated only for another 3.11.N; nothing was started',
    );
    expect(await exists(path.join(fake.work, 'requirements.lock'))).toBe(false);
  });

  it('0: -o naming a pylock.toml, with no --lock-format, writes a PEP 751 lock', async () => {
    const engine = new FakeEngine(run());
    const output = path.join(fake.work, 'pylock.toml');
    expect(await cli(engine, output)).toBe(0);
    expect((await report()).exported).toBe(output);
    expect(parseToml(await readFile(output, 'utf8'))).toMatchObject({ 'lock-version': '1.0', 'created-by': 'sandbox-install', packages: [] });
  });

  it('1: a DNS query in the resolve phase fails the run, and no lock is written', async () => {
    const dns = dnsQuery('collect.lock.invalid');
    const engine = new FakeEngine(run({ monitorLines: [dns] }));
    expect(await cli(engine)).toBe(1);
    const written = await report();
    expect(written.verdict).toBe('fail');
    expect(written.findings).toContainEqual(
      expect.objectContaining({ rule: 'network.dns', phase: 'resolve', failing: true, evidence: expect.objectContaining({ name: 'collect.lock.invalid' }) }),
    );
    expect(written.exported).toBeNull();
    // No lock, and no temp file beside where it would have gone.
    expect((await readdir(fake.work)).filter((name) => name !== 'cache').sort()).toEqual(['index', 'report.json', 'requirements.in']);
    expect(leftovers(engine)).toEqual([]);
  });
});
