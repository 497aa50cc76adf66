import { noPipOptions } from '../lock/pip-options.js';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LockPlan, LockedRequirement } from '../lock/types.js';
import { canaryMatcher, makeCanaries, secretPart } from '../core/canary.js';
import { startProxy, type IndexProxy, type StartProxyOptions } from './server.js';

// ---------------------------------------------------------------------------------------------
// Fixtures: two upstreams built here, so a reader sees exactly what each serves.
//
//   HTTP upstream (127.0.0.1:0), PEP 503 HTML or PEP 691 JSON:
//     alpha 1.0 (locked) and alpha 0.9 (not locked)      -> only 1.0 may appear
//     gamma 1.0: page declares the locked sha256, bytes differ -> never served
//     delta 3.0: page declares a sha256 that is not the lock's  -> page-level mismatch
//     setuptools 70.0 + 69.0, and one entry without a hash     -> build requirement
//     evil 1.0 (not locked)                                     -> must never be fetched
//   file:// upstream (temp dir, like /opt/pypi): beta 2.0 (locked), href ../../files/...

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

interface Dist {
  project: string;
  filename: string;
  bytes: Buffer;
  /** What the page declares; defaults to the real digest. */
  declared?: string | null;
  requiresPython?: string;
}

function dist(project: string, filename: string, declared?: string | null, requiresPython?: string): Dist {
  const d: Dist = { project, filename, bytes: randomBytes(50_000 + Math.floor(Math.random() * 1000)) };
  if (declared !== undefined) d.declared = declared;
  if (requiresPython !== undefined) d.requiresPython = requiresPython;
  return d;
}
const digestOf = (d: Dist): string => sha256(d.bytes);
const declaredOf = (d: Dist): string | null => (d.declared === undefined ? digestOf(d) : d.declared);

const alpha10 = dist('alpha', 'alpha-1.0-py3-none-any.whl', undefined, '>=3.8');
const alpha09 = dist('alpha', 'alpha-0.9-py3-none-any.whl');
const gammaLocked = randomBytes(1000);
const gamma10 = dist('gamma', 'gamma-1.0.tar.gz', sha256(gammaLocked));
const deltaLockSha = sha256('the delta the lock expects');
const delta30 = dist('delta', 'delta-3.0-py3-none-any.whl');
const setuptools70 = dist('setuptools', 'setuptools-70.0.0-py3-none-any.whl');
const setuptools69 = dist('setuptools', 'setuptools-69.0.0-py3-none-any.whl');
const setuptoolsNoHash = dist('setuptools', 'setuptools-68.0.0.tar.gz', null);
const evil10 = dist('evil', 'evil-1.0-py3-none-any.whl');
const beta20 = dist('beta', 'beta-2.0-py3-none-any.whl');
const httpDists = [alpha10, alpha09, gamma10, delta30, setuptools70, setuptools69, setuptoolsNoHash, evil10];

function req(name: string, version: string, hashes: string[], marker: string | null = null): LockedRequirement {
  return { name, rawName: name, version, extras: [], marker, sha256: hashes, line: 1 };
}

const plan: LockPlan = {
  file: 'requirements.lock',
  indexUrl: null,
  extraIndexUrls: [],
  pipOptions: noPipOptions(),
  requirements: [
    req('alpha', '1.0', [digestOf(alpha10)]),
    // The same name under another marker: its hash joins the set, alpha 0.9 must still be absent.
    req('alpha', '1.0', [digestOf(alpha10), sha256('a wheel nobody has')], 'python_version < "3.8"'),
    req('beta', '2.0', [digestOf(beta20)]),
    req('gamma', '1.0', [sha256(gammaLocked)]),
    req('delta', '3.0', [deltaLockSha]),
  ],
};

interface Upstream {
  url: string;
  hits: Map<string, number>;
  authorizations: string[];
  format: 'html' | 'json';
  close(): Promise<void>;
}

function hrefFor(d: Dist): string {
  const declared = declaredOf(d);
  return `/files/${d.filename}${declared ? `#sha256=${declared}` : ''}`;
}

