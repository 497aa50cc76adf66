import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noPipOptions } from '../lock/pip-options.js';
import type { LockPlan } from '../lock/types.js';
import { fileUpstreamRoot, isWithin } from './file-source.js';
import { startProxy, type IndexProxy } from './server.js';
import { UpstreamClient } from './upstream-client.js';

// A file:// mirror laid out like this machine's /opt/pypi (`simple/<project>/index.html` linking
// `../../files/<name>`), reached through a symlink as mirrors often are, with hostile entries:
//
//   tmp/mirror -> tmp/real-mirror                          the index URL is file://tmp/mirror/simple
//   real-mirror/simple/requests/index.html                 ../../files/requests-2.34.2-py3-none-any.whl
//   real-mirror/simple/linked/index.html -> ../../pages/linked.html   a page linked inside the mirror
//   real-mirror/simple/linked/linked-1.0.tar.gz -> ../../files/linked-1.0.tar.gz   (pip2pi links files)
//   real-mirror/simple/fifo-page/index.html                a FIFO
//   real-mirror/simple/fifo-file/index.html                ../../files/fifo-1.0.tar.gz, a FIFO
//   real-mirror/simple/traversal/index.html                ../../../outside/evil-1.0.tar.gz (a wrong guess of its sha256)
//   real-mirror/simple/absolute/index.html                 file://tmp/outside/evil-1.0.tar.gz
//   real-mirror/simple/escaping/index.html                 ../../files/escaping-1.0.tar.gz -> tmp/outside/evil-1.0.tar.gz
//   real-mirror/simple/page-escape/index.html -> tmp/outside/page.html
//   outside/evil-1.0.tar.gz                                a host file no page may reach ("secret")

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const page = (...hrefs: string[]): string =>
  `<!DOCTYPE html><html><body>\n${hrefs.map((h) => `<a href="${h}">${decodeURIComponent(h.split('#')[0]!.split('/').pop()!)}</a>\n`).join('')}</body></html>`;

const wheel = randomBytes(70_000);
const linked = randomBytes(3_000);
const secret = Buffer.from('host-secret-42\n');
/** What a hostile page guesses the secret's digest is; the report must not say it is wrong, or what is right. */
const wrongGuess = sha256('host-secret-41\n');

let tmp: string;
let mirror: string;
let outside: string;
let indexUrl: string;
const fifos: string[] = [];

