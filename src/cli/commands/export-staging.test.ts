/**
 * Issue 11: the installed tree is read out of the sandbox once. One stream feeds the static scan
 * and the extraction into a private staging dir beside the output; the dir is published by rename
 * only after a pass, and removed on every other outcome (a fail, an error, a signal). On the fake
 * engine; the full-disk cases mount a small tmpfs and need root.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SITE_PACKAGES } from '../../core/layout.js';
import type { MonitorListener, RunSpec, SandboxRun } from '../../runtime/port.js';
import { FakeEngine, type FakeRun, type FakeSandboxRun } from '../../runtime/fake.js';
import { dnsQuery, exists, phaseFiles, quietStartup, useFakeCli } from './fake-cli.js';

const PIP_INSTALL = ['python3', '-m', 'pip', 'install'];
/** The host has the Python 3.11 the export compiles bytecode with (export/bytecode.ts tries these two). */
const PYTHON = ['python3.11', 'python3'].some(
  (python) => spawnSync(python, ['-I', '-S', '-c', 'import sys; print(sys.version_info[:2] == (3, 11))'], { encoding: 'utf8' }).stdout?.trim() === 'True',
);

/** A lock naming demo==1.0: the only distribution the trees below hold. */
const LOCK = `demo==1.0 --hash=sha256:${'d'.repeat(64)}\n`;

/** demo 1.0 installed with `files`: a dist-info whose RECORD lists each with its true hash, as pip writes it. */
function demo(files: Record<string, string>): Record<string, string> {
  const hash = (content: string) => createHash('sha256').update(content).digest('base64url');
  const metadata = 'Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n';
  const own = { ...files, 'demo-1.0.dist-info/METADATA': metadata };
  const rows = Object.entries(own).map(([name, content]) => `${name},sha256=${hash(content)},${Buffer.byteLength(content)}`);
  return { ...own, 'demo-1.0.dist-info/RECORD': [...rows, 'demo-1.0.dist-info/RECORD,,', ''].join('\n') };
}

function run(tree: Record<string, string>, overrides: Partial<FakeRun> = {}): FakeRun {
  return {
    exitCode: 0,
    files: phaseFiles([{ phase: 'install', rootPid: 10, started: 1, argv: PIP_INSTALL }, quietStartup(2.5)]),
    trees: { [SITE_PACKAGES]: tree },
    output: 'Successfully installed nothing\n',
    ...overrides,
  };
}

/** What the output's parent holds, staging dirs named by their prefix. */
async function beside(parent: string): Promise<string[]> {
  return (await readdir(parent)).map((name) => (name.includes('.staging-') ? name.slice(0, -6) : name)).sort();
}