async function startUpstream(): Promise<Upstream> {
  const hits = new Map<string, number>();
  const authorizations: string[] = [];
  const state: Upstream = { url: '', hits, authorizations, format: 'html', close: async () => {} };
  const server = http.createServer((req, res) => {
    const p = req.url ?? '';
    hits.set(p, (hits.get(p) ?? 0) + 1);
    if (req.headers.authorization) authorizations.push(req.headers.authorization);
    const page = /^\/simple\/([^/]+)\/$/.exec(p);
    if (page) {
      const files = httpDists.filter((d) => d.project === page[1]);
      if (files.length === 0) {
        res.writeHead(404).end('not found');
        return;
      }
      if (state.format === 'json' && (req.headers.accept ?? '').includes('application/vnd.pypi.simple.v1+json')) {
        res.writeHead(200, { 'content-type': 'application/vnd.pypi.simple.v1+json' });
        res.end(
          JSON.stringify({
            meta: { 'api-version': '1.1' },
            name: page[1],
            files: files.map((d) => ({
              filename: d.filename,
              url: `../../files/${d.filename}`,
              hashes: declaredOf(d) ? { sha256: declaredOf(d) } : {},
              ...(d.requiresPython ? { 'requires-python': d.requiresPython } : {}),
            })),
          }),
        );
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html' });
      const anchors = files.map(
        (d) => `<a href="${hrefFor(d)}"${d.requiresPython ? ` data-requires-python="${d.requiresPython.replace('>', '&gt;')}"` : ''}>${d.filename}</a>`,
      );
      res.end(`<!DOCTYPE html><html><body>${anchors.join('\n')}</body></html>`);
      return;
    }
    const file = httpDists.find((d) => p === `/files/${d.filename}`);
    if (file) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': file.bytes.length });
      res.end(file.bytes);
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/simple`;
  state.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

async function fileUpstream(root: string): Promise<string> {
  await mkdir(path.join(root, 'simple', 'beta'), { recursive: true });
  await mkdir(path.join(root, 'files'), { recursive: true });
  await writeFile(path.join(root, 'files', beta20.filename), beta20.bytes);
  await writeFile(
    path.join(root, 'simple', 'beta', 'index.html'),
    `<!DOCTYPE html><html><body>\n<a href="../../files/${beta20.filename}#sha256=${digestOf(beta20)}">${beta20.filename}</a>\n</body></html>`,
  );
  return pathToFileURL(path.join(root, 'simple')).href;
}

/** A loopback port that refuses connections, like pypi.org on this machine. */
async function refusingUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return `http://127.0.0.1:${port}/simple`;
}

interface Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function get(proxy: IndexProxy, target: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Response> {
  const where = proxy.address.startsWith('http://') ? { host: '127.0.0.1', port: Number(new URL(proxy.address).port) } : { socketPath: proxy.address };
  return new Promise((resolve, reject) => {
    const r = http.request({ ...where, path: target, method: opts.method ?? 'GET', headers: opts.headers ?? {}, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end();
  });
}

const PIP_ACCEPT = 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01';

/** The hrefs on a page, resolved against the page's URL the way pip resolves them. */
function hrefs(html: string, page = '/simple/x/'): string[] {
  return [...html.matchAll(/href="([^"]+)"/g)].map((m) => {
    const href = m[1]!.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
    const url = new URL(href, `http://proxy${page}`);
    return url.pathname + url.hash;
  });
}

let tmp: string;
let upstream: Upstream;
let fileIndex: string;
let refusing: string;
const logLines: string[] = [];
const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'proxy-test-'));
  upstream = await startUpstream();
  fileIndex = await fileUpstream(path.join(tmp, 'file-index'));
  refusing = await refusingUrl();
});

afterAll(async () => {
  await upstream.close();
  await rm(tmp, { recursive: true, force: true });
});

let runs = 0;
async function proxyFor(overrides: Partial<StartProxyOptions> = {}): Promise<IndexProxy> {
  runs++;
  return startProxy({
    plan,
    // The default index refuses at once; the others answer.
    upstreams: { indexUrl: refusing, extraIndexUrls: [upstream.url, fileIndex] },
    cacheDir: path.join(tmp, `cache-${runs}`),
    listen: { host: '127.0.0.1', port: 0 },
    buildAllow: ['setuptools'],
    logger,
    upstreamTimeoutMs: 5_000,
    ...overrides,
  });
}

