/**
 * Issue 20, part 4: evidence survives a broken collector. A read of what the stopped sandbox left
 * (the engine's filesystem diff, the installed tree) that fails while the engine still answers is
 * the sandbox's doing: monitor.tampered naming the step, every other finding kept, verdict fail,
 * exit 1, nothing exported. Only an engine that really stopped answering is engine.lost (exit 3).
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { SITE_PACKAGES } from '../../core/layout.js';
import { FakeEngine, type FakeRun } from '../../runtime/fake.js';
import { dnsQuery, exists, phaseFiles, quietStartup, useFakeCli } from './fake-cli.js';

const PIP_INSTALL = ['python3', '-m', 'pip', 'install'];
/** What Docker 20.10 answered for a container holding a 4,030-byte path in /tmp (shortened). */
const DIFF_500 = '(HTTP code 500) server error - lstat /var/lib/docker/overlay2/3e01/merged/tmp/d0xxxx/d1xxxx/ffff: file name too long';

function run(overrides: Partial<FakeRun> = {}): FakeRun {
  return {
    exitCode: 0,
    files: phaseFiles([{ phase: 'install', rootPid: 10, started: 1, argv: PIP_INSTALL }, quietStartup(2.5)]),
    trees: { [SITE_PACKAGES]: {} },
    output: 'Successfully installed nothing\n',
    // Evidence gathered before the collector broke: a DNS query for a name of the package's choice.
    monitorLines: [dnsQuery('collect.exfil.invalid')],
    ...overrides,
  };
}

const DNS_KEPT = expect.objectContaining({
  rule: 'network.dns',
  phase: 'install',
  failing: true,
  evidence: expect.objectContaining({ name: 'collect.exfil.invalid' }),
});

