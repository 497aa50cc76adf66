/**
 * Issue 19, part 4 (guarantee 4e): prefetch reads every locked page and every installable locked
 * file before the sandbox starts, and from then on the proxy asks the upstream nothing for a locked
 * project, whatever the sandbox requests. Real proxy, real local upstream counting its requests.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, realpath, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvironmentError } from '../errors.js';
import { noPipOptions } from '../lock/pip-options.js';
import type { LockPlan } from '../lock/types.js';
import { startProxy, type IndexProxy, type StartProxyOptions } from './server.js';

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const never = new AbortController().signal;
const logger = pino({ level: 'silent' });

interface Dist {
  project: string;
  filename: string;
  bytes: Buffer;
  sha: string;
  requiresPython?: string;
}

function dist(project: string, filename: string, requiresPython?: string): Dist {
  const bytes = randomBytes(3000);
  return { project, filename, bytes, sha: sha256(bytes), ...(requiresPython ? { requiresPython } : {}) };
}

const alphaWheel = dist('alpha', 'alpha-1.0-py3-none-any.whl');
const alphaSdist = dist('alpha', 'alpha-1.0.tar.gz');
/** Locked, but for Windows: pip in the sandbox cannot take it. */
const alphaWindows = dist('alpha', 'alpha-1.0-cp311-cp311-win_amd64.whl');
const betaWheel = dist('beta', 'beta-2.0-py3-none-any.whl');

function lock(dists: Dist[]): LockPlan {
  const byProject = new Map<string, { version: string; sha256: string[] }>();
  for (const d of dists) {
    const entry = byProject.get(d.project) ?? { version: d.filename.split('-')[1]!.replace(/\.tar\.gz$/, ''), sha256: [] };
    entry.sha256.push(d.sha);
    byProject.set(d.project, entry);
  }
  return {
    file: 'requirements.lock',
    indexUrl: null,
    extraIndexUrls: [],
    pipOptions: noPipOptions(),
    requirements: [...byProject].map(([name, { version, sha256 }], i) => ({ name, rawName: name, version, extras: [], marker: null, sha256, line: i + 1 })),
  };
}

interface Upstream {
  origin: string;
  hits: string[];
  /** Most file requests in flight at once. */
  maxInFlight: number;
  close(): Promise<void>;
}

/**
 * An index of `dists` at /simple/<project>/ and /files/<name>; `body` may replace a file's bytes
 * or its whole answer (return null to send 500), and `delayMs` holds each file answer.
 */
async function serve(dists: Dist[], opts: { body?: (d: Dist) => Buffer | null; delayMs?: number } = {}): Promise<Upstream> {
  const sockets = new Set<Socket>();
  const state: Upstream = { origin: '', hits: [], maxInFlight: 0, close: async () => {} };
  let inFlight = 0;
  const server = http.createServer((req, res) => {
    const target = req.url ?? '';
    state.hits.push(target);
    const page = /^\/simple\/([a-z0-9-]+)\/$/.exec(target);
    if (page) {
      const own = dists.filter((d) => d.project === page[1]);
      if (own.length === 0) return void res.writeHead(404).end();
      const requires = (d: Dist): string =>
        d.requiresPython ? ` data-requires-python="${d.requiresPython.replaceAll('>', '&gt;').replaceAll('<', '&lt;')}"` : '';
      const links = own.map((d) => `<a href="/files/${d.filename}#sha256=${d.sha}"${requires(d)}>${d.filename}</a>`).join('\n');
      return void res.writeHead(200, { 'content-type': 'text/html' }).end(`<!DOCTYPE html><html><body>${links}</body></html>`);
    }
    const file = dists.find((d) => target === `/files/${d.filename}`);
    if (!file) return void res.writeHead(404).end();
    inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, inFlight);
    setTimeout(() => {
      inFlight--;
      const body = opts.body ? opts.body(file) : file.bytes;
      if (body === null) res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
      else res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
    }, opts.delayMs ?? 0);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  };
  return state;
}

let tmp: string;
let runs = 0;

