import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, open, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { execa } from 'execa';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EnvironmentError } from '../errors.js';
import { noPipOptions } from '../lock/pip-options.js';
import type { LockPlan } from '../lock/types.js';
import { ContentCache, FREE_SPACE_MARGIN_BYTES, type CachedFile } from './cache.js';
import { startProxy, type IndexProxy } from './server.js';

// Every test plants its hostile entry with real files: symlinks, FIFOs (mkfifo), foreign owners
// (chown, as root only), and checks what the cache then serves, deletes and logs.

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const MiB = 1024 ** 2;
const isRoot = process.getuid?.() === 0;

const bytes = randomBytes(100_000);
const sha = sha256(bytes);

let tmp: string;
let logLines: Array<Record<string, unknown>> = [];
const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) });

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'proxy-cache-test-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});
beforeEach(() => {
  logLines = [];
});

let dirs = 0;
const freshDir = (): string => path.join(tmp, `cache-${++dirs}`);

async function cacheAt(dir: string, freeBytes?: (dir: string) => Promise<number>): Promise<ContentCache> {
  const cache = new ContentCache(dir, freeBytes ? { logger, freeBytes } : { logger });
  await cache.init();
  return cache;
}

const ingestOpts = { maxBytes: 1e9, idleTimeoutMs: 5_000 };

async function readAll(opened: CachedFile): Promise<Buffer> {
  try {
    return await opened.handle.readFile();
  } finally {
    await opened.handle.close();
  }
}

/** What `open` gives within `ms`: the bytes, null, or 'blocked' (an open that never returns). */
async function openWithin(cache: ContentCache, digest: string, ms = 2_000): Promise<Buffer | null | 'blocked'> {
  let timer: NodeJS.Timeout | undefined;
  const blocked = new Promise<'blocked'>((resolve) => (timer = setTimeout(() => resolve('blocked'), ms)));
  try {
    const got = await Promise.race([cache.open(digest), blocked]);
    return got === 'blocked' || got === null ? got : await readAll(got);
  } finally {
    clearTimeout(timer);
  }
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    () => false,
  );
}

/** Bytes compared by digest: vitest's deep equality walks a 100 kB Buffer element by element (~0.7 s). */
const digestOf = (got: Buffer | null | 'blocked'): string | null => (Buffer.isBuffer(got) ? sha256(got) : got);

const removals = (): unknown[] => logLines.filter((l) => l.msg === 'removing a bad proxy cache entry; it is fetched again from upstream').map((l) => l.reason);

/** Unblock an open(2) stuck on a FIFO (the unfixed cache), so a failing test cannot hang the worker. */
async function releaseFifo(fifo: string): Promise<void> {
  await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).then(
    (h) => h.close(),
    () => {},
  );
}

