/**
 * Issue 10, items 2 and 4, on the real engine: a container killed from outside mid-run, an output
 * flood on stdout and stderr, and a trace flood. Each run must end soon with the rule that fits,
 * the right exit code, the report written, no output and no container left; the tool's own memory
 * stays bounded whatever the package prints.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, open, readFile, readlink, stat } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { describe, expect, inject, it } from 'vitest';
import { Report } from '../../src/report/schema.js';
import { LABEL } from '../../src/runtime/port.js';
import { sdist } from '../fixtures/hostile.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { CLI, engineAvailable } from './helpers.js';

/** `docker` with arguments, its stdout trimmed. */
async function docker(...args: string[]): Promise<string> {
  return (await execa('docker', args)).stdout.trim();
}

/** The ids of the containers a run of `owner` (`host:pid`) made, in any state, optionally of one role. */
async function containersOf(owner: string, role?: 'monitor' | 'sandbox', running = false): Promise<string[]> {
  const filters = ['--filter', `label=${LABEL.owner}=${owner}`, ...(role ? ['--filter', `label=${LABEL.role}=${role}`] : [])];
  const out = await docker('ps', ...(running ? [] : ['-a']), '--no-trunc', '-q', ...filters);
  return out === '' ? [] : out.split('\n');
}

