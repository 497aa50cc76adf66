import { mkdtemp, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { expect, inject } from 'vitest';
import { Report } from '../../src/report/schema.js';
import { DockerClient } from '../../src/runtime/docker.js';
import { LABEL } from '../../src/runtime/port.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = path.join(ROOT, 'bin', 'sandbox-install.js');
export const engineAvailable = (): boolean => inject('engine');

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  report: Report;
  output: string;
}

/**
 * The CLI processes this test file started. Every container a run makes carries its owner's
 * `host:pid` label, so a test checks what *its* runs left, and a concurrent run of the suite on the
 * same engine (another process, other pids) cannot fail it.
 */
const started = new Set<number>();

/**
 * Start the real CLI (built dist/) with its cache and report in `work`, and the test image unless
 * `image` is null (the command then picks its own: the default tag, which is the test image, or
 * wheelhouse's build image).
 */
function launch(args: string[], work: string, image: string | null = inject('image')): ResultPromise {
  const child = execa(
    'node',
    [CLI, ...args, '--report', path.join(work, 'report.json'), '--cache-dir', path.join(work, 'cache'), ...(image === null ? [] : ['--image', image])],
    // No pip configuration from the machine leaks in: the fixture index is the only upstream.
    { reject: false, env: { PIP_CONFIG_FILE: '/dev/null', PIP_EXTRA_INDEX_URL: '', NO_COLOR: '1' }, extendEnv: true },
  );
  if (child.pid !== undefined) started.add(child.pid);
  return child;
}

/** The main job on a lockfile with a fixture index as its only upstream. */
export function startCli(lockFile: string, indexUrl: string, work: string, extra: string[] = []): ResultPromise {
  return launch([lockFile, '--index-url', indexUrl, '--output', path.join(work, 'site-packages'), ...extra], work);
}

async function finished(child: ResultPromise, work: string, output = path.join(work, 'site-packages')): Promise<CliRun> {
  const result = await child;
  // Every report the CLI writes must satisfy the published schema.
  const report = Report.parse(JSON.parse(await readFile(path.join(work, 'report.json'), 'utf8')));
  return {
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout),
    stderr: String(result.stderr),
    report,
    output,
  };
}

export async function runCli(lockFile: string, indexUrl: string, extra: string[] = []): Promise<CliRun> {
  const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-it-'));
  return finished(startCli(lockFile, indexUrl, work, extra), work);
}

/** `investigate <target>` with a fixture index as its only upstream. */
export async function runInvestigate(target: string, indexUrl: string, extra: string[] = []): Promise<CliRun> {
  const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-it-'));
  return finished(launch(['investigate', target, '--index-url', indexUrl, ...extra], work), work);
}

/**
 * `wheelhouse <lockfile> -o <work>/wheels` with a fixture index as its only upstream and no image
 * named, so the command chooses between the sandbox image and the build image itself. `work` is
 * the run's own temp dir (cache, report.json and, on pass, wheels/), returned for the test to list.
 */
export async function runWheelhouse(lockFile: string, indexUrl: string, extra: string[] = []): Promise<CliRun & { work: string }> {
  const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-it-'));
  const output = path.join(work, 'wheels');
  const run = await finished(launch(['wheelhouse', lockFile, '--index-url', indexUrl, '-o', output, ...extra], work, null), work, output);
  return { ...run, work };
}

/**
 * `lock <requirements.in> -o <output>` with a fixture index as its only upstream; `output` is the
 * lock's path (the report and cache go in a temp dir of their own).
 */
export async function runLock(requirementsIn: string, indexUrl: string, output: string, extra: string[] = []): Promise<CliRun> {
  const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-it-'));
  return finished(launch(['lock', requirementsIn, '--index-url', indexUrl, '-o', output, ...extra], work), work, output);
}

/** After every test: no container of a run this file started is left on the engine. */
export async function expectNoContainersLeft(): Promise<void> {
  const owners = new Set([...started].map((pid) => `${hostname()}:${pid}`));
  const ours = (await new DockerClient().listOurs()).filter((c) => owners.has(c.labels[LABEL.owner] ?? ''));
  expect(ours.map((c) => c.name)).toEqual([]);
}

export interface FixtureServer {
  origin: string;
  hits: string[];
  /** Date.now() of each hit, in the same order. */
  hitTimes: number[];
  close(): Promise<void>;
}

/**
 * The fixture index over HTTP: `/simple/<project>/` and `/files/<name>` from its directory, except
 * the files `failing` names, which answer 500.
 */
export async function serveIndex(dir: string, failing: string[] = []): Promise<FixtureServer> {
  const hits: string[] = [];
  const hitTimes: number[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const target = req.url ?? '';
    hits.push(target);
    hitTimes.push(Date.now());
    const page = /^\/simple\/([a-z0-9-]+)\/$/.exec(target);
    const file = /^\/files\/([A-Za-z0-9_.-]+)$/.exec(target);
    const where = page ? path.join(dir, 'simple', page[1]!, 'index.html') : file ? path.join(dir, 'files', file[1]!) : null;
    if (file && failing.includes(file[1]!)) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error\n');
      return;
    }
    if (where === null) {
      res.writeHead(404).end();
      return;
    }
    readFile(where).then(
      (body) => res.writeHead(200, { 'content-type': page ? 'text/html' : 'application/octet-stream', 'content-length': body.length }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // Loopback only: the proxy, on the host, asks it; the containers cannot reach it.
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    hitTimes,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