describe('content cache entries', () => {
  it('serves an entry an earlier run wrote, after hashing it again', async () => {
    const dir = freshDir();
    expect(await (await cacheAt(dir)).ingest(sha, Readable.from([bytes]), ingestOpts)).toEqual({ ok: true, size: bytes.length });
    const entry = await stat(path.join(dir, 'sha256', sha));
    expect(entry.mode & 0o777).toBe(0o444);
    expect(digestOf(await openWithin(await cacheAt(dir), sha))).toBe(sha);
    expect(removals()).toEqual([]);
  });

  it('never follows a symlink at an entry, even to a file with the right bytes: removes the link, keeps the target', async () => {
    const dir = freshDir();
    const cache = await cacheAt(dir);
    const hostFile = path.join(tmp, `host-${dirs}`);
    await writeFile(hostFile, bytes);
    const entry = path.join(dir, 'sha256', sha);
    await symlink(hostFile, entry);
    expect(await openWithin(cache, sha)).toBeNull();
    expect(await exists(entry)).toBe(false);
    expect(digestOf(await readFile(hostFile))).toBe(sha);
    expect(removals()).toEqual(['a symbolic link']);
  });

  it('does not serve a planted regular file whose bytes do not hash to its name', async () => {
    const dir = freshDir();
    const cache = await cacheAt(dir);
    const entry = path.join(dir, 'sha256', sha);
    await writeFile(entry, 'host secret\n', { mode: 0o444 });
    expect(await openWithin(cache, sha)).toBeNull();
    expect(await exists(entry)).toBe(false);
    expect(removals()).toEqual(['its bytes do not hash to its name']);
  });

  it('does not block on a FIFO at an entry: removes it', async () => {
    const dir = freshDir();
    const cache = await cacheAt(dir);
    const entry = path.join(dir, 'sha256', sha);
    await execa('mkfifo', ['-m', '0444', entry]);
    try {
      expect(await openWithin(cache, sha)).toBeNull();
      expect(await exists(entry)).toBe(false);
      expect(removals()).toEqual(['a FIFO']);
    } finally {
      await releaseFifo(entry);
    }
  });

  it('removes a directory planted at an entry, with what is in it', async () => {
    const dir = freshDir();
    const cache = await cacheAt(dir);
    const entry = path.join(dir, 'sha256', sha);
    await mkdir(entry);
    await writeFile(path.join(entry, 'x'), 'x');
    expect(await openWithin(cache, sha)).toBeNull();
    expect(await exists(entry)).toBe(false);
    expect(removals()).toEqual(['a directory']);
  });

  it('does not serve an entry with the right bytes that other users can write', async () => {
    const dir = freshDir();
    const cache = await cacheAt(dir);
    const entry = path.join(dir, 'sha256', sha);
    await writeFile(entry, bytes);
    await chmod(entry, 0o666);
    expect(await openWithin(cache, sha)).toBeNull();
    expect(await exists(entry)).toBe(false);
    expect(removals()).toEqual(['writable by other users (mode 666)']);
  });

  it.skipIf(!isRoot)('does not serve an entry with the right bytes that another uid owns (needs root to chown)', async () => {
    const dir = freshDir();
    const cache = await cacheAt(dir);
    const entry = path.join(dir, 'sha256', sha);
    await writeFile(entry, bytes, { mode: 0o444 });
    await chown(entry, 65534, 65534);
    expect(await openWithin(cache, sha)).toBeNull();
    expect(await exists(entry)).toBe(false);
    expect(removals()).toEqual(['owned by uid 65534']);
  });

  it('hashes an entry again when it changed in place after it was verified', async () => {
    const dir = freshDir();
    const cache = await cacheAt(dir);
    await cache.ingest(sha, Readable.from([bytes]), ingestOpts);
    expect(digestOf(await openWithin(cache, sha))).toBe(sha);
    const entry = path.join(dir, 'sha256', sha);
    await chmod(entry, 0o644);
    await writeFile(entry, randomBytes(bytes.length));
    await chmod(entry, 0o444);
    expect(await openWithin(cache, sha)).toBeNull();
    expect(removals()).toEqual(['its bytes do not hash to its name']);
  });

  it('replaces a bad entry on the next ingest and serves the new one', async () => {
    const dir = freshDir();
    const cache = await cacheAt(dir);
    const entry = path.join(dir, 'sha256', sha);
    await writeFile(entry, 'planted', { mode: 0o444 });
    expect(await cache.ingest(sha, Readable.from([bytes]), ingestOpts)).toEqual({ ok: true, size: bytes.length });
    expect(removals()).toEqual(['its bytes do not hash to its name']);
    expect(digestOf(await openWithin(cache, sha))).toBe(sha);
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
  });
});

