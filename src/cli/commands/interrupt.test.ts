/**
 * Interruption at each phase of the main job, and an engine lost mid-run, on the fake engine. A
 * signal is sent exactly when the workflow reaches a named step of the fake (`FakeRun.at`). Each
 * case checks what the run leaves: no container, no temp dir in TMPDIR (pointed into the test's
 * work dir), no run record, no output and no staging dir beside it, and the report saying why.
 */
import { readdirSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { SITE_PACKAGES } from '../../core/layout.js';
import { FakeEngine, type FakeHook, type FakeRun, type FakeStep } from '../../runtime/fake.js';
import { dnsQuery, exists, phaseFiles, quietStartup, useFakeCli } from './fake-cli.js';

const PIP_INSTALL = ['python3', '-m', 'pip', 'install'];

function run(overrides: Partial<FakeRun> = {}): FakeRun {
  return {
    exitCode: 0,
    files: phaseFiles([{ phase: 'install', rootPid: 10, started: 1, argv: PIP_INSTALL }, quietStartup(2.5)]),
    trees: { [SITE_PACKAGES]: {} },
    output: 'Successfully installed nothing\n',
    ...overrides,
  };
}

const list = (dir: string): Promise<string[]> => readdir(dir).catch(() => []);

const seen = new WeakMap<FakeEngine, number>();

/** A hook for the `nth` read of the installed tree (1: the static scan; 2: the export). */
const onSitePackages =
  (nth: number, act: () => void | Promise<void>): FakeHook =>
  async (call) => {
    if (call.path !== SITE_PACKAGES) return;
    seen.set(call.engine, (seen.get(call.engine) ?? 0) + 1);
    if (seen.get(call.engine) === nth) await act();
  };

describe('SIGINT and SIGTERM at each phase: exit 130/143, and nothing left behind', () => {
  const fake = useFakeCli('sandbox-install-int-');
  let lock: string;
  let out: string;

  beforeEach(async () => {
    lock = path.join(fake.work, 'requirements.lock');
    out = path.join(fake.work, 'out');
    await writeFile(lock, '# nothing to install\n');
  });

  /** What each phase proves was reached when the signal came, checked inside the hook. */
  const proofs: string[] = [];
  beforeEach(() => {
    proofs.length = 0;
  });

  interface Phase {
    name: string;
    step: FakeStep;
    /** The hook, given what sends the signal. */
    hook(send: () => void): FakeHook;
    overrides?: Partial<FakeRun>;
    /** What is true after the run, beyond what every phase checks. */
    after(engine: FakeEngine): Promise<void>;
  }

  const phases: Phase[] = [
    {
      name: 'proxy start (the signal comes as the run begins: the proxy starts, no container is made)',
      step: 'imageExists',
      hook: (send) => () => send(),
      after: async (engine) => {
        expect(engine.runs).toEqual([]);
        // The proxy did start: its cache is made when it starts.
        expect(await exists(path.join(fake.work, 'cache', 'sha256'))).toBe(true);
      },
    },
    {
      name: 'container start (during startRun)',
      step: 'startRun',
      hook: (send) => () => send(),
      after: async (engine) => {
        expect(engine.runs).toHaveLength(1);
        expect(engine.runs[0]?.started).toBe(false);
        expect(engine.runs[0]?.removed).toBe(true);
      },
    },
    {
      name: 'pip (while the sandbox is waited on)',
      step: 'waitSandbox',
      hook: (send) => async () => {
        // The run's proxy dir and its record are there while pip runs: the checks after can see a leak.
        proofs.push(...(await list(fake.tmp)).map((name) => name.replace(/-[A-Za-z0-9]{6}$/, '-XXXXXX')));
        proofs.push(...(await list(fake.runs)).map((name) => name.replace(/^[0-9a-f-]{36}/, '<run>')));
        send();
      },
      after: async (engine) => {
        expect(proofs).toEqual(['sandbox-install-proxy-XXXXXX', '<run>.json']);
        expect(engine.runs[0]?.started).toBe(true);
      },
    },
    {
      name: 'scan (while the installed tree is read for the static scan)',
      step: 'readArchive',
      hook: (send) => onSitePackages(1, send),
      after: async () => {},
    },
    {
      name: 'scan, on a run the policy would fail (the interruption wins over the verdict)',
      step: 'readArchive',
      hook: (send) => onSitePackages(1, send),
      overrides: { monitorLines: [dnsQuery('collect.exfil.invalid')] },
      after: async () => {
        const written = await fake.report();
        expect(written.verdict).toBe('error');
        expect(written.findings).toEqual([]);
      },
    },
    {
      name: 'export (while the tree is extracted into the staging dir)',
      step: 'archiveData',
      hook: (send) =>
        onSitePackages(1, async () => {
          proofs.push(...(await list(fake.work)).filter((name) => name.startsWith('.out.staging-')).map((name) => name.slice(0, -6)));
          send();
        }),
      after: async () => {
        expect(proofs).toEqual(['.out.staging-']);
      },
    },
  ];

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    for (const phase of phases) {
      it(`${code}: ${signal} at ${phase.name}`, async () => {
        const engine = new FakeEngine(run({ ...phase.overrides, at: { [phase.step]: phase.hook(() => process.emit(signal)) } }));
        expect(await fake.cli(engine, [lock, '--output', out])).toBe(code);
        expect(fake.stderr.join('')).toContain(`sandbox-install: interrupted by ${signal}; cleaned up\n`);
        expect(fake.leftovers(engine)).toEqual([]);
        const written = await fake.report();
        expect(written.error).toMatchObject({ code: 'interrupted', message: `interrupted by ${signal}` });
        expect(written.exported).toBeNull();
        expect(await exists(out)).toBe(false);
        expect((await list(fake.work)).filter((name) => name.includes('staging'))).toEqual([]);
        expect((await list(fake.tmp)).filter((name) => name.startsWith('sandbox-install-'))).toEqual([]);
        expect(await list(fake.runs)).toEqual([]);
        await phase.after(engine);
      });
    }
  }

  it('without a signal, the same run exports (the hooks alone change nothing)', async () => {
    const engine = new FakeEngine(run({ at: { archiveData: onSitePackages(2, () => undefined) } }));
    expect(await fake.cli(engine, [lock, '--output', out])).toBe(0);
    expect(await exists(path.join(out, '.sandbox-install-manifest.json'))).toBe(true);
    expect((await list(fake.tmp)).filter((name) => name.startsWith('sandbox-install-'))).toEqual([]);
    expect(await list(fake.runs)).toEqual([]);
  });
});