/** Poll `probe` every 200 ms until it returns a value, or fail after `seconds`. */
async function waitFor<T>(what: string, seconds: number, probe: () => Promise<T | null>): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value !== null) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${seconds} s waiting for ${what}`);
    await delay(200);
  }
}

interface Run {
  work: string;
  output: string;
  /** The owner label of the run's containers: this host and the CLI's (node's) pid. */
  owner: string;
  child: ResultPromise;
  /** The CLI's peak resident memory in KiB, from /usr/bin/time -v (when timed). */
  maxRssKb(): number | null;
  report(): Promise<Report>;
}

/**
 * Start the built CLI on a lockfile with the fixture index as its only upstream, its cache, report
 * and output in a temp dir. `timed` runs it under `/usr/bin/time -v` to read its peak RSS.
 */
async function start(lockFile: string, indexUrl: string, extra: string[], timed = false): Promise<Run> {
  const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-it-'));
  const output = path.join(work, 'site-packages');
  const argv = [
    CLI,
    lockFile,
    '--index-url',
    indexUrl,
    '--output',
    output,
    '--report',
    path.join(work, 'report.json'),
    '--cache-dir',
    path.join(work, 'cache'),
    '--image',
    inject('image'),
    ...extra,
  ];
  const child = timed ? execa('/usr/bin/time', ['-v', 'node', ...argv], options()) : execa('node', argv, options());
  // Under time, node is time's only child: its pid is the owner label of the run's containers.
  const nodePid = timed
    ? await waitFor('the CLI under /usr/bin/time', 10, async () => {
        const children = await readFile(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').catch(() => '');
        return children.trim() === '' ? null : Number(children.trim().split(' ')[0]);
      })
    : child.pid!;
  let rss: number | null = null;
  void child.then((result) => {
    const match = /Maximum resident set size \(kbytes\): (\d+)/.exec(String(result.stderr));
    rss = match ? Number(match[1]) : null;
  });
  return {
    work,
    output,
    owner: `${hostname()}:${nodePid}`,
    child,
    maxRssKb: () => rss,
    report: async () => Report.parse(JSON.parse(await readFile(path.join(work, 'report.json'), 'utf8'))),
  };
}

function options() {
  // No pip configuration from the machine leaks in: the fixture index is the only upstream.
  return { reject: false, env: { PIP_CONFIG_FILE: '/dev/null', PIP_EXTRA_INDEX_URL: '', NO_COLOR: '1' }, extendEnv: true } as const;
}

/** Wait until the run's sandbox runs the package's setup.py (pip's build hook process). */
async function untilBuilding(run: Run): Promise<string> {
  const sandbox = await waitFor('the sandbox container to run', 60, async () => (await containersOf(run.owner, 'sandbox', true))[0] ?? null);
  await waitFor('the build hook to run in the sandbox', 60, async () => {
    const top = await docker('top', sandbox, '-eo', 'pid,args').catch(() => '');
    return top.includes('_in_process.py') ? true : null;
  });
  return sandbox;
}

const exists = (file: string) =>
  stat(file).then(
    () => true,
    () => false,
  );

/** What every run here must leave: the report written, no output, and no container of its owner. */
async function expectCleanEnd(run: Run): Promise<Report> {
  const report = await run.report();
  expect(report.exported).toBeNull();
  expect(await exists(run.output)).toBe(false);
  expect(await containersOf(run.owner)).toEqual([]);
  return report;
}

describe.runIf(engineAvailable())('engine faults and floods on the real engine', () => {
  const slowBuild = () => buildFixtureIndex([sdist('slow-build', 'import time\ntime.sleep(120)')]);

  it('the sandbox container killed from outside mid-build: monitor.tampered and install.failed 137, exit 1 within seconds', async () => {
    const index = await slowBuild();
    const run = await start(index.lockFile, index.indexUrl, ['--timeout', '300']);
    try {
      const sandbox = await untilBuilding(run);
      await docker('kill', sandbox);
      const killed = Date.now();
      const result = await run.child;
      const seconds = (Date.now() - killed) / 1000;
      console.info(`sandbox killed: the run ended ${seconds.toFixed(1)} s later`);
      const report = await expectCleanEnd(run);
      // The supervisor died with its container: its record of pip's end is gone (fail closed), and
      // pip's exit is SIGKILL's. (The trace may also end in a half-written line: another monitor.tampered.)
      expect(report.findings).toContainEqual(
        expect.objectContaining({ rule: 'monitor.tampered', phase: 'build', failing: true, evidence: { tracerExit: null, statusMissing: true } }),
      );
      expect(report.findings).toContainEqual(expect.objectContaining({ rule: 'install.failed', phase: 'build', evidence: { exitCode: 137 } }));
      expect(report.verdict).toBe('fail');
      expect(result.exitCode).toBe(1);
      expect(seconds).toBeLessThan(15);
    } finally {
      run.child.kill('SIGKILL');
      for (const id of await containersOf(run.owner)) await docker('rm', '-f', id).catch(() => undefined);
    }
  });

  it('the monitor container killed from outside mid-build: monitor.tampered, exit 1 within seconds, not at the build end', async () => {
    const index = await slowBuild();
    const run = await start(index.lockFile, index.indexUrl, ['--timeout', '300']);
    try {
      await untilBuilding(run);
      const [monitor] = await containersOf(run.owner, 'monitor', true);
      await docker('kill', monitor!);
      const killed = Date.now();
      const result = await run.child;
      const seconds = (Date.now() - killed) / 1000;
      console.info(`monitor killed: the run ended ${seconds.toFixed(1)} s later`);
      const report = await expectCleanEnd(run);
      expect(report.findings).toContainEqual(
        expect.objectContaining({ rule: 'monitor.tampered', phase: 'build', failing: true, evidence: { monitorAlive: false } }),
      );
      // The sandbox was stopped with it: pip's exit is SIGKILL's.
      expect(report.findings).toContainEqual(expect.objectContaining({ rule: 'install.failed', phase: 'build', evidence: { exitCode: 137 } }));
      expect(report.verdict).toBe('fail');
      expect(result.exitCode).toBe(1);
      expect(seconds).toBeLessThan(15);
    } finally {
      run.child.kill('SIGKILL');
      for (const id of await containersOf(run.owner)) await docker('rm', '-f', id).catch(() => undefined);
    }
  });
  it('50 MiB of build output, one 20 MiB line without a newline, printed by pip: the run ends, the report keeps 4 KiB, the engine log stays capped, the tool stays small', async () => {
    const index = await buildFixtureIndex([
      sdist(
        'output-flood',
        `
