/**
 * Issue 10, item 3, on the real engine with real pip: an upstream that fails ends the run before
 * any container (exit 3), exports nothing, and the report and the terminal name the upstream, with
 * its credentials removed. A file URL that failed is asked three times in the whole run.
 * Issue 19, part 4 (guarantee 4e): what the upstream is asked, and when, does not depend on what
 * runs in the sandbox.
 */
import { access } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { FixturePackage } from '../fixtures/index.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { engineAvailable, expectNoContainersLeft, runCli, serveIndex, type CliRun } from './helpers.js';

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

const victim: FixturePackage = {
  name: 'upstream-victim',
  version: '1.0',
  kind: 'wheel',
  files: { 'upstream_victim/__init__.py': 'VALUE = 1\n' },
};

async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

function expectNoSecret(run: CliRun): void {
  expect(run.stdout + run.stderr + JSON.stringify(run.report)).not.toContain('secret');
}

describe.runIf(engineAvailable())('upstream faults on the real engine', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('a locked wheel whose file answers HTTP 500: exit 3 before any container, the upstream, project and file named, in well under 60 s', async () => {
    const index = await buildFixtureIndex([victim]);
    const wheel = index.files.find((f) => f.name === 'upstream-victim')!.filename;
    const server = await serveIndex(index.dir, [wheel]);
    const upstream = `${server.origin}/simple/`;
    const started = Date.now();
    let run: CliRun;
    try {
      run = await runCli(index.lockFile, `${server.origin.replace('://', '://user:secret@')}/simple/`);
    } finally {
      await server.close();
    }
    const seconds = (Date.now() - started) / 1000;
    // Prefetch reads every locked file before any container: the failure is the machine's (exit 3).
    expect(run.exitCode).toBe(3);
    expect(run.report.exported).toBeNull();
    expect(run.report.phases ?? []).toEqual([]);
    expect(run.report.proxy).toEqual([]);
    expect(await exists(run.output)).toBe(false);
    const message = `cannot prefetch ${wheel} of upstream-victim from ${upstream}: ${server.origin}/files/${wheel}: HTTP 500 (3 attempts)`;
    expect(run.report.error).toMatchObject({ kind: 'environment', code: 'upstream.download-failed', message });
    expect(run.stderr).toContain(message);
    // Our three attempts, and nothing from pip: it never ran.
    expect(server.hits.filter((h) => h === `/files/${wheel}`)).toHaveLength(3);
    expectNoSecret(run);
    expect(seconds).toBeLessThan(60);
  });

  it('an index that is down (a closed port): exit 3 before any container, the upstream named, the report saying why', async () => {
    const index = await buildFixtureIndex([victim]);
    const port = await closedPort();
    const upstream = `http://127.0.0.1:${port}/simple/`;
    const started = Date.now();
    const run = await runCli(index.lockFile, `http://user:secret@127.0.0.1:${port}/simple/`);
    const seconds = (Date.now() - started) / 1000;
    // Every locked project's page is read on the host before the run (to know which sdists to
    // build): an index that is down is the machine's problem, found before any container starts.
    expect(run.exitCode).toBe(3);
    expect(run.report.image).toBeNull();
    expect(run.report.exported).toBeNull();
    expect(await exists(run.output)).toBe(false);
    expect(run.report.error).toMatchObject({ code: 'upstream.unreachable' });
    expect(run.report.error?.message).toContain(`cannot read upstream-victim's page from ${upstream}`);
    expect(run.stderr).toContain(`cannot read upstream-victim's page from ${upstream}`);
    expectNoSecret(run);
    expect(seconds).toBeLessThan(60);
  });

  it('the upstream sees the same requests, all before the sandbox starts, whether the package asks the relay for more or not', async () => {
    // The same project and version twice: once quiet, once with a .pth that, at the first
    // interpreter start with the installed tree (phase startup), asks the relay for an unlocked
    // project, for its own page again and, from it, for its own locked file twice.
    const quiet: FixturePackage = { name: 'prefetch-probe', version: '1.0', kind: 'wheel', files: { 'prefetch_probe/__init__.py': 'VALUE = 1\n' } };
    const quietIndex = await buildFixtureIndex([quiet]);
    const { filename } = quietIndex.files.find((f) => f.name === 'prefetch-probe')!;
    const body = [
      "b = 'http://127.0.0.1:3141/simple/'",
      'def get(url):',
      // A function's globals are site's, where urllib is not bound: import it by name.
      "    try: return __import__('urllib.request').request.urlopen(url, timeout=5).read().decode()",
      "    except Exception: return ''",
      "get(b + 'prefetch-unlocked/')",
      "m = __import__('re').search(r'href=\"([^\"#]+)', get(b + 'prefetch-probe/'))",
      "for _ in range(2 if m else 0): get(__import__('urllib.parse').parse.urljoin(b + 'prefetch-probe/', m.group(1)))",
    ].join('\n');
    const hook = `import sys; exec(${JSON.stringify(body)})\n`;
    const loud: FixturePackage = { ...quiet, files: { ...quiet.files, 'zz_prefetch_probe.pth': hook } };
    const loudIndex = await buildFixtureIndex([loud]);

    const runOver = async (dir: string, lockFile: string): Promise<{ run: CliRun; hits: string[]; times: number[] }> => {
      const server = await serveIndex(dir, []);
      try {
        const run = await runCli(lockFile, `${server.origin}/simple/`);
        return { run, hits: [...server.hits], times: [...server.hitTimes] };
      } finally {
        await server.close();
      }
    };
    const a = await runOver(quietIndex.dir, quietIndex.lockFile);
    const b = await runOver(loudIndex.dir, loudIndex.lockFile);
    expect(a.run.exitCode).toBe(0);
    // The loud run did ask the relay for more: an unlocked name refused, its page and a file again.
    const files = (run: CliRun): number => run.report.proxy.filter((r) => r.path.startsWith('/files/') && r.status === 200).length;
    expect(b.run.report.proxy.map((r) => r.path)).toContain('/simple/prefetch-unlocked/');
    expect(files(b.run)).toBe(files(a.run) + 2);
    expect(b.run.report.findings).toContainEqual(expect.objectContaining({ rule: 'integrity.unlocked-request' }));
    // Same paths in the same order: the lock (one project) fixes them; the sandbox added none.
    expect(a.hits).toEqual(b.hits);
    expect(a.hits).toEqual(['/simple/prefetch-probe/', '/simple/prefetch-probe/', `/files/${filename}`]);
    // Every upstream request came before the sandbox's first request to the proxy.
    for (const { run, times } of [a, b]) {
      const firstFromSandbox = Math.min(...run.report.proxy.map((r) => Date.parse(r.time)));
      expect(Math.max(...times)).toBeLessThan(firstFromSandbox);
      expect(run.report.timings.prefetch).toBeGreaterThan(0);
    }
  });
});