describe('install reads the installed tree once and publishes it only after the verdict', () => {
  const fake = useFakeCli('sandbox-install-stage-');
  let lock: string;
  let out: string;

  beforeEach(async () => {
    lock = path.join(fake.work, 'requirements.lock');
    out = path.join(fake.work, 'out');
    await writeFile(lock, LOCK);
  });

  /** Counts the reads of the installed tree, and records what is beside the output when its bytes are first read. */
  function watch(): { reads: () => number; atRead: Array<{ beside: string[]; mode: number }>; at: FakeRun['at'] } {
    let reads = 0;
    const atRead: Array<{ beside: string[]; mode: number }> = [];
    return {
      reads: () => reads,
      atRead,
      at: {
        readArchive: ({ path: target }) => void (target === SITE_PACKAGES && reads++),
        archiveData: async ({ path: target }) => {
          if (target !== SITE_PACKAGES) return;
          const staging = (await readdir(fake.work)).filter((name) => name.startsWith('.out.staging-'));
          const modes = await Promise.all(staging.map(async (name) => (await stat(path.join(fake.work, name))).mode & 0o7777));
          atRead.push({ beside: await beside(fake.work), mode: modes[0] ?? -1 });
        },
      },
    };
  }

  it('0: one read from the engine; while it streams only a private staging dir is beside the output; then the output, whole', async () => {
    const seen = watch();
    const engine = new FakeEngine(run(demo({ 'demo/__init__.py': '', 'demo/mod.py': 'x = 1\n', 'demo/data.txt': 'hello\n' }), { at: seen.at }));
    expect(await fake.cli(engine, [lock, '--output', out])).toBe(0);
    expect(seen.reads()).toBe(1);
    expect(seen.atRead).toEqual([{ beside: ['.out.staging-', 'cache', 'index', 'requirements.lock'], mode: 0o700 }]);
    const written = await fake.report();
    expect(written.verdict).toBe('pass');
    expect(written.exported).toBe(out);
    const manifest = JSON.parse(await readFile(path.join(out, '.sandbox-install-manifest.json'), 'utf8')) as { files: Array<{ path: string }> };
    expect(manifest.files.map((f) => f.path).filter((p) => !p.includes('__pycache__'))).toEqual([
      'demo-1.0.dist-info/METADATA',
      'demo-1.0.dist-info/RECORD',
      'demo/__init__.py',
      'demo/data.txt',
      'demo/mod.py',
    ]);
    expect(await readFile(path.join(out, 'demo', 'mod.py'), 'utf8')).toBe('x = 1\n');
    // Published readable, and nothing but the output and the report beside it.
    expect((await stat(out)).mode & 0o777).toBe(0o755);
    expect(await beside(fake.work)).toEqual(['cache', 'index', 'out', 'report.json', 'requirements.lock']);
    expect(await readdir(fake.runs).catch(() => [])).toEqual([]);
  });

  it('1: a run the policy fails extracted the tree too, but removes it; the findings are the run’s, none from staging', async () => {
    const seen = watch();
    // A source that does not compile: on a pass, staging would report it; on a fail, nothing is staged to judge.
    const engine = new FakeEngine(run(demo({ 'demo/bad.py': 'def (\n' }), { at: seen.at, monitorLines: [dnsQuery('collect.exfil.invalid')] }));
    expect(await fake.cli(engine, [lock, '--output', out])).toBe(1);
    expect(seen.reads()).toBe(1);
    expect(seen.atRead.map((r) => r.beside)).toEqual([['.out.staging-', 'cache', 'index', 'requirements.lock']]);
    const written = await fake.report();
    expect(written.verdict).toBe('fail');
    expect(written.findings.map((f) => f.rule)).toEqual(['network.dns']);
    expect(written.exported).toBeNull();
    expect(await exists(out)).toBe(false);
    expect(await beside(fake.work)).toEqual(['cache', 'index', 'report.json', 'requirements.lock']);
    expect(await readdir(fake.runs).catch(() => [])).toEqual([]);
  });

  // Bytecode is compiled with the host's Python 3.11; without one nothing is compiled and nothing fails to.
  it.skipIf(!PYTHON)('1: on a pass, what staging finds is judged as before: a source that does not compile fails the run, nothing published', async () => {
    const engine = new FakeEngine(run(demo({ 'demo/bad.py': 'def (\n' })));
    expect(await fake.cli(engine, [lock, '--output', out])).toBe(1);
    const written = await fake.report();
    expect(written.findings.map((f) => [f.rule, f.phase, f.action, f.evidence.path])).toEqual([['static.invalid-source', 'install', 'fail', 'demo/bad.py']]);
    expect(written.exported).toBeNull();
    expect(await exists(out)).toBe(false);
    expect(await beside(fake.work)).toEqual(['cache', 'index', 'report.json', 'requirements.lock']);
  });

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${code}: ${signal} while the one read streams into the scan and the staging dir removes the staging dir`, async () => {
      const seen = watch();
      const engine = new FakeEngine(
        run(
          { 'mod.py': 'x = 1\n' },
          {
            at: {
              ...seen.at,
              archiveData: async (call) => {
                await seen.at?.archiveData?.(call);
                if (call.path === SITE_PACKAGES) process.emit(signal);
              },
            },
          },
        ),
      );
      expect(await fake.cli(engine, [lock, '--output', out])).toBe(code);
      expect(seen.atRead.map((r) => r.beside)).toEqual([['.out.staging-', 'cache', 'index', 'requirements.lock']]);
      const written = await fake.report();
      expect(written.error).toMatchObject({ code: 'interrupted', message: `interrupted by ${signal}` });
      expect(written.verdict).toBe('error');
      expect(written.exported).toBeNull();
      expect(await exists(out)).toBe(false);
      expect(await beside(fake.work)).toEqual(['cache', 'index', 'report.json', 'requirements.lock']);
      expect(await readdir(fake.runs).catch(() => [])).toEqual([]);
      expect(fake.leftovers(engine)).toEqual([]);
    });
  }

  // Issue 20, part 4: a collect step broken after the sandbox ran fails the run closed, it does not end it inconclusive.
  it('1: an archive that breaks off fails the scan and the extraction at once: monitor.tampered naming the read, the staging dir removed', async () => {
    const engine = new TruncatedTreeEngine(run({}));
    expect(await fake.cli(engine, [lock, '--output', out])).toBe(1);
    const written = await fake.report();
    expect(written.error).toBeNull();
    expect(written.verdict).toBe('fail');
    expect(written.findings.filter((f) => f.failing).map((f) => [f.rule, f.phase, f.evidence])).toEqual([
      ['monitor.tampered', 'install', { collectFailed: 'site-archive', error: 'could not read the site-packages archive: Unexpected end of data' }],
    ]);
    expect(written.exported).toBeNull();
    expect(await exists(out)).toBe(false);
    expect(await beside(fake.work)).toEqual(['cache', 'index', 'report.json', 'requirements.lock']);
    expect(await readdir(fake.runs).catch(() => [])).toEqual([]);
  });
});

/** A tar of one 64 KiB file cut off in the middle of its data. */
function truncatedArchive(): Readable {
  const pack = tarStream.pack();
  pack.entry({ name: 'site-packages/', type: 'directory', mode: 0o755 });
  pack.entry({ name: 'site-packages/big.py', mode: 0o644 }, Buffer.alloc(64 * 1024, 0x61));
  pack.finalize();
  return Readable.from(
    (async function* () {
      const chunks: Buffer[] = [];
      for await (const chunk of pack as unknown as AsyncIterable<Buffer>) chunks.push(chunk);
      yield Buffer.concat(chunks).subarray(0, 20 * 1024);
    })(),
    { objectMode: false },
  );
}

/** The fake engine, except that the installed tree's archive breaks off. */
class TruncatedTreeEngine extends FakeEngine {
  override async startRun(spec: RunSpec, listener: MonitorListener): Promise<SandboxRun> {
    const run = (await super.startRun(spec, listener)) as FakeSandboxRun;
    const read = run.readArchive.bind(run);
    run.readArchive = (target: string) => (target === SITE_PACKAGES ? Promise.resolve(truncatedArchive()) : read(target));
    return run;
  }
}

/** Why the tests cannot run here, or null: mounting a tmpfs needs root and a kernel that lets us. */
function cannotMount(): string | null {
  if (process.getuid?.() !== 0) return 'not root: mounting a small tmpfs needs root';
  const probe = spawnSync('sh', ['-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"; s=$?; rmdir "$d"; exit $s'], {
    encoding: 'utf8',
  });
  return probe.status === 0 ? null : `cannot mount a tmpfs here: ${probe.stderr.trim() || `exit ${probe.status}`}`;
}

const SKIP = cannotMount();

describe.skipIf(SKIP !== null)('the staging dir’s disk fills while the tree streams into it', () => {
  const fake = useFakeCli('sandbox-install-stagefull-');
  let disk = '';
  let lock: string;
  /** 2 MiB: more than the 1 MiB disk holds. */
  const tree = demo({ 'demo/big.txt': 'a'.repeat(2 * 1024 * 1024) });

  beforeEach(async () => {
    disk = path.join(fake.work, 'disk');
    await mkdir(disk);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', disk], { encoding: 'utf8' });
    if (mounted.status !== 0) throw new Error(`mount failed: ${mounted.stderr}`);
    lock = path.join(fake.work, 'requirements.lock');
    await writeFile(lock, LOCK);
  });

  afterEach(async () => {
    spawnSync('umount', [disk]);
    await rm(disk, { recursive: true, force: true });
  });

  it('3 on a pass: the export fails as the machine’s problem, naming the output and ENOSPC, and leaves the disk empty', async () => {
    const out = path.join(disk, 'out');
    expect(await fake.cli(new FakeEngine(run(tree)), [lock, '--output', out])).toBe(3);
    const written = await fake.report();
    expect(written.error).toMatchObject({ code: 'export.disk-full', message: `no space left to export to ${out}: ENOSPC (no space left on device)` });
    expect(written.exported).toBeNull();
    expect(await readdir(disk)).toEqual([]);
  });

  it('1 on a fail: the scan read the whole tree and the verdict stands, with its findings; the disk is left empty', async () => {
    const out = path.join(disk, 'out');
    const engine = new FakeEngine(run(tree, { monitorLines: [dnsQuery('collect.exfil.invalid')] }));
    expect(await fake.cli(engine, [lock, '--output', out])).toBe(1);
    const written = await fake.report();
    expect(written.error).toBeNull();
    expect(written.findings.map((f) => f.rule)).toEqual(['network.dns']);
    expect(await readdir(disk)).toEqual([]);
  });
});