import sys
# pip captures a build's output and prints it all when the build fails: 30 MiB of lines and one
# 20 MiB line without a newline reach the container's log through pip. (200 MB makes pip itself
# pass the sandbox's 2 GiB memory limit before it prints: resource.memory.)
block = "x" * 1023 + "\\n"
for _ in range(15 * 1024):
    sys.stdout.write(block)
    sys.stderr.write(block)
sys.stderr.write("y" * (20 * 1024 * 1024))
sys.stderr.flush()
raise SystemExit(1)`,
      ),
    ]);
    const run = await start(index.lockFile, index.indexUrl, ['--timeout', '240'], true);
    const started = Date.now();
    // The engine's log file of the sandbox, watched while the run lasts (the container goes with it).
    let logMax = 0;
    let watching = true;
    const watcher = (async () => {
      const sandbox = await waitFor('the sandbox container', 60, async () => (await containersOf(run.owner, 'sandbox'))[0] ?? null);
      // The engine names the file once the container has started; with its rotated sibling (.1).
      const logPath = await waitFor('the sandbox log file', 60, async () => (await docker('inspect', '-f', '{{.LogPath}}', sandbox)) || null);
      const size = (file: string) =>
        stat(file).then(
          (s) => s.size,
          () => 0,
        );
      while (watching) {
        logMax = Math.max(logMax, (await size(logPath)) + (await size(`${logPath}.1`)));
        await delay(100);
      }
    })();
    try {
      const result = await run.child;
      const seconds = (Date.now() - started) / 1000;
      watching = false;
      await watcher;
      const rssMb = (run.maxRssKb() ?? Number.NaN) / 1024;
      console.info(
        `output flood: ended after ${seconds.toFixed(1)} s; CLI peak RSS ${rssMb.toFixed(0)} MiB; engine log peaked at ${(logMax / 1024 ** 2).toFixed(1)} MiB`,
      );
      const report = await expectCleanEnd(run);
      expect(report.findings).toContainEqual(expect.objectContaining({ rule: 'install.failed', phase: 'build', evidence: { exitCode: 1 } }));
      // What is kept is pip's last whole lines: the 20 MiB line, cut, is left out, not a slice of it.
      const output = report.install?.output ?? '';
      expect(output.length).toBeLessThanOrEqual(4096);
      expect(output).toContain('× Getting requirements to build wheel did not run successfully.');
      expect(output).not.toContain('yyyy');
      expect(result.exitCode).toBe(4);
      // The flood reached the engine's log and rotated it, and the log stayed at its 16 MiB cap (two files of 8 MiB).
      expect(logMax).toBeGreaterThan(8 * 1024 ** 2);
      expect(logMax).toBeLessThan(17 * 1024 ** 2);
      expect(rssMb).toBeLessThan(400);
      expect(seconds).toBeLessThan(60);
    } finally {
      watching = false;
      run.child.kill('SIGKILL');
      for (const id of await containersOf(run.owner)) await docker('rm', '-f', id).catch(() => undefined);
    }
  });

  /** setup.py that stats a missing path `calls` times, once (pip runs setup.py up to three times). */
  const statFlood = (name: string, calls: number, missing: string) =>
    buildFixtureIndex([
      sdist(
        name,
        `