beforeAll(async () => {
  tmp = await realpath(await mkdtemp(path.join(os.tmpdir(), 'prefetch-test-')));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function proxyOver(
  plan: LockPlan,
  indexUrl: string,
  cacheDir = path.join(tmp, `cache-${++runs}`),
  build: Pick<StartProxyOptions, 'buildPins' | 'buildAllow'> = { buildAllow: [] },
): Promise<IndexProxy> {
  return startProxy({
    plan,
    upstreams: { indexUrl, extraIndexUrls: [] },
    cacheDir,
    listen: { host: '127.0.0.1', port: 0 },
    ...build,
    logger,
    upstreamTimeoutMs: 2_000,
    retry: { attempts: 2, backoffMs: [10], maxTimeouts: 2 },
  });
}

function get(proxy: IndexProxy, target: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port: Number(new URL(proxy.address).port), path: target, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end();
  });
}

const fileTarget = (d: Dist): string => `/files/${d.sha}/${d.filename}`;

describe('prefetch: the upstream sees what the lock decides, before the sandbox starts', () => {
  it('reads each locked page once and each installable locked file once; then serving asks the upstream nothing', async () => {
    const dists = [alphaWheel, alphaSdist, alphaWindows, betaWheel];
    const upstream = await serve(dists);
    const proxy = await proxyOver(lock(dists), `${upstream.origin}/simple/`);
    try {
      const summary = await proxy.prefetch(never);
      expect(summary).toEqual({ projects: 2, files: 3, downloaded: 3, downloadedBytes: 9000, skipped: 1 });
      expect([...upstream.hits].sort()).toEqual(
        ['/simple/alpha/', '/simple/beta/', `/files/${alphaWheel.filename}`, `/files/${alphaSdist.filename}`, `/files/${betaWheel.filename}`].sort(),
      );
      const before = upstream.hits.length;
      const page = await get(proxy, '/simple/alpha/');
      expect(page.status).toBe(200);
      expect(page.body.toString()).toContain(alphaWheel.filename);
      expect(page.body.toString()).toContain(alphaSdist.filename);
      // The wheel for another platform is neither fetched nor listed, and refused when asked for.
      expect(page.body.toString()).not.toContain(alphaWindows.filename);
      for (const d of [alphaWheel, alphaSdist, betaWheel]) {
        const file = await get(proxy, fileTarget(d));
        expect(file.status).toBe(200);
        expect(file.body.equals(d.bytes)).toBe(true);
      }
      expect((await get(proxy, fileTarget(alphaWindows))).status).toBe(404);
      // The sandbox asking twice, or for an unlocked name, changes nothing upstream.
      expect((await get(proxy, fileTarget(alphaWheel))).status).toBe(200);
      expect((await get(proxy, '/simple/beta/')).status).toBe(200);
      expect((await get(proxy, '/simple/gamma/')).status).toBe(404);
      expect(upstream.hits.length).toBe(before);
      expect(proxy.findings.map((f) => f.rule)).toEqual(['integrity.unlocked-request', 'integrity.unlocked-request']);
    } finally {
      await proxy.close();
      await upstream.close();
    }
  });

  it('a second run with the same cache reads the pages again and downloads nothing', async () => {
    const dists = [alphaWheel, betaWheel];
    const upstream = await serve(dists);
    const cacheDir = path.join(tmp, `cache-${++runs}`);
    try {
      const first = await proxyOver(lock(dists), `${upstream.origin}/simple/`, cacheDir);
      await first.prefetch(never).finally(() => first.close());
      upstream.hits.length = 0;
      const second = await proxyOver(lock(dists), `${upstream.origin}/simple/`, cacheDir);
      const summary = await second.prefetch(never).finally(() => second.close());
      expect(summary).toMatchObject({ files: 2, downloaded: 0 });
      expect([...upstream.hits].sort()).toEqual(['/simple/alpha/', '/simple/beta/']);
    } finally {
      await upstream.close();
    }
  });

  it('a locked file whose bytes do not verify: a critical finding, left off the page, refused later without asking upstream', async () => {
    const dists = [alphaWheel, alphaSdist];
    const upstream = await serve(dists, { body: (d) => (d === alphaSdist ? randomBytes(3000) : d.bytes) });
    const proxy = await proxyOver(lock(dists), `${upstream.origin}/simple/`);
    try {
      const summary = await proxy.prefetch(never);
      expect(summary).toMatchObject({ files: 1, skipped: 1 });
      expect(proxy.findings).toEqual([expect.objectContaining({ rule: 'integrity.hash-mismatch', severity: 'critical', package: 'alpha' })]);
      const before = upstream.hits.length;
      const page = await get(proxy, '/simple/alpha/');
      expect(page.body.toString()).toContain(alphaWheel.filename);
      expect(page.body.toString()).not.toContain(alphaSdist.filename);
      expect((await get(proxy, fileTarget(alphaSdist))).status).toBe(404);
      expect(upstream.hits.length).toBe(before);
    } finally {
      await proxy.close();
      await upstream.close();
    }
  });

  it('a locked file answering HTTP 500: an EnvironmentError naming the upstream (no credentials), the project and the file', async () => {
    const dists = [alphaWheel, betaWheel];
    const upstream = await serve(dists, { body: (d) => (d === betaWheel ? null : d.bytes) });
    const proxy = await proxyOver(lock(dists), `${upstream.origin.replace('://', '://user:secret@')}/simple/`);
    try {
      const error = await proxy.prefetch(never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EnvironmentError);
      expect(error).toMatchObject({
        code: 'upstream.download-failed',
        message: `cannot prefetch ${betaWheel.filename} of beta from ${upstream.origin}/simple/: ${upstream.origin}/files/${betaWheel.filename}: HTTP 500 (2 attempts)`,
      });
      expect(JSON.stringify(error) + (error as Error).message).not.toContain('secret');
      expect(proxy.findings).toEqual([expect.objectContaining({ rule: 'install.upstream-failed', package: 'beta' })]);
    } finally {
      await proxy.close();
      await upstream.close();
    }
  });

  it('an index that is down: an EnvironmentError naming it and the project', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const proxy = await proxyOver(lock([alphaWheel]), `http://user:secret@127.0.0.1:${port}/simple/`);
    try {
      const error = await proxy.prefetch(never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EnvironmentError);
      expect(error).toMatchObject({ code: 'upstream.unreachable' });
      expect((error as Error).message).toBe(
        `cannot prefetch the page of alpha: no upstream answered (http://127.0.0.1:${port}/simple/: http://127.0.0.1:${port}/simple/alpha/: connection refused (2 attempts))`,
      );
    } finally {
      await proxy.close();
    }
  });

  it('downloads at most 4 files at once', async () => {
    const many = Array.from({ length: 12 }, (_, i) => dist('many', `many-1.0-py3-none-any.whl`.replace('1.0-', `1.0-${i + 1}-`)));
    const upstream = await serve(many, { delayMs: 60 });
    const proxy = await proxyOver(lock(many), `${upstream.origin}/simple/`);
    try {
      const summary = await proxy.prefetch(never);
      expect(summary).toMatchObject({ files: 12, downloaded: 12 });
      expect(upstream.maxInFlight).toBe(4);
    } finally {
      await proxy.close();
      await upstream.close();
    }
  });

  it('stops at once with the signal reason when interrupted', async () => {
    const upstream = await serve([alphaWheel], { delayMs: 2_000 });
    const proxy = await proxyOver(lock([alphaWheel]), `${upstream.origin}/simple/`);
    const stop = new AbortController();
    try {
      const started = performance.now();
      setTimeout(() => stop.abort(new Error('SIGINT')), 100);
      await expect(proxy.prefetch(stop.signal)).rejects.toThrow('SIGINT');
      expect(performance.now() - started).toBeLessThan(1_000);
    } finally {
      await proxy.close();
      await upstream.close();
    }
  });
});