describe('content cache directories', () => {
  const modes = async (dir: string): Promise<number[]> =>
    Promise.all([dir, path.join(dir, 'sha256'), path.join(dir, 'tmp')].map(async (d) => (await stat(d)).mode & 0o7777));

  it('creates the cache, sha256/ and tmp/ as 0700', async () => {
    const dir = freshDir();
    await cacheAt(dir);
    expect(await modes(dir)).toEqual([0o700, 0o700, 0o700]);
    expect(logLines.filter((l) => l.level === 40)).toEqual([]);
  });

  it('makes directories other users can write 0700 and logs each repair; leaves a 0755 one', async () => {
    const dir = freshDir();
    for (const [d, mode] of [
      [dir, 0o777],
      [path.join(dir, 'sha256'), 0o755],
      [path.join(dir, 'tmp'), 0o757],
    ] as const) {
      await mkdir(d);
      await chmod(d, mode);
    }
    await cacheAt(dir);
    expect(await modes(dir)).toEqual([0o700, 0o755, 0o700]);
    expect(logLines.filter((l) => l.msg === 'the proxy cache directory was writable by other users; made it 0700').map((l) => [l.dir, l.mode])).toEqual([
      [dir, '777'],
      [path.join(dir, 'tmp'), '757'],
    ]);
  });

  it.skipIf(!isRoot)('refuses a cache directory or sha256/ that another uid owns (needs root to chown)', async () => {
    const dir = freshDir();
    await mkdir(dir, { mode: 0o700 });
    await chown(dir, 65534, 65534);
    const error = await new ContentCache(dir, { logger }).init().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(error).toMatchObject({
      code: 'proxy-cache-owner',
      message: `the proxy cache directory ${dir} belongs to uid 65534, not to this user (uid 0)`,
      hint: 'its owner could plant files in it: point --cache-dir at a directory of your own',
    });

    const other = freshDir();
    await mkdir(path.join(other, 'sha256'), { recursive: true, mode: 0o700 });
    await chown(path.join(other, 'sha256'), 65534, 65534);
    await expect(new ContentCache(other, { logger }).init()).rejects.toMatchObject({
      code: 'proxy-cache-owner',
      message: `the proxy cache directory ${path.join(other, 'sha256')} belongs to uid 65534, not to this user (uid 0)`,
    });
  });

  it('refuses a sha256/ that is a symlink', async () => {
    const dir = freshDir();
    const elsewhere = path.join(tmp, `elsewhere-${dirs}`);
    await mkdir(elsewhere, { mode: 0o700 });
    await mkdir(dir, { mode: 0o700 });
    await symlink(elsewhere, path.join(dir, 'sha256'));
    const error = await new ContentCache(dir, { logger }).init().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(error).toMatchObject({
      code: 'proxy-cache',
      message: `the proxy cache path ${path.join(dir, 'sha256')} is a symbolic link`,
      hint: `remove ${path.join(dir, 'sha256')}; the cache is filled again from upstream`,
    });
  });
});

describe('content cache writes', () => {
  it('two runs ingesting the same file at once: the first writer wins, the second keeps its entry', async () => {
    const dir = freshDir();
    const [first, second] = [await cacheAt(dir), await cacheAt(dir)];
    const [a, b] = [new PassThrough(), new PassThrough()];
    const ingestA = first.ingest(sha, a, ingestOpts);
    const ingestB = second.ingest(sha, b, ingestOpts);
    a.write(bytes.subarray(0, 50_000));
    b.write(bytes.subarray(0, 50_000));
    a.end(bytes.subarray(50_000));
    expect(await ingestA).toEqual({ ok: true, size: bytes.length });
    const entry = path.join(dir, 'sha256', sha);
    const placed = await stat(entry);
    b.end(bytes.subarray(50_000));
    expect(await ingestB).toEqual({ ok: true, size: bytes.length });
    const after = await stat(entry);
    expect([after.ino, after.nlink, after.mode & 0o777]).toEqual([placed.ino, 1, 0o444]);
    expect(digestOf(await readFile(entry))).toBe(sha);
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
    expect(digestOf(await openWithin(second, sha))).toBe(sha);
    expect(removals()).toEqual([]);
  });

  it('keeps nothing of a download that fails half way or does not match', async () => {
    const dir = freshDir();
    const cache = await cacheAt(dir);
    const broken = new PassThrough();
    const ingest = cache.ingest(sha, broken, ingestOpts);
    broken.write(bytes.subarray(0, 1000));
    broken.destroy(new Error('connection reset'));
    await expect(ingest).rejects.toThrow('connection reset');
    expect(await cache.ingest(sha, Readable.from([randomBytes(10)]), ingestOpts)).toMatchObject({ ok: false, size: 10 });
    expect(await readdir(path.join(dir, 'sha256'))).toEqual([]);
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
  });
});