describe('index proxy pages', () => {
  it('lists only locked names in /simple/', async () => {
    await using proxy = await proxyFor();
    const html = await get(proxy, '/simple/');
    expect(html.status).toBe(200);
    expect(hrefs(html.body.toString(), '/simple/')).toEqual(['/simple/alpha/', '/simple/beta/', '/simple/delta/', '/simple/gamma/']);
    const json = await get(proxy, '/simple/', { headers: { accept: PIP_ACCEPT } });
    expect(JSON.parse(json.body.toString()).projects).toEqual([{ name: 'alpha' }, { name: 'beta' }, { name: 'delta' }, { name: 'gamma' }]);
  });

  it('serves a locked project as HTML with only the locked file, rewritten to the proxy', async () => {
    await using proxy = await proxyFor();
    const res = await get(proxy, '/simple/alpha/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers.vary).toBe('Accept');
    const body = res.body.toString();
    expect(body.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(body).not.toContain('alpha-0.9');
    expect(body).toContain('data-requires-python="&#62;=3.8"');
    const sha = digestOf(alpha10);
    expect(hrefs(body)).toEqual([`/files/${sha}/${alpha10.filename}#sha256=${sha}`]);

    // ETag round trip.
    const etag = res.headers.etag;
    expect(etag).toMatch(/^"[0-9a-f]+"$/);
    const again = await get(proxy, '/simple/alpha/', { headers: { 'if-none-match': etag! } });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    // One fetch per upstream per run, however often pip asks.
    expect(proxy.findings).toEqual([]);
  });

  it('serves PEP 691 JSON when the client prefers it, HTML otherwise, from an upstream speaking JSON', async () => {
    upstream.format = 'json';
    try {
      await using proxy = await proxyFor();
      const json = await get(proxy, '/simple/alpha/', { headers: { accept: PIP_ACCEPT } });
      expect(json.headers['content-type']).toBe('application/vnd.pypi.simple.v1+json');
      const page = JSON.parse(json.body.toString());
      const sha = digestOf(alpha10);
      expect(page.files).toEqual([
        { filename: alpha10.filename, url: `../../files/${sha}/${alpha10.filename}#sha256=${sha}`, hashes: { sha256: sha }, 'requires-python': '>=3.8' },
      ]);
      const html = await get(proxy, '/simple/alpha/', { headers: { accept: 'text/html' } });
      expect(html.headers['content-type']).toMatch(/^text\/html/);
      expect(html.headers.etag).not.toBe(json.headers.etag);
    } finally {
      upstream.format = 'html';
    }
  });

  it('serves pages from a file:// upstream whose hrefs are relative', async () => {
    await using proxy = await proxyFor();
    const res = await get(proxy, '/simple/beta/');
    const sha = digestOf(beta20);
    expect(hrefs(res.body.toString())).toEqual([`/files/${sha}/${beta20.filename}#sha256=${sha}`]);
    const file = await get(proxy, `/files/${sha}/${beta20.filename}`);
    expect(file.status).toBe(200);
    expect(sha256(file.body)).toBe(sha);
  });

  it('redirects a non-normalised name and answers HEAD without a body', async () => {
    await using proxy = await proxyFor();
    const moved = await get(proxy, '/simple/ALPHA/');
    expect(moved.status).toBe(301);
    expect(moved.headers.location).toBe('/simple/alpha/');
    expect((await get(proxy, '/simple/alpha')).headers.location).toBe('/simple/alpha/');
    const head = await get(proxy, '/simple/alpha/', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
    expect(head.body.length).toBe(0);
  });

  it('records a page-level hash mismatch when the locked version is listed only with other hashes', async () => {
    await using proxy = await proxyFor();
    const res = await get(proxy, '/simple/delta/');
    expect(res.status).toBe(200);
    expect(hrefs(res.body.toString())).toEqual([]);
    expect(proxy.findings).toEqual([
      expect.objectContaining({
        rule: 'integrity.hash-mismatch',
        severity: 'critical',
        package: 'delta',
        evidence: {
          project: 'delta',
          filename: delta30.filename,
          upstreamSha256: digestOf(delta30),
          lockSha256: [deltaLockSha],
          url: `${upstream.url.replace(/\/simple$/, '')}/files/${delta30.filename}`,
        },
      }),
      // No upstream listed a locked file of delta, and the default index could not be asked.
      {
        rule: 'install.upstream-failed',
        severity: 'high',
        package: 'delta',
        message: `the delta page could not be read from ${refusing}: connection refused (3 attempts)`,
        evidence: { upstream: refusing, url: `${refusing}/delta/`, project: 'delta', reason: 'connection refused', attempts: 3 },
      },
    ]);
  });

  it('answers 502 when no upstream answers for a locked project', async () => {
    await using proxy = await proxyFor({ upstreams: { indexUrl: refusing, extraIndexUrls: [] } });
    const res = await get(proxy, '/simple/alpha/');
    expect(res.status).toBe(502);
    expect(res.body.toString()).toContain('no upstream index answered');
  });
});

describe('index proxy refusals', () => {
  it('refuses an unlocked project with 404, records it, and never asks upstream', async () => {
    await using proxy = await proxyFor();
    const before = upstream.hits.get('/simple/evil/') ?? 0;
    const res = await get(proxy, '/simple/evil/');
    expect(res.status).toBe(404);
    const raw = '/simple/Evil.Name/?q=exfil-data';
    expect((await get(proxy, raw)).status).toBe(404);
    expect(upstream.hits.get('/simple/evil/') ?? 0).toBe(before);
    expect(upstream.hits.has('/simple/evil-name/')).toBe(false);
    expect(proxy.findings).toEqual([
      expect.objectContaining({
        rule: 'integrity.unlocked-request',
        severity: 'high',
        package: null,
        evidence: { method: 'GET', path: '/simple/evil/', project: 'evil', time: expect.any(String) },
      }),
      expect.objectContaining({ evidence: { method: 'GET', path: raw, project: null, time: expect.any(String) } }),
    ]);
  });

  it('refuses any request with a query string, even for a locked project, and never asks upstream', async () => {
    await using proxy = await proxyFor();
    const hitsBefore = [...upstream.hits.values()].reduce((a, b) => a + b, 0);
    expect((await get(proxy, '/simple/alpha/?d=SECRET')).status).toBe(404);
    expect((await get(proxy, '/simple/?d=SECRET')).status).toBe(404);
    expect([...upstream.hits.values()].reduce((a, b) => a + b, 0)).toBe(hitsBefore);
    expect(proxy.findings.map((f) => [f.rule, f.evidence.path])).toEqual([
      ['integrity.unlocked-request', '/simple/alpha/?d=SECRET'],
      ['integrity.unlocked-request', '/simple/?d=SECRET'],
    ]);
  });

  it('refuses a request whose target carries what refuseTarget names (a canary), even for a locked project, and never asks upstream', async () => {
    await using proxy = await proxyFor({ refuseTarget: (target) => target.includes('AKIACANARY') });
    expect((await get(proxy, '/simple/alpha/')).status).toBe(200);
    const hitsBefore = [...upstream.hits.values()].reduce((a, b) => a + b, 0);
    expect((await get(proxy, '/simple/alpha/AKIACANARY')).status).toBe(404);
    expect((await get(proxy, `/files/${digestOf(alpha10)}/AKIACANARY.whl`)).status).toBe(404);
    expect(proxy.findings.map((f) => [f.rule, f.evidence.path])).toEqual([
      ['integrity.unlocked-request', '/simple/alpha/AKIACANARY'],
      ['integrity.unlocked-request', `/files/${digestOf(alpha10)}/AKIACANARY.whl`],
    ]);
    expect([...upstream.hits.values()].reduce((a, b) => a + b, 0)).toBe(hitsBefore);
  });

  it("refuses a target carrying a canary as the session's matcher finds it: encoded, or a run of it, and serves the rest", async () => {
    // session.ts passes exactly this: carriesCanary(target).length > 0.
    const canaries = makeCanaries();
    const carriesCanary = canaryMatcher(canaries.canaries);
    await using proxy = await proxyFor({ refuseTarget: (target) => carriesCanary(target).length > 0 });
    const github = canaries.canaries.find((c) => c.name === '~/.git-credentials github.com token')!;
    const hitsBefore = [...upstream.hits.values()].reduce((a, b) => a + b, 0);
    const hex = Buffer.from(github.value).toString('hex');
    for (const target of [`/simple/alpha/${hex}/`, `/simple/${secretPart(github).slice(5, 25)}/`]) expect((await get(proxy, target)).status).toBe(404);
    expect(proxy.findings.map((f) => f.evidence.path)).toEqual([`/simple/alpha/${hex}/`, `/simple/${secretPart(github).slice(5, 25)}/`]);
    expect([...upstream.hits.values()].reduce((a, b) => a + b, 0)).toBe(hitsBefore);
    expect((await get(proxy, '/simple/alpha/')).status).toBe(200);
    expect((await get(proxy, `/files/${digestOf(alpha10)}/${alpha10.filename}`)).status).toBe(200);
  });

  it('refuses unknown files, other paths and other methods, without touching upstream', async () => {
    await using proxy = await proxyFor();
    const hitsBefore = [...upstream.hits.values()].reduce((a, b) => a + b, 0);
    const unknownSha = sha256('nothing');
    expect((await get(proxy, `/files/${unknownSha}/evil-1.0-py3-none-any.whl`)).status).toBe(404);
    // A real upstream file, but not locked and not on any page served: still refused.
    expect((await get(proxy, `/files/${digestOf(evil10)}/${evil10.filename}`)).status).toBe(404);
    expect((await get(proxy, '/files/../../etc/passwd')).status).toBe(404);
    expect((await get(proxy, `/files/${'A'.repeat(64)}/x.whl`)).status).toBe(404);
    expect((await get(proxy, '/exfil/c2VjcmV0')).status).toBe(404);
    const post = await get(proxy, '/simple/alpha/', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect([...upstream.hits.values()].reduce((a, b) => a + b, 0)).toBe(hitsBefore);
    expect(proxy.findings.map((f) => [f.rule, f.evidence.path, f.evidence.method])).toEqual([
      ['integrity.unlocked-request', `/files/${unknownSha}/evil-1.0-py3-none-any.whl`, 'GET'],
      ['integrity.unlocked-request', `/files/${digestOf(evil10)}/${evil10.filename}`, 'GET'],
      ['integrity.unlocked-request', '/files/../../etc/passwd', 'GET'],
      ['integrity.unlocked-request', `/files/${'A'.repeat(64)}/x.whl`, 'GET'],
      ['integrity.unlocked-request', '/exfil/c2VjcmV0', 'GET'],
      ['integrity.unlocked-request', '/simple/alpha/', 'POST'],
    ]);
    await proxy.close();
    expect(proxy.requests.map((r) => r.status)).toEqual([404, 404, 404, 404, 404, 405]);
  });

  it('truncates the path in evidence and caps refused-request findings', async () => {
    await using proxy = await proxyFor();
    const long = `/x${'a'.repeat(5000)}`;
    await get(proxy, long);
    expect((proxy.findings[0]?.evidence.path as string).length).toBe(2048);
    for (let i = 0; i < 1005; i++) await get(proxy, `/nope/${i}`);
    expect(proxy.findings.length).toBe(1001);
    expect(proxy.findings[1000]?.evidence).toMatchObject({ truncated: true, dropped: 6 });
  });
});

describe('index proxy files', () => {
  it('downloads, verifies and caches a locked file; the second request does not reach upstream', async () => {
    const cacheDir = path.join(tmp, 'shared-cache');
    const sha = digestOf(alpha10);
    const target = `/files/${sha}/${alpha10.filename}`;
    const upstreamPath = `/files/${alpha10.filename}`;
    const before = upstream.hits.get(upstreamPath) ?? 0;
    {
      await using proxy = await proxyFor({ cacheDir });
      await get(proxy, '/simple/alpha/');
      const responses = await Promise.all([1, 2, 3, 4].map(() => get(proxy, target)));
      for (const res of responses) {
        expect(res.status).toBe(200);
        expect(res.body.equals(alpha10.bytes)).toBe(true);
        expect(res.headers['content-length']).toBe(String(alpha10.bytes.length));
      }
      expect(upstream.hits.get(upstreamPath)).toBe(before + 1);
      await proxy.close();
      expect(proxy.served).toEqual([
        { project: 'alpha', filename: alpha10.filename, sha256: sha, size: alpha10.bytes.length, locked: true, cachePath: path.join(cacheDir, 'sha256', sha) },
      ]);
      expect(proxy.findings).toEqual([]);
      expect(proxy.requests.filter((r) => r.path === target).map((r) => r.bytes)).toEqual([1, 2, 3, 4].map(() => alpha10.bytes.length));
    }
    const cached = await stat(path.join(cacheDir, 'sha256', sha));
    expect(cached.mode & 0o777).toBe(0o444);
    {
      // A new run, pip asking for the file straight away: served from the cache.
      await using proxy = await proxyFor({ cacheDir });
      const res = await get(proxy, target);
      expect(res.status).toBe(200);
      expect(res.body.equals(alpha10.bytes)).toBe(true);
      expect(upstream.hits.get(upstreamPath)).toBe(before + 1);
    }
  });

  it('never serves tampered bytes, records the mismatch and keeps nothing in the cache', async () => {
    const cacheDir = path.join(tmp, 'tamper-cache');
    await using proxy = await proxyFor({ cacheDir });
    const lockSha = sha256(gammaLocked);
    const page = await get(proxy, '/simple/gamma/');
    expect(hrefs(page.body.toString())).toEqual([`/files/${lockSha}/${gamma10.filename}#sha256=${lockSha}`]);
    const res = await get(proxy, `/files/${lockSha}/${gamma10.filename}`);
    expect(res.status).not.toBe(200);
    expect(res.body.length).toBeLessThan(200);
    expect(res.body.includes(gamma10.bytes.subarray(0, 32))).toBe(false);
    expect(proxy.findings).toEqual([
      expect.objectContaining({
        rule: 'integrity.hash-mismatch',
        severity: 'critical',
        package: 'gamma',
        evidence: {
          project: 'gamma',
          filename: gamma10.filename,
          expectedSha256: lockSha,
          actualSha256: digestOf(gamma10),
          url: `${upstream.url.replace(/\/simple$/, '')}/files/${gamma10.filename}`,
        },
      }),
    ]);
    expect(await readdir(path.join(cacheDir, 'sha256'))).toEqual([]);
    expect(await readdir(path.join(cacheDir, 'tmp'))).toEqual([]);
    expect(proxy.served).toEqual([]);
  });

  it('serves build requirements unfiltered (hashed entries only) and records each file served', async () => {
    await using proxy = await proxyFor();
    const page = await get(proxy, '/simple/setuptools/');
    expect(page.status).toBe(200);
    const listed = hrefs(page.body.toString());
    expect(listed).toEqual([setuptools70, setuptools69].map((d) => `/files/${digestOf(d)}/${d.filename}#sha256=${digestOf(d)}`));
    const res = await get(proxy, `/files/${digestOf(setuptools70)}/${setuptools70.filename}`);
    expect(res.status).toBe(200);
    await get(proxy, `/files/${digestOf(setuptools70)}/${setuptools70.filename}`);
    await proxy.close();
    expect(proxy.findings).toEqual([
      expect.objectContaining({
        rule: 'integrity.build-requirement',
        severity: 'info',
        package: 'setuptools',
        evidence: { project: 'setuptools', filename: setuptools70.filename, sha256: digestOf(setuptools70), pinned: false },
      }),
    ]);
    expect(proxy.served).toEqual([expect.objectContaining({ project: 'setuptools', locked: false })]);
  });

  it('unlocked (investigate): serves any project with its hashed files, records each served sha256, and still refuses what is not a page or file', async () => {
    await using proxy = await proxyFor({ unlocked: true, buildAllow: [] });
    const page = await get(proxy, '/simple/evil/');
    expect(page.status).toBe(200);
    expect(hrefs(page.body.toString())).toEqual([`/files/${digestOf(evil10)}/${evil10.filename}#sha256=${digestOf(evil10)}`]);
    const file = await get(proxy, `/files/${digestOf(evil10)}/${evil10.filename}`);
    expect(file.body.equals(evil10.bytes)).toBe(true);
    expect((await get(proxy, '/simple/evil/?d=x')).status).toBe(404);
    expect((await get(proxy, '/elsewhere')).status).toBe(404);
    await proxy.close();
    expect(proxy.served).toEqual([expect.objectContaining({ project: 'evil', filename: evil10.filename, sha256: digestOf(evil10), locked: false })]);
    // No build-requirement notes: nothing here is pinned, and the report lists what was served.
    expect(proxy.findings.map((f) => [f.rule, f.evidence.path])).toEqual([
      ['integrity.unlocked-request', '/simple/evil/?d=x'],
      ['integrity.unlocked-request', '/elsewhere'],
    ]);
  });

  it("serves a local file from the host as its project's only file, without asking upstream", async () => {
    const bytes = randomBytes(3000);
    const local = path.join(tmp, 'localpkg-1.0-py3-none-any.whl');
    await writeFile(local, bytes);
    await using proxy = await proxyFor({ unlocked: true, localFiles: [{ project: 'LocalPkg', filename: 'localpkg-1.0-py3-none-any.whl', path: local }] });
    const page = await get(proxy, '/simple/localpkg/');
    expect(hrefs(page.body.toString())).toEqual([`/files/${sha256(bytes)}/localpkg-1.0-py3-none-any.whl#sha256=${sha256(bytes)}`]);
    expect((await get(proxy, `/files/${sha256(bytes)}/localpkg-1.0-py3-none-any.whl`)).body.equals(bytes)).toBe(true);
    expect(upstream.hits.has('/simple/localpkg/')).toBe(false);
    await proxy.close();
    expect(proxy.served).toEqual([expect.objectContaining({ project: 'localpkg', sha256: sha256(bytes), size: 3000, locked: false })]);
  });

  it('refuses a known sha256 under another filename', async () => {
    await using proxy = await proxyFor();
    await get(proxy, '/simple/alpha/');
    const res = await get(proxy, `/files/${digestOf(alpha10)}/other-1.0-py3-none-any.whl`);
    expect(res.status).toBe(404);
    expect(proxy.findings[0]).toMatchObject({ rule: 'integrity.unlocked-request', evidence: { project: 'alpha' } });
  });
});

describe('index proxy plumbing', () => {
  it('listens on a unix socket usable by any uid, replaces a stale socket, and closes idempotently', async () => {
    const socketPath = path.join(tmp, 'proxy.sock');
    // A socket file left by a dead process.
    execFileSync('python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(socketPath)})`]);
    expect((await stat(socketPath)).isSocket()).toBe(true);
    const proxy = await proxyFor({ listen: { socketPath } });
    try {
      expect(proxy.address).toBe(socketPath);
      expect((await stat(socketPath)).mode & 0o777).toBe(0o666);
      const res = await get(proxy, '/simple/alpha/');
      expect(res.status).toBe(200);
      // A second proxy must not steal a live socket.
      await expect(proxyFor({ listen: { socketPath } })).rejects.toThrow(/another process is listening/);
    } finally {
      await proxy.close();
    }
    await proxy.close();
    await expect(get(proxy, '/simple/')).rejects.toThrow();
  });

  it('refuses to replace a path that is not a socket', async () => {
    const notSocket = path.join(tmp, 'regular-file');
    await writeFile(notSocket, 'keep me');
    await expect(proxyFor({ listen: { socketPath: notSocket } })).rejects.toThrow(/not a socket/);
    expect(await readFile(notSocket, 'utf8')).toBe('keep me');
  });

  it('sends upstream credentials as a header and never logs or reports them', async () => {
    const withCreds = upstream.url.replace('http://', 'http://user:s3cr3t-token@');
    const authBefore = upstream.authorizations.length;
    const linesBefore = logLines.length;
    await using proxy = await proxyFor({ upstreams: { indexUrl: withCreds, extraIndexUrls: [refusing] } });
    await get(proxy, '/simple/delta/');
    const res = await get(proxy, `/files/${sha256(gammaLocked)}/${gamma10.filename}`);
    expect(res.status).toBe(502);
    const sent = upstream.authorizations.slice(authBefore);
    expect(sent.length).toBeGreaterThanOrEqual(2);
    expect(new Set(sent)).toEqual(new Set([`Basic ${Buffer.from('user:s3cr3t-token').toString('base64')}`]));
    const everything = JSON.stringify(proxy.findings) + logLines.slice(linesBefore).join('');
    expect(everything).not.toContain('s3cr3t');
    expect(proxy.findings.filter((f) => f.rule === 'integrity.hash-mismatch').length).toBe(2);
  });

  it('does not wait for a hanging upstream once the others list every locked file, and times it out otherwise', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const hanging = http.createServer(() => {
      // Never answers.
    });
    hanging.on('connection', (c) => sockets.add(c));
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const hangingUrl = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/simple`;
    try {
      {
        await using proxy = await proxyFor({ upstreams: { indexUrl: hangingUrl, extraIndexUrls: [upstream.url] }, upstreamTimeoutMs: 30_000 });
        const started = performance.now();
        // gamma's one locked sha256 is on the answering upstream.
        const res = await get(proxy, '/simple/gamma/');
        expect(res.status).toBe(200);
        expect(hrefs(res.body.toString())).toHaveLength(1);
        expect(performance.now() - started).toBeLessThan(5_000);
      }
      {
        // alpha's lock names a hash no upstream has, so the hanging upstream is waited for until
        // the timeout, which must fire even when the garbage collector runs meanwhile (on Node 20,
        // AbortSignal.any + AbortSignal.timeout does not survive a GC).
        v8.setFlagsFromString('--expose-gc');
        const gc = vm.runInNewContext('gc') as () => void;
        const collecting = setInterval(gc, 50);
        try {
          await using proxy = await proxyFor({ upstreams: { indexUrl: hangingUrl, extraIndexUrls: [upstream.url] }, upstreamTimeoutMs: 1_000 });
          const started = performance.now();
          const res = await get(proxy, '/simple/alpha/');
          expect(res.status).toBe(200);
          expect(hrefs(res.body.toString())).toHaveLength(1);
          expect(performance.now() - started).toBeLessThan(5_000);
        } finally {
          clearInterval(collecting);
        }
      }
      {
        // A build requirement must hear from every upstream: the hanging one times out, the page still comes.
        await using proxy = await proxyFor({ upstreams: { indexUrl: hangingUrl, extraIndexUrls: [upstream.url] }, upstreamTimeoutMs: 300 });
        const res = await get(proxy, '/simple/setuptools/');
        expect(res.status).toBe(200);
        expect(hrefs(res.body.toString())).toHaveLength(2);
      }
    } finally {
      for (const c of sockets) c.destroy();
      await new Promise((resolve) => hanging.close(resolve));
    }
  });

  it('logs each request at debug level and records it', async () => {
    const linesBefore = logLines.length;
    await using proxy = await proxyFor();
    // alpha's lock names a hash no upstream has, so the refusing default index is waited for.
    await get(proxy, '/simple/alpha/');
    await proxy.close();
    expect(proxy.requests).toEqual([
      { time: expect.any(String), method: 'GET', path: '/simple/alpha/', status: 200, bytes: expect.any(Number), ms: expect.any(Number) },
    ]);
    const logged = logLines.slice(linesBefore).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged).toContainEqual(expect.objectContaining({ level: 20, msg: 'proxy request', path: '/simple/alpha/', status: 200 }));
    expect(logged).toContainEqual(expect.objectContaining({ level: 40, msg: expect.stringContaining('upstream index did not answer') }));
  });
});