describe('prefetch: build requirements are fixed before the sandbox starts', () => {
  const setuptools69 = dist('setuptools', 'setuptools-69.0.0-py3-none-any.whl');
  const setuptools70 = dist('setuptools', 'setuptools-70.0.0-py3-none-any.whl');
  const setuptools70Sdist = dist('setuptools', 'setuptools-70.0.0.tar.gz');
  const setuptools71rc = dist('setuptools', 'setuptools-71.0.0rc1-py3-none-any.whl');
  const setuptools72 = dist('setuptools', 'setuptools-72.0.0-py3-none-any.whl', '>=3.12');
  const all = [alphaWheel, setuptools69, setuptools70, setuptools70Sdist, setuptools71rc, setuptools72];

  it('a pinned one: only its pinned file is fetched and listed; another version is refused without asking upstream, and no finding marks the pinned one', async () => {
    const upstream = await serve(all);
    const pins = [{ name: 'setuptools', version: '69.0.0', sha256: [setuptools69.sha] }];
    const proxy = await proxyOver(lock([alphaWheel]), `${upstream.origin}/simple/`, undefined, { buildPins: pins, buildAllow: ['setuptools'] });
    try {
      await proxy.prefetch(never);
      expect([...upstream.hits].sort()).toEqual(
        ['/simple/alpha/', '/simple/setuptools/', `/files/${alphaWheel.filename}`, `/files/${setuptools69.filename}`].sort(),
      );
      const before = upstream.hits.length;
      const page = (await get(proxy, '/simple/setuptools/')).body.toString();
      expect(page).toContain(setuptools69.filename);
      for (const other of [setuptools70, setuptools70Sdist, setuptools72]) expect(page).not.toContain(other.filename);
      const pinned = await get(proxy, fileTarget(setuptools69));
      expect(pinned.status).toBe(200);
      expect(pinned.body.equals(setuptools69.bytes)).toBe(true);
      // A build hook asking for the version of its choice: refused, and the upstream never hears of it.
      expect((await get(proxy, fileTarget(setuptools70))).status).toBe(404);
      expect(upstream.hits.length).toBe(before);
      await proxy.close();
      expect(proxy.served).toEqual([expect.objectContaining({ project: 'setuptools', filename: setuptools69.filename, locked: false })]);
      expect(proxy.findings).toEqual([
        expect.objectContaining({ rule: 'integrity.unlocked-request', evidence: expect.objectContaining({ path: fileTarget(setuptools70) }) }),
      ]);
    } finally {
      await proxy.close();
      await upstream.close();
    }
  });

  it('an unpinned one (the opt-in): the newest final release this Python can use is chosen from the page, fetched, and alone served, and marked', async () => {
    const upstream = await serve(all);
    const proxy = await proxyOver(lock([alphaWheel]), `${upstream.origin}/simple/`, undefined, { buildAllow: ['Setuptools'] });
    try {
      await proxy.prefetch(never);
      // 72.0.0 wants Python 3.12, 71.0.0rc1 is a pre-release; of 70.0.0 the wheel, not the sdist.
      expect([...upstream.hits].sort()).toEqual(
        ['/simple/alpha/', '/simple/setuptools/', `/files/${alphaWheel.filename}`, `/files/${setuptools70.filename}`].sort(),
      );
      const before = upstream.hits.length;
      const page = (await get(proxy, '/simple/setuptools/')).body.toString();
      expect(page).toContain(setuptools70.filename);
      for (const other of [setuptools69, setuptools70Sdist, setuptools71rc, setuptools72]) expect(page).not.toContain(other.filename);
      expect((await get(proxy, fileTarget(setuptools70))).status).toBe(200);
      expect((await get(proxy, fileTarget(setuptools69))).status).toBe(404);
      expect(upstream.hits.length).toBe(before);
      await proxy.close();
      // In rule order: a file counts as served once its response has closed, which may come after the next request.
      const byRule = [...proxy.findings].sort((a, b) => a.rule.localeCompare(b.rule));
      expect(byRule.map((f) => [f.rule, f.severity, f.package, f.evidence])).toEqual([
        [
          'integrity.build-requirement',
          'info',
          'setuptools',
          { project: 'setuptools', filename: setuptools70.filename, sha256: setuptools70.sha, pinned: false },
        ],
        ['integrity.unlocked-request', 'high', null, expect.objectContaining({ path: fileTarget(setuptools69), project: 'setuptools' })],
      ]);
    } finally {
      await proxy.close();
      await upstream.close();
    }
  });

  it('none allowed (a run that builds nothing): a request for a build requirement is refused, and nothing of it is fetched', async () => {
    const upstream = await serve(all);
    const proxy = await proxyOver(lock([alphaWheel]), `${upstream.origin}/simple/`);
    try {
      await proxy.prefetch(never);
      expect((await get(proxy, '/simple/setuptools/')).status).toBe(404);
      expect(upstream.hits.filter((hit) => hit.includes('setuptools'))).toEqual([]);
    } finally {
      await proxy.close();
      await upstream.close();
    }
  });
});
