/**
 * Issue 10: a hostile package must not hold a run until the wall-clock limit, and a policy's limits
 * hold. Each case asserts its rule, the package, the evidence, and how soon the run ended.
 */
import { mkdtemp, readdir, readFile, statfs, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Report } from '../../src/report/schema.js';
import { threePackages } from '../fixtures/benign.js';
import { sdist } from '../fixtures/hostile.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { DockerClient } from '../../src/runtime/docker.js';
import { engineAvailable, expectNoContainersLeft, runCli, startCli } from './helpers.js';

async function writePolicy(policy: Record<string, unknown>): Promise<string> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'sandbox-install-policy-')), 'policy.json');
  await writeFile(file, JSON.stringify(policy));
  return file;
}

describe.runIf(engineAvailable())('time to verdict and limits on the real engine', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('a daemon that keeps the build output pipe open is killed as it detaches: the run ends in seconds, not at --timeout', async () => {
    const index = await buildFixtureIndex([
      sdist(
        'pipe-holder',
        `
import subprocess
# A new session, and pip's stdout and stderr kept: pip waits for EOF on them until the daemon dies.
subprocess.Popen(["sleep", "600"], start_new_session=True)`,
      ),
    ]);
    const started = Date.now();
    const run = await runCli(index.lockFile, index.indexUrl, ['--timeout', '300']);
    const seconds = (Date.now() - started) / 1000;
    expect(run.report.findings).toContainEqual(
      expect.objectContaining({
        rule: 'process.lingering',
        package: 'pipe-holder',
        phase: 'build',
        failing: true,
        evidence: expect.objectContaining({ argv: 'sleep 600' }),
      }),
    );
    expect(run.report.findings.filter((f) => f.rule === 'resource.timeout')).toEqual([]);
    expect(run.exitCode).toBe(1);
    expect(seconds).toBeLessThan(60);
  });

  it('a build that never ends is resource.timeout within a few seconds of --timeout, whatever its children hold', async () => {
    const index = await buildFixtureIndex([
      sdist(
        'endless-build',
        `
import subprocess, time
subprocess.Popen(["sleep", "600"])  # a child that keeps the pipes
time.sleep(600)`,
      ),
    ]);
    const started = Date.now();
    const run = await runCli(index.lockFile, index.indexUrl, ['--timeout', '20']);
    const seconds = (Date.now() - started) / 1000;
    expect(run.report.findings).toContainEqual(
      expect.objectContaining({ rule: 'resource.timeout', failing: true, evidence: expect.objectContaining({ timeoutSeconds: 20 }) }),
    );
    expect(run.exitCode).toBe(1);
    expect(run.report.exported).toBeNull();
    expect(seconds).toBeLessThan(20 + 25);
  });

  it("a memory hog under a policy's 256 MiB limit is killed and reported as resource.memory", async () => {
    const index = await buildFixtureIndex([
      sdist(
        'memory-hog',
        `
hog = []
for _ in range(64):
    hog.append(b"x" * (32 * 1024 * 1024))  # 2 GiB in all, every page written`,
      ),
    ]);
    const policy = await writePolicy({ extends: 'default', limits: { memoryMb: 256 } });
    const run = await runCli(index.lockFile, index.indexUrl, ['--policy', policy]);
    expect(run.report.findings).toContainEqual(
      expect.objectContaining({ rule: 'resource.memory', failing: true, evidence: expect.objectContaining({ limitBytes: 256 * 1024 * 1024 }) }),
    );
    expect(run.exitCode).toBe(1);
    expect(run.report.exported).toBeNull();
  });

  it("forks past a policy's limits.pids 64: the limit holds and the failed fork is resource.pids", async () => {
    const index = await buildFixtureIndex([
      sdist(
        'fork-burst',
        `
import os, time
kids = []
try:
    for _ in range(200):
        pid = os.fork()
        if pid == 0:
            time.sleep(3)
            os._exit(0)
        kids.append(pid)
except OSError:
    pass
for kid in kids:
    os.waitpid(kid, 0)`,
      ),
    ]);
    const policy = await writePolicy({ extends: 'default', limits: { pids: 64 } });
    const started = Date.now();
    const run = await runCli(index.lockFile, index.indexUrl, ['--policy', policy]);
    expect(run.report.findings).toContainEqual(expect.objectContaining({ rule: 'resource.pids', package: 'fork-burst', phase: 'build', failing: true }));
    expect(run.exitCode).toBe(1);
    expect(run.report.exported).toBeNull();
    expect((Date.now() - started) / 1000).toBeLessThan(60);
  });

  it("a disk filler is stopped soon after a policy's limits.diskMb 256, and the host's free disk never drops by much more", async () => {
    const index = await buildFixtureIndex([
      sdist(
        'disk-filler',
        `
import os
chunk = os.urandom(8 * 1024 * 1024)
with open("/tmp/pip-fill.bin", "wb") as f:
    for _ in range(512):  # 4 GiB if nothing stops it
        f.write(chunk)
        f.flush()
        os.fsync(f.fileno())`,
      ),
    ]);
    const policy = await writePolicy({ extends: 'default', limits: { diskMb: 256 } });
    const free = async () => {
      const stats = await statfs('/var/lib/docker').catch(() => statfs('/'));
      return stats.bavail * stats.bsize;
    };
    const before = await free();
    let lowest = before;
    const watching = setInterval(() => void free().then((bytes) => (lowest = Math.min(lowest, bytes))), 100);
    const started = Date.now();
    const run = await runCli(index.lockFile, index.indexUrl, ['--policy', policy]).finally(() => clearInterval(watching));
    const seconds = (Date.now() - started) / 1000;
    const cap = 256 * 1024 ** 2;
    const disk = run.report.findings.find((f) => f.rule === 'resource.disk');
    expect(disk).toMatchObject({ package: 'disk-filler', phase: 'build', failing: true, evidence: { limitBytes: cap } });
    // Stopped within a poll or two of the cap: far short of the 4 GiB it would have written.
    expect(disk?.evidence.writtenBytes).toBeGreaterThan(cap);
    expect(disk?.evidence.writtenBytes).toBeLessThan(cap + 1024 ** 3);
    expect(before - lowest).toBeLessThan(cap + 1024 ** 3);
    expect(run.exitCode).toBe(1);
    expect(run.report.exported).toBeNull();
    expect(seconds).toBeLessThan(60);
  });

  it('a second SIGINT while the first one cleans up removes the containers at once and exits 130', async () => {
    const index = await buildFixtureIndex([sdist('slow-build', 'import time\ntime.sleep(120)')]);
    const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-it-'));
    const child = startCli(index.lockFile, index.indexUrl, work);
    const client = new DockerClient();
    const deadline = Date.now() + 60_000;
    while ((await client.listOurs()).filter((c) => c.state === 'running').length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 2000));
    const started = Date.now();
    child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const result = await child;
    expect(result.exitCode).toBe(130);
    expect(String(result.stderr)).toContain('SIGINT again: removing');
    expect((Date.now() - started) / 1000).toBeLessThan(15);
    await expectNoContainersLeft();
  });

  it('four runs at once on one engine and one cache all pass, and leave one cache entry per file and no container', async () => {
    const index = await buildFixtureIndex(threePackages);
    const shared = await mkdtemp(path.join(tmpdir(), 'sandbox-install-shared-cache-'));
    const works = await Promise.all([1, 2, 3, 4].map(() => mkdtemp(path.join(tmpdir(), 'sandbox-install-it-'))));
    // Each run's --cache-dir is <work>/cache: here, the same directory for all four.
    await Promise.all(works.map((work) => symlink(shared, path.join(work, 'cache'))));
    const results = await Promise.all(works.map((work) => startCli(index.lockFile, index.indexUrl, work)));
    for (const [i, result] of results.entries()) {
      const report = Report.parse(JSON.parse(await readFile(path.join(works[i]!, 'report.json'), 'utf8')));
      expect(
        report.findings.filter((f) => f.severity !== 'info'),
        `run ${i + 1}`,
      ).toEqual([]);
      expect(result.exitCode, `run ${i + 1}: ${String(result.stderr).slice(-500)}`).toBe(0);
    }
    const entries = (await readdir(path.join(shared, 'sha256'))).sort();
    expect(entries).toEqual(index.files.map((f) => f.sha256).sort());
    await expectNoContainersLeft();
  }, 300_000);
});