import os
if not os.path.exists("flood.done"):
    open("flood.done", "w").close()
    for _ in range(${calls}):
        try:
            os.stat(${JSON.stringify(missing)})
        except OSError:
            pass`,
      ),
    ]);

  it('a trace past the 256 MiB read cap (100,000 stats of a 3,000-character path): monitor.tampered, the host reads no more than the cap', async () => {
    const index = await statFlood('trace-cap', 100_000, `/nonexistent${`/${'a'.repeat(199)}`.repeat(15)}`);
    const run = await start(index.lockFile, index.indexUrl, ['--timeout', '120'], true);
    const started = Date.now();
    try {
      const result = await run.child;
      const seconds = (Date.now() - started) / 1000;
      const rssMb = (run.maxRssKb() ?? Number.NaN) / 1024;
      console.info(`trace past the cap: ended after ${seconds.toFixed(1)} s, exit ${result.exitCode}; CLI peak RSS ${rssMb.toFixed(0)} MiB`);
      const report = await expectCleanEnd(run);
      // The install itself went through: the one failing finding is the record the host would not read.
      expect(report.findings.filter((f) => f.failing).map((f) => [f.rule, f.phase, f.evidence])).toEqual([
        ['monitor.tampered', 'build', { traceMissing: true }],
      ]);
      // The build phase's record is the one past the cap; the install after it was read whole.
      expect(report.phases?.find((phase) => phase.name === 'build')?.traceBytes).toBeNull();
      expect(report.verdict).toBe('fail');
      expect(result.exitCode).toBe(1);
      expect(rssMb).toBeLessThan(700);
      expect(seconds).toBeLessThan(90);
    } finally {
      run.child.kill('SIGKILL');
      for (const id of await containersOf(run.owner)) await docker('rm', '-f', id).catch(() => undefined);
    }
  });

  // 1.5 million calls with --timeout 20: all 2 million make a record of 238 to 255 MB here, at the
  // edge of the 256 MiB read cap (the test above judges the cap); about 65,000 traced calls a
  // second means 1.5 million outlast 20 s, so the timeout still ends the flood, under the cap.
  it('a trace flood of 1.5 million cheap stat calls: stopped at --timeout 20 and judged on the whole record read back', async () => {
    const index = await statFlood('trace-flood', 1_500_000, '/nonexistent-flood');
    const run = await start(index.lockFile, index.indexUrl, ['--timeout', '20'], true);
    const started = Date.now();
    try {
      const result = await run.child;
      const seconds = (Date.now() - started) / 1000;
      const rssMb = (run.maxRssKb() ?? Number.NaN) / 1024;
      const report = await expectCleanEnd(run);
      const traceMb = (report.install?.traceBytes ?? 0) / 1024 ** 2;
      console.info(
        `trace flood: ended after ${seconds.toFixed(1)} s, exit ${result.exitCode}; trace ${traceMb.toFixed(0)} MiB; CLI peak RSS ${rssMb.toFixed(0)} MiB`,
      );
      expect(report.findings).toContainEqual(
        expect.objectContaining({ rule: 'resource.timeout', phase: 'build', failing: true, evidence: { timeoutSeconds: 20 } }),
      );
      // Read back whole (under the cap) and parsed: hundreds of thousands of calls, not a few.
      expect(traceMb).toBeGreaterThan(20);
      expect(report.verdict).toBe('fail');
      expect(result.exitCode).toBe(1);
      expect(seconds).toBeLessThan(20 + 30);
    } finally {
      run.child.kill('SIGKILL');
      for (const id of await containersOf(run.owner)) await docker('rm', '-f', id).catch(() => undefined);
    }
  });
  it('the engine restarted mid-build (dockerd stopped with SIGTERM, then started again): engine.lost, exit 3 within seconds, no export; gc removes the containers the run could not', async (ctx) => {
    const dockerd = await restartableDockerd();
    if (dockerd === null) return ctx.skip('the engine was not started by scripts/ensure-engine.sh on this machine: not ours to restart');
    const index = await slowBuild();
    const run = await start(index.lockFile, index.indexUrl, ['--timeout', '300']);
    const namesOf = async () => (await docker('ps', '-a', '--format', '{{.Names}}', '--filter', `label=${LABEL.owner}=${run.owner}`)).split('\n').sort();
    let restart: Promise<number> | null = null;
    try {
      await untilBuilding(run);
      const names = await namesOf();
      expect(names).toHaveLength(2);
      const stopped = Date.now();
      restart = restartEngine(dockerd);
      const result = await run.child;
      const seconds = (Date.now() - stopped) / 1000;
      const back = await restart;
      console.info(`engine restarted: the run ended ${seconds.toFixed(1)} s after SIGTERM; the engine answered again after ${back.toFixed(1)} s`);
      // dockerd on SIGTERM closes its socket first (and unlinks it), then stops the containers (10 s
      // for a PID 1 that ignores SIGTERM) and answers the wait: the reads after it find no engine.
      expect(String(result.stderr).split('\n').slice(-2)).toEqual([
        'sandbox-install: the container engine went away while the sandbox ran (connect ENOENT /var/run/docker.sock)',
        '  hint: check the engine (docker info) and run again; `sandbox-install gc` removes what this run left',
      ]);
      expect(result.exitCode).toBe(3);
      const report = await run.report();
      expect(report.verdict).toBe('error');
      expect(report.error).toMatchObject({ kind: 'environment', code: 'engine.lost' });
      expect(report.exported).toBeNull();
      expect(await exists(run.output)).toBe(false);
      // The engine was down when the run removed its containers: both are left (stopped by the
      // engine's shutdown), and `gc`, the documented recovery, removes them.
      expect(await namesOf()).toEqual(names);
      const gc = await execa('node', [CLI, 'gc'], { reject: false });
      expect(gc.exitCode).toBe(0);
      for (const name of names) expect(gc.stdout).toContain(`removed container ${name}\n`);
      expect(await containersOf(run.owner)).toEqual([]);
      expect(seconds).toBeLessThan(60);
    } finally {
      run.child.kill('SIGKILL');
      await restart?.catch(() => undefined);
      // The files after this one need the engine: it answers again before this test ends.
      await ensureEngine();
      for (const id of await containersOf(run.owner)) await docker('rm', '-f', id).catch(() => undefined);
    }
  });
});

/**
 * The pid of this machine's dockerd when this suite may restart it: run by root, started by
 * scripts/ensure-engine.sh (its output goes to that script's log), so it can be started again the
 * same way. An engine run by systemd, Docker Desktop or another machine is not the suite's to restart.
 */
async function restartableDockerd(): Promise<number | null> {
  if (process.getuid?.() !== 0 || process.env.DOCKER_HOST) return null;
  const pids = await dockerdPids();
  if (pids.length !== 1) return null;
  const log = await readlink(`/proc/${pids[0]}/fd/1`).catch(() => '');
  return log === '/var/log/sandbox-install-dockerd.log' ? pids[0]! : null;
}

/** The dockerd processes that run. */
async function dockerdPids(): Promise<number[]> {
  const pids = (await execa('pgrep', ['-x', 'dockerd'], { reject: false })).stdout.trim().split('\n').filter(Boolean).map(Number);
  const alive = await Promise.all(pids.map(running));
  return pids.filter((_, i) => alive[i]);
}

/** Whether `pid` runs (a zombie has exited: this machine's init may leave one unreaped for a minute or more). */
async function running(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/** Stop dockerd as a service manager would (SIGTERM), wait until it has exited, start it again: the seconds until it answers. */
async function restartEngine(pid: number): Promise<number> {
  const started = Date.now();
  process.kill(pid, 'SIGTERM');
  await waitFor('dockerd to exit', 90, async () => ((await running(pid)) ? null : true));
  await ensureEngine();
  return (Date.now() - started) / 1000;
}

/**
 * Start dockerd as scripts/ensure-engine.sh does, unless one runs, and wait until `docker info`
 * answers. Not the script itself: its `pgrep -x dockerd` counts the old dockerd's zombie, which
 * this machine's init reaps only after a minute or more, and it would then not start one.
 */
async function ensureEngine(): Promise<void> {
  const answers = async () => (await execa('docker', ['info'], { reject: false })).exitCode === 0;
  if (await answers()) return;
  if ((await dockerdPids()).length === 0) {
    const log = await open('/var/log/sandbox-install-dockerd.log', 'w');
    try {
      // In its own session, its output in the script's log: it outlives this test's process group.
      spawn('dockerd', [], { detached: true, stdio: ['ignore', log.fd, log.fd] }).unref();
    } finally {
      await log.close();
    }
  }
  await waitFor('the engine to answer `docker info`', 120, async () => ((await answers()) ? true : null));
}