describe('a collect step that fails after the sandbox ran', () => {
  const fake = useFakeCli('sandbox-install-collect-');
  const { report, leftovers } = fake;
  let lock: string;

  beforeEach(async () => {
    lock = path.join(fake.work, 'requirements.lock');
    await writeFile(lock, '# nothing to install\n');
  });

  const install = (engine: FakeEngine) => fake.cli(engine, [lock, '--output', path.join(fake.work, 'out')]);

  it('install: the diff failing while the engine answers is monitor.tampered naming the diff, the DNS finding kept, exit 1, nothing exported', async () => {
    const engine = new FakeEngine(
      run({
        at: {
          diff: () => {
            throw new Error(DIFF_500);
          },
        },
      }),
    );
    expect(await install(engine)).toBe(1);
    const written = await report();
    expect(written.verdict).toBe('fail');
    expect(written.error).toBeNull();
    expect(written.findings).toContainEqual(
      expect.objectContaining({ rule: 'monitor.tampered', phase: 'install', failing: true, evidence: { collectFailed: 'diff', error: DIFF_500 } }),
    );
    expect(written.findings).toContainEqual(DNS_KEPT);
    // The traces were read back whole: the run's record stands.
    expect(written.phases?.map((p) => [p.name, p.traceBytes !== null])).toEqual([
      ['install', true],
      ['startup', true],
    ]);
    expect(written.exported).toBeNull();
    expect(await exists(path.join(fake.work, 'out'))).toBe(false);
    expect(leftovers(engine)).toEqual([]);
  });

  it('install: without the diff, what the trace wrote outside the target is still fs.write-outside-target, in the phase that wrote it', async () => {
    const install = [
      `10 1.000000 execve("/usr/bin/python3", ["python3", "-m", "pip", "install"], 0x7ffd /* 5 vars */) = 0`,
      `10 1.200000 mkdir("/tmp/deep", 0777) = 0`,
      `10 1.300000 openat(AT_FDCWD</home/user>, "/tmp/deep/f", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3</tmp/deep/f>`,
      `10 2.000000 +++ exited with 0 +++`,
      '',
    ].join('\n');
    const engine = new FakeEngine(
      run({
        files: phaseFiles([{ phase: 'install', rootPid: 10, started: 1, trace: install }, quietStartup(2.5)]),
        at: {
          diff: () => {
            throw new Error(DIFF_500);
          },
        },
      }),
    );
    expect(await fake.cli(engine, [lock, '--output', path.join(fake.work, 'out')])).toBe(1);
    const written = await report();
    expect(written.findings.filter((f) => f.rule === 'fs.write-outside-target').map((f) => [f.phase, f.evidence.path, f.evidence.kind])).toEqual([
      ['install', '/tmp/deep', 'added'],
      ['install', '/tmp/deep/f', 'added'],
    ]);
    expect(written.findings).toContainEqual(expect.objectContaining({ rule: 'monitor.tampered', evidence: { collectFailed: 'diff', error: DIFF_500 } }));
    expect(written.filesystem).toContainEqual(expect.objectContaining({ path: '/tmp/deep/f', kind: 'added', expected: false }));
  });

  it('install: the diff failing because the engine went away is engine.lost, exit 3', async () => {
    const engine = new FakeEngine(run({ at: { diff: ({ engine }) => engine.lose('fail') } }));
    expect(await install(engine)).toBe(3);
    const written = await report();
    expect(written.verdict).toBe('error');
    expect(written.error).toMatchObject({ kind: 'environment', code: 'engine.lost' });
    expect(written.exported).toBeNull();
  });

  it('install: the diff unanswered (the engine socket gone) is engine.lost, exit 3, even when a restarted engine answers the check after it', async () => {
    const gone = Object.assign(new Error('connect ENOENT /var/run/docker.sock'), { code: 'ENOENT', syscall: 'connect' });
    const engine = new FakeEngine(
      run({
        at: {
          diff: () => {
            throw gone;
          },
        },
      }),
    );
    expect(await install(engine)).toBe(3);
    const written = await report();
    expect(written.verdict).toBe('error');
    expect(written.error).toMatchObject({ kind: 'environment', code: 'engine.lost' });
    expect(written.error?.message).toContain('connect ENOENT /var/run/docker.sock');
    expect(written.exported).toBeNull();
  });

  it('install: the installed tree refused by the engine while it answers is monitor.tampered naming the site archive, exit 1, nothing exported', async () => {
    const engine = new FakeEngine(
      run({
        at: {
          readArchive: ({ path: target }) => {
            if (target === SITE_PACKAGES) throw new Error('(HTTP code 500) server error - file name too long');
          },
        },
      }),
    );
    expect(await install(engine)).toBe(1);
    const written = await report();
    expect(written.verdict).toBe('fail');
    expect(written.findings).toContainEqual(
      expect.objectContaining({
        rule: 'monitor.tampered',
        phase: 'install',
        failing: true,
        evidence: { collectFailed: 'site-archive', error: '(HTTP code 500) server error - file name too long' },
      }),
    );
    expect(written.findings).toContainEqual(DNS_KEPT);
    expect(written.exported).toBeNull();
    expect(await exists(path.join(fake.work, 'out'))).toBe(false);
    expect(leftovers(engine)).toEqual([]);
  });

  it('install: the installed tree breaking mid-stream is monitor.tampered too, and nothing half-staged is exported', async () => {
    const engine = new FakeEngine(
      run({
        at: {
          archiveData: ({ path: target }) => {
            if (target === SITE_PACKAGES) throw new Error('unexpected end of the archive');
          },
        },
      }),
    );
    expect(await install(engine)).toBe(1);
    const written = await report();
    expect(written.findings).toContainEqual(
      expect.objectContaining({ rule: 'monitor.tampered', phase: 'install', evidence: expect.objectContaining({ collectFailed: 'site-archive' }) }),
    );
    expect(written.findings).toContainEqual(DNS_KEPT);
    expect(written.verdict).toBe('fail');
    expect(await exists(path.join(fake.work, 'out'))).toBe(false);
  });

  it('install: the installed tree unreadable because the engine went away is engine.lost, exit 3', async () => {
    const engine = new FakeEngine(
      run({
        at: {
          readArchive: ({ path: target, engine }) => {
            if (target === SITE_PACKAGES) engine.lose('fail');
          },
        },
      }),
    );
    expect(await install(engine)).toBe(3);
    expect((await report()).error).toMatchObject({ code: 'engine.lost' });
  });

  it('investigate: the diff failing while the engine answers is monitor.tampered, the DNS finding kept, exit 1', async () => {
    const engine = new FakeEngine(
      run({
        files: phaseFiles([
          { phase: 'install', rootPid: 10, started: 1, argv: PIP_INSTALL },
          quietStartup(2.5),
          { phase: 'import', rootPid: 20, started: 3, argv: ['python3', '-I', '-S', '/opt/sandbox-install/importer.py'] },
        ]),
        at: {
          diff: () => {
            throw new Error(DIFF_500);
          },
        },
      }),
    );
    expect(await fake.cli(engine, ['investigate', 'sneaky-pkg==1.0'])).toBe(1);
    const written = await report();
    expect(written.verdict).toBe('fail');
    expect(written.findings).toContainEqual(
      expect.objectContaining({ rule: 'monitor.tampered', phase: 'install', failing: true, evidence: { collectFailed: 'diff', error: DIFF_500 } }),
    );
    expect(written.findings).toContainEqual(DNS_KEPT);
    expect(written.exported).toBeNull();
  });
});