beforeAll(async () => {
  tmp = await realpath(await mkdtemp(path.join(os.tmpdir(), 'file-source-test-')));
  const real = path.join(tmp, 'real-mirror');
  mirror = path.join(tmp, 'mirror');
  outside = path.join(tmp, 'outside');
  const dirs = ['requests', 'linked', 'fifo-page', 'fifo-file', 'traversal', 'absolute', 'escaping', 'page-escape'];
  for (const d of dirs) await mkdir(path.join(real, 'simple', d), { recursive: true });
  await mkdir(path.join(real, 'files'));
  await mkdir(path.join(real, 'pages'));
  await mkdir(outside);
  await symlink(real, mirror);
  indexUrl = pathToFileURL(path.join(mirror, 'simple')).href;

  await writeFile(path.join(real, 'files', 'requests-2.34.2-py3-none-any.whl'), wheel);
  await writeFile(path.join(real, 'simple', 'requests', 'index.html'), page(`../../files/requests-2.34.2-py3-none-any.whl#sha256=${sha256(wheel)}`));

  await writeFile(path.join(real, 'files', 'linked-1.0.tar.gz'), linked);
  await writeFile(path.join(real, 'pages', 'linked.html'), page(`linked-1.0.tar.gz#sha256=${sha256(linked)}`));
  await symlink('../../pages/linked.html', path.join(real, 'simple', 'linked', 'index.html'));
  await symlink('../../files/linked-1.0.tar.gz', path.join(real, 'simple', 'linked', 'linked-1.0.tar.gz'));

  fifos.push(path.join(real, 'simple', 'fifo-page', 'index.html'), path.join(real, 'files', 'fifo-1.0.tar.gz'));
  for (const fifo of fifos) execFileSync('mkfifo', [fifo]);
  await writeFile(path.join(real, 'simple', 'fifo-file', 'index.html'), page(`../../files/fifo-1.0.tar.gz#sha256=${sha256('x')}`));

  await writeFile(path.join(outside, 'evil-1.0.tar.gz'), secret);
  await writeFile(path.join(outside, 'page.html'), page(`evil-1.0.tar.gz#sha256=${sha256(secret)}`));
  await writeFile(path.join(real, 'simple', 'traversal', 'index.html'), page(`../../../outside/evil-1.0.tar.gz#sha256=${wrongGuess}`));
  await writeFile(
    path.join(real, 'simple', 'absolute', 'index.html'),
    page(`${pathToFileURL(path.join(outside, 'evil-1.0.tar.gz')).href}#sha256=${sha256(secret)}`),
  );
  await symlink(path.join(outside, 'evil-1.0.tar.gz'), path.join(real, 'files', 'escaping-1.0.tar.gz'));
  await writeFile(path.join(real, 'simple', 'escaping', 'index.html'), page(`../../files/escaping-1.0.tar.gz#sha256=${sha256(secret)}`));
  await symlink(path.join(outside, 'page.html'), path.join(real, 'simple', 'page-escape', 'index.html'));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const client = (): UpstreamClient => new UpstreamClient({ timeoutMs: 5_000, maxPageBytes: 1024 * 1024, userAgent: 'test' });
const never = new AbortController().signal;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Code that opens a FIFO without O_NONBLOCK sits in open(2) on a libuv thread until a writer
 * comes. Be that writer after `ms`, so such code fails its test instead of hanging the run.
 */
function releaseFifoReadersAfter(ms: number): { cancel(): void } {
  const timer = setTimeout(() => {
    for (const fifo of fifos) {
      void open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).then(
        (h) => h.close(),
        () => undefined, // ENXIO: no reader is waiting
      );
    }
  }, ms);
  return { cancel: () => clearTimeout(timer) };
}

async function linkOf(c: UpstreamClient, project: string): Promise<{ url: string; sha256: string | null }> {
  const listed = await c.fetchProject(indexUrl, project, never);
  expect(listed?.links).toHaveLength(1);
  return listed!.links[0]!;
}

const fileUrl = (...parts: string[]): string => pathToFileURL(path.join(...parts)).href;

describe('fileUpstreamRoot', () => {
  it('is the parent of an index directory named simple, else the index directory itself', () => {
    expect(fileUpstreamRoot('/opt/pypi/simple')).toBe('/opt/pypi');
    expect(fileUpstreamRoot('/opt/pypi/simple/')).toBe('/opt/pypi');
    expect(fileUpstreamRoot('/srv/web/simple')).toBe('/srv/web');
    expect(fileUpstreamRoot('/srv/index')).toBe('/srv/index');
    expect(fileUpstreamRoot('/srv/simple-mirror')).toBe('/srv/simple-mirror');
    // Never widened to the whole file system.
    expect(fileUpstreamRoot('/simple')).toBe('/simple');
  });

  it('isWithin compares whole path segments', () => {
    expect(isWithin('/opt/pypi/files/a.whl', '/opt/pypi')).toBe(true);
    expect(isWithin('/opt/pypi', '/opt/pypi')).toBe(true);
    expect(isWithin('/opt/pypi-more/files/a.whl', '/opt/pypi')).toBe(false);
    expect(isWithin('/opt/pypi/../etc/hostname', '/opt/pypi')).toBe(false);
    expect(isWithin('/opt/pypi/..data/a.whl', '/opt/pypi')).toBe(true);
    expect(isWithin('/etc/hostname', '/')).toBe(true);
  });
});

describe('file:// upstream reads', () => {
  it("lists and streams a file from a mirror laid out like this machine's (simple/<project>/index.html -> ../../files/<name>), through a symlinked mirror directory", async () => {
    const c = client();
    const link = await linkOf(c, 'requests');
    expect(link).toMatchObject({ url: fileUrl(mirror, 'files', 'requests-2.34.2-py3-none-any.whl'), sha256: sha256(wheel) });
    const { stream, size } = await c.openFile(link.url, never);
    expect(size).toBe(wheel.length);
    expect((await readAll(stream)).equals(wheel)).toBe(true);
  });

  it('follows symlinks that stay inside the mirror, for a page and for a file', async () => {
    const c = client();
    const link = await linkOf(c, 'linked');
    expect(link).toMatchObject({ url: fileUrl(mirror, 'simple', 'linked', 'linked-1.0.tar.gz'), sha256: sha256(linked) });
    const { stream } = await c.openFile(link.url, never);
    expect((await readAll(stream)).equals(linked)).toBe(true);
  });

  it('refuses a FIFO linked as a file at once, instead of blocking a thread-pool read forever', async () => {
    const c = client();
    const link = await linkOf(c, 'fifo-file');
    const release = releaseFifoReadersAfter(2_000);
    try {
      const started = performance.now();
      await expect(c.openFile(link.url, never)).rejects.toThrow(`${fileUrl(mirror, 'files', 'fifo-1.0.tar.gz')} is not a regular file (a FIFO); not read`);
      expect(performance.now() - started).toBeLessThan(1_000);
    } finally {
      release.cancel();
    }
  });

  it('refuses a FIFO as a page index.html, naming its URL', async () => {
    const release = releaseFifoReadersAfter(2_000);
    try {
      await expect(client().fetchProject(indexUrl, 'fifo-page', never)).rejects.toThrow(
        `${fileUrl(mirror, 'simple', 'fifo-page', 'index.html')} is not a regular file (a FIFO); not read`,
      );
    } finally {
      release.cancel();
    }
  });

  it('refuses a link out of the mirror by ../ or by an absolute file: URL, touching nothing outside', async () => {
    const c = client();
    const evil = fileUrl(outside, 'evil-1.0.tar.gz');
    for (const project of ['traversal', 'absolute']) {
      const link = await linkOf(c, project);
      expect(link.url).toBe(evil);
      await expect(c.openFile(link.url, never)).rejects.toThrow(`${evil} is outside the mirror ${mirror}; not read`);
    }
  });

  it('refuses a symlink in the mirror that resolves outside it, for a file and for a page', async () => {
    const c = client();
    const link = await linkOf(c, 'escaping');
    await expect(c.openFile(link.url, never)).rejects.toThrow(
      `${fileUrl(mirror, 'files', 'escaping-1.0.tar.gz')} resolves outside the mirror ${mirror}; not read`,
    );
    await expect(c.fetchProject(indexUrl, 'page-escape', never)).rejects.toThrow(
      `${fileUrl(mirror, 'simple', 'page-escape', 'index.html')} resolves outside the mirror ${mirror}; not read`,
    );
  });

  it('refuses a file: URL that no file:// index page listed', async () => {
    const url = fileUrl(mirror, 'files', 'requests-2.34.2-py3-none-any.whl');
    await expect(client().openFile(url, never)).rejects.toThrow(`${url} was not listed by a file:// index page; not read`);
  });

  it('answers null for a project the mirror does not have, and for a mirror that does not exist', async () => {
    expect(await client().fetchProject(indexUrl, 'absent', never)).toBeNull();
    expect(await client().fetchProject(fileUrl(tmp, 'no-mirror', 'simple'), 'requests', never)).toBeNull();
  });

  it.runIf(existsSync('/opt/pypi/simple/requests/index.html'))("reads this machine's mirror: requests from file:///opt/pypi/simple", async () => {
    const c = client();
    const listed = await c.fetchProject('file:///opt/pypi/simple', 'requests', never);
    const link = listed?.links.find((l) => l.filename.endsWith('.whl'));
    expect(link?.url).toMatch(/^file:\/\/\/opt\/pypi\/files\/requests-.*\.whl$/);
    const { stream } = await c.openFile(link!.url, never);
    expect(sha256(await readAll(stream))).toBe(link!.sha256);
  });
});

// ---------------------------------------------------------------------------------------------
// The proxy over that mirror: what reaches pip, the report (findings, served) and the cache.

function lockOf(...reqs: Array<[name: string, version: string, sha256: string]>): LockPlan {
  return {
    file: 'requirements.lock',
    indexUrl: null,
    extraIndexUrls: [],
    pipOptions: noPipOptions(),
    requirements: reqs.map(([name, version, sha]) => ({ name, rawName: name, version, extras: [], marker: null, sha256: [sha], line: 1 })),
  };
}

const logLines: string[] = [];
const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
let runs = 0;

async function proxyOver(plan: LockPlan, unlocked = false): Promise<{ proxy: IndexProxy; cacheDir: string }> {
  const cacheDir = path.join(tmp, `cache-${++runs}`);
  const proxy = await startProxy({
    plan,
    upstreams: { indexUrl, extraIndexUrls: [] },
    cacheDir,
    listen: { host: '127.0.0.1', port: 0 },
    buildAllow: [],
    logger,
    upstreamTimeoutMs: 5_000,
    unlocked,
  });
  return { proxy, cacheDir };
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

async function expectNothingCached(cacheDir: string): Promise<void> {
  expect(await readdir(path.join(cacheDir, 'sha256'))).toEqual([]);
  expect(await readdir(path.join(cacheDir, 'tmp'))).toEqual([]);
}

describe('index proxy over a hostile file:// mirror', () => {
  it("serves a locked wheel from a mirror laid out like this machine's, and records it", async () => {
    const sha = sha256(wheel);
    const { proxy, cacheDir } = await proxyOver(lockOf(['requests', '2.34.2', sha]));
    try {
      const page = await get(proxy, '/simple/requests/');
      expect(page.body.toString()).toContain(`href="../../files/${sha}/requests-2.34.2-py3-none-any.whl#sha256=${sha}"`);
      const res = await get(proxy, `/files/${sha}/requests-2.34.2-py3-none-any.whl`);
      expect(res.status).toBe(200);
      expect(res.body.equals(wheel)).toBe(true);
    } finally {
      await proxy.close();
    }
    expect(proxy.findings).toEqual([]);
    expect(proxy.served).toEqual([
      {
        project: 'requests',
        filename: 'requests-2.34.2-py3-none-any.whl',
        sha256: sha,
        size: wheel.length,
        locked: true,
        cachePath: path.join(cacheDir, 'sha256', sha),
      },
    ]);
  });

  it('never serves a host file a lock hash guessed right, through a symlink out of the mirror; records the refusal', async () => {
    const sha = sha256(secret);
    const url = fileUrl(mirror, 'files', 'escaping-1.0.tar.gz');
    const { proxy, cacheDir } = await proxyOver(lockOf(['escaping', '1.0', sha]));
    try {
      await get(proxy, '/simple/escaping/');
      const res = await get(proxy, `/files/${sha}/escaping-1.0.tar.gz`);
      expect(res.status).toBe(502);
      expect(res.body.includes(secret)).toBe(false);
    } finally {
      await proxy.close();
    }
    const reason = `${url} resolves outside the mirror ${mirror}; not read`;
    expect(proxy.findings).toEqual([
      {
        rule: 'integrity.upstream-refused',
        severity: 'high',
        package: 'escaping',
        message: `escaping-1.0.tar.gz from upstream was refused unread: ${reason}`,
        evidence: { project: 'escaping', filename: 'escaping-1.0.tar.gz', expectedSha256: sha, url, refused: reason },
      },
    ]);
    expect(proxy.served).toEqual([]);
    await expectNothingCached(cacheDir);
  });

  it('puts no digest of a host file a page links by ../ into the report or the logs (investigate), and caches nothing', async () => {
    const linesBefore = logLines.length;
    const evil = fileUrl(outside, 'evil-1.0.tar.gz');
    const { proxy, cacheDir } = await proxyOver(lockOf(), true);
    try {
      expect((await get(proxy, '/simple/traversal/')).status).toBe(200);
      expect((await get(proxy, `/files/${wrongGuess}/evil-1.0.tar.gz`)).status).toBe(502);
    } finally {
      await proxy.close();
    }
    const reason = `${evil} is outside the mirror ${mirror}; not read`;
    expect(proxy.findings).toEqual([
      expect.objectContaining({ rule: 'integrity.upstream-refused', package: 'traversal', evidence: expect.objectContaining({ refused: reason }) }),
    ]);
    expect(proxy.findings[0]?.evidence).not.toHaveProperty('actualSha256');
    const everything = JSON.stringify(proxy.findings) + logLines.slice(linesBefore).join('');
    expect(everything).not.toContain(sha256(secret));
    expect(everything).not.toContain('host-secret');
    expect(proxy.served).toEqual([]);
    await expectNothingCached(cacheDir);
  });

  it('answers a FIFO linked as a file with 502 at once, records it, and closes without waiting on it', async () => {
    const sha = sha256('x');
    const url = fileUrl(mirror, 'files', 'fifo-1.0.tar.gz');
    const { proxy, cacheDir } = await proxyOver(lockOf(['fifo-file', '1.0', sha]));
    const release = releaseFifoReadersAfter(2_000);
    try {
      const started = performance.now();
      await get(proxy, '/simple/fifo-file/');
      expect((await get(proxy, `/files/${sha}/fifo-1.0.tar.gz`)).status).toBe(502);
      await proxy.close();
      expect(performance.now() - started).toBeLessThan(1_000);
    } finally {
      release.cancel();
      await proxy.close();
    }
    expect(proxy.findings).toEqual([
      expect.objectContaining({
        rule: 'integrity.upstream-refused',
        package: 'fifo-file',
        evidence: expect.objectContaining({ refused: `${url} is not a regular file (a FIFO); not read` }),
      }),
    ]);
    await expectNothingCached(cacheDir);
  });
});
