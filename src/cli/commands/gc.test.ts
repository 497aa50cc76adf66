/**
 * `gc` on the fake engine and real directories: it removes what the record of a dead run names,
 * only where that still is a directory of ours, never through a symlink, and leaves live runs and
 * records it cannot read alone. Records are files on disk: hostile ones are refused, not trusted.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { main } from '../index.js';
import { LABEL } from '../../runtime/port.js';
import { FakeEngine } from '../../runtime/fake.js';
import { exists } from './fake-cli.js';

/** The pid of a process that has ended (a child run and waited for). */
function deadPid(): number {
  return Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }));
}

describe('gc', () => {
  let work: string;
  let runs: string;
  const stdout: string[] = [];

  beforeEach(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-gc-'));
    runs = path.join(work, 'state', 'sandbox-install', 'runs');
    await mkdir(runs, { recursive: true });
    await mkdir(path.join(work, 'tmp'));
    vi.stubEnv('XDG_STATE_HOME', path.join(work, 'state'));
    stdout.length = 0;
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (stdout.push(String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    vi.unstubAllEnvs();
    await rm(work, { recursive: true, force: true });
  });

  /** A record as a run writes it; returns its file. */
  async function record(pid: number, paths: string[], host = hostname()): Promise<string> {
    const file = path.join(runs, `${randomUUID()}.json`);
    await writeFile(file, JSON.stringify({ version: 1, host, pid, started: new Date().toISOString(), paths }));
    return file;
  }

  /** A directory with a file in it. */
  async function dir(at: string): Promise<string> {
    await mkdir(at);
    await writeFile(path.join(at, 'file'), 'x');
    return at;
  }

  const gc = (engine: FakeEngine, args: string[] = []) => main(['node', 'sandbox-install', 'gc', ...args], () => engine);
  const lines = () => stdout.join('').split('\n').slice(0, -1);

  it("removes a dead run's temp and staging dirs, then its record and its containers, and says so", async () => {
    const pid = deadPid();
    const proxyDir = await dir(path.join(work, 'tmp', 'sandbox-install-proxy-Ab12Cd'));
    const staging = await dir(path.join(work, '.out.staging-xY9z0Q'));
    const gone = path.join(work, 'tmp', 'sandbox-install-proxy-Gone00');
    const file = await record(pid, [proxyDir, staging, gone]);
    const engine = new FakeEngine({ exitCode: 0, files: {}, trees: {} });
    const owner = `${hostname()}:${pid}`;
    await engine.startRun({ id: 'dead-run', labels: { [LABEL.tool]: '1', [LABEL.owner]: owner } } as never, {
      onLine: () => undefined,
      onStderr: () => undefined,
    });

    expect(await gc(engine)).toBe(0);
    expect(lines()).toEqual([
      `removed directory ${proxyDir}`,
      `removed directory ${staging}`,
      'removed 2 directory(ies) of 1 dead run(s); 0 run(s) still going keep theirs',
      'removed container dead-run-monitor',
      'removed container dead-run-sandbox',
      'removed 2 container(s); 0 belong to runs still going',
    ]);
    expect(await exists(proxyDir)).toBe(false);
    expect(await exists(staging)).toBe(false);
    expect(await exists(file)).toBe(false);
    expect(engine.runs[0]?.removed).toBe(true);
  });

  it('never follows a symlink, and leaves a path that is not a name it makes', async () => {
    const victim = await dir(path.join(work, 'victim'));
    const link = path.join(work, 'tmp', 'sandbox-install-proxy-Link00');
    await symlink(victim, link);
    const precious = await dir(path.join(work, 'precious'));
    const relative = 'tmp/sandbox-install-proxy-Rel000';
    const file = await record(deadPid(), [link, precious, relative, `${work}/tmp/../tmp/sandbox-install-proxy-Dots00`]);

    expect(await gc(new FakeEngine({ exitCode: 0, files: {}, trees: {} }))).toBe(0);
    expect(lines()).toEqual([
      `left ${link}: a symbolic link, not followed`,
      `left ${precious}: not a name sandbox-install makes`,
      `left ${relative}: not an absolute, normal path`,
      `left ${work}/tmp/../tmp/sandbox-install-proxy-Dots00: not an absolute, normal path`,
      'removed 0 directory(ies) of 1 dead run(s); 0 run(s) still going keep theirs',
      'removed 0 container(s); 0 belong to runs still going',
    ]);
    expect(await readFile(path.join(victim, 'file'), 'utf8')).toBe('x');
    expect(await exists(link)).toBe(true);
    expect(await exists(path.join(precious, 'file'))).toBe(true);
    // What it refuses now it will always refuse: the record goes.
    expect(await exists(file)).toBe(false);
  });

  it("leaves a live run's dirs and record, and a dead run of another host's", async () => {
    const mine = await dir(path.join(work, 'tmp', 'sandbox-install-proxy-Live00'));
    const live = await record(process.pid, [mine]);
    const elsewhere = await record(deadPid(), [mine], 'another-host.invalid');

    expect(await gc(new FakeEngine({ exitCode: 0, files: {}, trees: {} }))).toBe(0);
    expect(lines()[0]).toBe('removed 0 directory(ies) of 0 dead run(s); 2 run(s) still going keep theirs');
    expect(await exists(path.join(mine, 'file'))).toBe(true);
    expect(await exists(live)).toBe(true);
    expect(await exists(elsewhere)).toBe(true);
  });

  it('refuses records it cannot trust: too big, not JSON, not the schema, a symlink; and keeps them', async () => {
    const victim = await dir(path.join(work, 'tmp', 'sandbox-install-proxy-Vict00'));
    const big = path.join(runs, `${randomUUID()}.json`);
    await writeFile(big, JSON.stringify({ version: 1, host: hostname(), pid: deadPid(), started: '', paths: [victim], pad: 'x'.repeat(70_000) }));
    const garbage = path.join(runs, `${randomUUID()}.json`);
    await writeFile(garbage, '{"version":1,');
    const extra = path.join(runs, `${randomUUID()}.json`);
    await writeFile(extra, JSON.stringify({ version: 1, host: hostname(), pid: deadPid(), started: '', paths: [victim], also: 'rm -rf /' }));
    const linked = path.join(runs, `${randomUUID()}.json`);
    const elsewhere = path.join(work, 'elsewhere.json');
    await writeFile(elsewhere, JSON.stringify({ version: 1, host: hostname(), pid: deadPid(), started: '', paths: [victim] }));
    await symlink(elsewhere, linked);
    await writeFile(path.join(runs, 'notes.txt'), 'hello');

    expect(await gc(new FakeEngine({ exitCode: 0, files: {}, trees: {} }))).toBe(0);
    const why = new Map([
      [big, /^\d+ bytes, over the 65536-byte limit$/],
      [garbage, /^not JSON$/],
      [extra, /^not a run record$/],
      [linked, /^ELOOP: too many symbolic links encountered/],
      [path.join(runs, 'notes.txt'), /^not a record name$/],
    ]);
    const left = lines().slice(0, -2);
    expect(left).toHaveLength(why.size);
    for (const line of left) {
      const [file, reason] = line.replace(/^left /, '').split(/: (.*)/s) as [string, string];
      expect(reason, file).toMatch(why.get(file)!);
    }
    expect(await exists(path.join(victim, 'file'))).toBe(true);
    expect((await readdir(runs)).length).toBe(5);
  });
});