describe('content cache free space', () => {
  const GiB = 1024 * MiB;

  it('refuses a download that would leave less than the margin free, before reading a byte', async () => {
    expect(FREE_SPACE_MARGIN_BYTES).toBe(512 * MiB);
    const dir = freshDir();
    const cache = await cacheAt(dir, async () => GiB);
    const source = Readable.from([bytes]);
    const error = await cache.ingest(sha, source, { ...ingestOpts, declaredBytes: 600 * MiB }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(error).toMatchObject({
      code: 'proxy-cache-full',
      message: `not enough free space for the proxy cache in ${dir}: 1024 MiB free, downloading a 600 MiB file needs 1112 MiB (512 MiB is kept free)`,
      hint: 'free space on that disk, or point --cache-dir at a disk with room',
    });
    expect(source.destroyed).toBe(true);
    expect(await readdir(path.join(dir, 'tmp'))).toEqual([]);
    // Room for 512 MiB and the margin: accepted.
    expect(await cache.ingest(sha, Readable.from([bytes]), { ...ingestOpts, declaredBytes: 512 * MiB })).toEqual({ ok: true, size: bytes.length });
  });

  it('refuses an undeclared size when less than the margin is free, and counts downloads under way', async () => {
    const dir = freshDir();
    const small = await cacheAt(dir, async () => 100 * MiB);
    await expect(small.ingest(sha, Readable.from([bytes]), ingestOpts)).rejects.toMatchObject({
      message: `not enough free space for the proxy cache in ${dir}: 100 MiB free, downloading a file of unknown size needs 512 MiB (512 MiB is kept free)`,
    });

    const cache = await cacheAt(freshDir(), async () => GiB);
    const slow = new PassThrough();
    const first = cache.ingest(sha, slow, { ...ingestOpts, declaredBytes: 400 * MiB });
    slow.write(bytes.subarray(0, 10));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await expect(cache.ingest(sha256('other'), Readable.from(['other']), { ...ingestOpts, declaredBytes: 400 * MiB })).rejects.toMatchObject({
      code: 'proxy-cache-full',
      message: expect.stringContaining(': 624 MiB free, downloading a 400 MiB file needs 912 MiB'),
    });
    slow.end(bytes.subarray(10));
    expect(await first).toEqual({ ok: true, size: bytes.length });
    expect(await cache.ingest(sha256('other'), Readable.from(['other']), { ...ingestOpts, declaredBytes: 400 * MiB })).toEqual({ ok: true, size: 5 });
  });

  it('asks the real file system (statfs) by default', async () => {
    const dir = freshDir();
    const cache = await cacheAt(dir);
    await expect(cache.ingest(sha, Readable.from([bytes]), { ...ingestOpts, declaredBytes: 2 ** 50 })).rejects.toMatchObject({
      code: 'proxy-cache-full',
      message: expect.stringMatching(
        new RegExp(`^not enough free space for the proxy cache in ${dir}: \\d+ MiB free, downloading a 1073741824 MiB file needs 1073742336 MiB`),
      ),
    });
    expect(await cache.ingest(sha, Readable.from([bytes]), { ...ingestOpts, declaredBytes: bytes.length })).toEqual({ ok: true, size: bytes.length });
  });
});

// ---------------------------------------------------------------------------------------------
// Through the proxy: an upstream on loopback, a cache dir with something planted in it.

const WHEEL = 'alpha-1.0-py3-none-any.whl';
const HUGE = 'huge-1.0-py3-none-any.whl';
const hugeSha = sha256('the huge wheel');

describe('index proxy over a hostile cache', () => {
  let upstream: http.Server;
  let upstreamUrl: string;
  const hits: string[] = [];
  /** The Content-Length the upstream declares for the huge wheel. */
  let hugeLength = 0;

  beforeAll(async () => {
    upstream = http.createServer((req, res) => {
      hits.push(req.url ?? '');
      if (req.url === '/simple/alpha/' || req.url === '/simple/huge/') {
        const [file, digest] = req.url === '/simple/alpha/' ? [WHEEL, sha] : [HUGE, hugeSha];
        res.writeHead(200, { 'content-type': 'text/html' }).end(`<a href="/files/${file}#sha256=${digest}">${file}</a>`);
      } else if (req.url === `/files/${WHEEL}`) {
        res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
      } else if (req.url === `/files/${HUGE}`) {
        // Declares more than it will ever send, and then waits.
        res.writeHead(200, { 'content-length': String(hugeLength) });
        res.write('x');
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/simple`;
  });
  afterAll(async () => {
    upstream.closeAllConnections();
    await new Promise((resolve) => upstream.close(resolve));
  });

  const plan: LockPlan = {
    file: 'requirements.lock',
    indexUrl: null,
    extraIndexUrls: [],
    pipOptions: noPipOptions(),
    requirements: [
      { name: 'alpha', rawName: 'alpha', version: '1.0', extras: [], marker: null, sha256: [sha], line: 1 },
      { name: 'huge', rawName: 'huge', version: '1.0', extras: [], marker: null, sha256: [hugeSha], line: 2 },
    ],
  };

  function proxyOn(cacheDir: string, maxFileBytes?: number): Promise<IndexProxy> {
    return startProxy({
      plan,
      upstreams: { indexUrl: upstreamUrl, extraIndexUrls: [] },
      cacheDir,
      listen: { host: '127.0.0.1', port: 0 },
      buildAllow: [],
      logger,
      upstreamTimeoutMs: 5_000,
      ...(maxFileBytes === undefined ? {} : { maxFileBytes }),
    });
  }

  function get(proxy: IndexProxy, target: string): Promise<{ status: number; body: Buffer } | 'blocked'> {
    return new Promise((resolve, reject) => {
      const req = http.get(`${proxy.address}${target}`, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.setTimeout(3_000, () => {
        req.destroy();
        resolve('blocked');
      });
      req.on('error', reject);
    });
  }

  it.each([
    ['a symlink to a host file', 'a symbolic link'],
    ['a regular file with other bytes', 'its bytes do not hash to its name'],
    ['a FIFO', 'a FIFO'],
  ])('serves the upstream bytes, not %s planted at the entry; logs it, records no finding', async (kind, reason) => {
    const dir = freshDir();
    await mkdir(path.join(dir, 'sha256'), { recursive: true, mode: 0o700 });
    const entry = path.join(dir, 'sha256', sha);
    const hostFile = path.join(tmp, `secret-${dirs}`);
    await writeFile(hostFile, 'host secret\n');
    if (kind === 'a FIFO') await execa('mkfifo', [entry]);
    else if (kind === 'a symlink to a host file') await symlink(hostFile, entry);
    else await writeFile(entry, 'host secret\n', { mode: 0o444 });
    hits.length = 0;
    try {
      await using proxy = await proxyOn(dir);
      const res = await get(proxy, `/files/${sha}/${WHEEL}`);
      expect(res === 'blocked' ? res : { status: res.status, sha256: sha256(res.body) }).toEqual({ status: 200, sha256: sha });
      expect(hits).toEqual(['/simple/alpha/', `/files/${WHEEL}`]);
      await proxy.close();
      expect(proxy.findings).toEqual([]);
      expect(proxy.served.map((f) => f.sha256)).toEqual([sha]);
      expect(removals()).toEqual([reason]);
      expect(digestOf(await readFile(entry))).toBe(sha);
      expect(await readFile(hostFile, 'utf8')).toBe('host secret\n');
    } finally {
      await releaseFifo(entry);
    }
  });

  it('answers 502 when the cache disk cannot hold a declared size, and keeps the EnvironmentError', async () => {
    hugeLength = 2 ** 50;
    await using proxy = await proxyOn(freshDir(), Number.MAX_SAFE_INTEGER);
    const res = await get(proxy, `/files/${hugeSha}/${HUGE}`);
    expect(res).toMatchObject({ status: 502 });
    expect(proxy.environmentError).toBeInstanceOf(EnvironmentError);
    expect(proxy.environmentError).toMatchObject({ code: 'proxy-cache-full' });
    expect(proxy.environmentError?.message).toMatch(/downloading a 1073741824 MiB file needs 1073742336 MiB \(512 MiB is kept free\)$/);
    expect(res !== 'blocked' && res.body.toString()).toBe(`download failed: ${proxy.environmentError?.message}\n`);
    expect(proxy.findings).toEqual([]);
  });

  it('refuses a file over the default 4 GiB cap from its declared size', async () => {
    hugeLength = 4 * 1024 ** 3 + 1;
    await using proxy = await proxyOn(freshDir());
    const res = await get(proxy, `/files/${hugeSha}/${HUGE}`);
    const url = `${upstreamUrl.replace(/\/simple$/, '')}/files/${HUGE}`;
    const reason = 'larger than 4294967296 bytes (4294967297 declared)';
    expect(res).toEqual({ status: 502, body: Buffer.from(`download failed: ${url}: ${reason} (1 attempt)\n`) });
    expect(proxy.environmentError).toBeNull();
    // A cap is not retried, and the locked file that could not be had names its upstream.
    expect(proxy.findings).toEqual([
      {
        rule: 'install.upstream-failed',
        severity: 'high',
        package: 'huge',
        message: `${HUGE} could not be downloaded from ${upstreamUrl}: ${reason} (1 attempt)`,
        evidence: { upstream: upstreamUrl, url, project: 'huge', filename: HUGE, reason, attempts: 1 },
      },
    ]);
  });
});