describe('a second signal while the first one cleans up', () => {
  const fake = useFakeCli('sandbox-install-force-');

  it("130: removes this process's containers and its run's temp dirs and record, then forces the exit", async () => {
    const lock = path.join(fake.work, 'requirements.lock');
    await writeFile(lock, '# nothing to install\n');
    let exited: (code: number) => void = () => {};
    const forced = new Promise<number>((resolve) => (exited = resolve));
    let atExit: { code: number; containers: string[]; tmp: string[]; runs: string[] } | null = null;
    const engine = new FakeEngine(
      run({
        exitCode: 'hang',
        at: {
          waitSandbox: () => void process.emit('SIGINT'),
          // The cleanup is stuck removing the containers when the second signal comes.
          remove: async () => {
            process.emit('SIGINT');
            await forced;
          },
        },
      }),
    );
    const ended = fake.cli(engine, [lock, '--output', path.join(fake.work, 'out')], [], (code) => {
      atExit = {
        code,
        containers: fake.leftovers(engine),
        tmp: readdirSync(fake.tmp).filter((name) => name.startsWith('sandbox-install-')),
        runs: readdirSync(fake.runs),
      };
      exited(code);
    });
    expect(await forced).toBe(130);
    expect(atExit).toEqual({ code: 130, containers: [], tmp: [], runs: [] });
    expect(fake.stderr.join('')).toContain("sandbox-install: SIGINT again: removing this run's containers and exiting\n");
    // In a test the exit returns: the first cleanup then ends as well.
    expect(await ended).toBe(130);
  });
});

describe('the engine lost while pip runs', () => {
  const fake = useFakeCli('sandbox-install-lost-');

  it('3: ends at once with the engine named, the report written, nothing exported, temp dirs removed, removal tried', async () => {
    const lock = path.join(fake.work, 'requirements.lock');
    const out = path.join(fake.work, 'out');
    await writeFile(lock, '# nothing to install\n');
    // pip runs until the engine goes: the wait in progress breaks, and every later call is refused.
    const engine = new FakeEngine(run({ exitCode: 'hang', at: { waitSandbox: ({ engine }) => void setTimeout(() => engine.lose('fail'), 50) } }));
    const started = Date.now();
    expect(await fake.cli(engine, [lock, '--output', out])).toBe(3);
    expect(Date.now() - started).toBeLessThan(5000);
    const stderr = fake.stderr.join('');
    expect(stderr).toContain('sandbox-install: the container engine went away while the sandbox ran (socket hang up)\n');
    expect(stderr).toContain('  hint: check the engine (docker info) and run again; `sandbox-install gc` removes what this run left\n');
    const written = await fake.report();
    expect(written.verdict).toBe('error');
    expect(written.error).toMatchObject({ kind: 'environment', code: 'engine.lost' });
    expect(written.exported).toBeNull();
    expect(await exists(out)).toBe(false);
    // The containers could not be removed (the engine refuses every call): removal was tried once, and gc finds them later by label.
    expect(engine.runs.map((r) => r.removeAttempts)).toEqual([1]);
    expect(fake.leftovers(engine)).toEqual([engine.runs[0]?.id]);
    expect((await list(fake.tmp)).filter((name) => name.startsWith('sandbox-install-'))).toEqual([]);
    expect(await list(fake.runs)).toEqual([]);
  });
});
