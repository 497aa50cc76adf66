/**
 * Issue 10, item 3: upstream faults. Each case runs the real proxy against a real local upstream
 * that fails one way, and asserts what pip gets (a 502), the one finding that names the upstream
 * with its credentials removed, how many attempts reached the upstream, and that asking again (as
 * pip does, five times) fails at once without reaching it.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EnvironmentError } from '../errors.js';
import { noPipOptions } from '../lock/pip-options.js';
import type { LockPlan } from '../lock/types.js';
import { startProxy, type IndexProxy } from './server.js';
import { UpstreamHttpError } from './upstream-client.js';
import { DEFAULT_RETRY, faultOf, UpstreamFailed, withRetries } from './upstream-faults.js';

const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
const WHEEL = 'alpha-1.0-py3-none-any.whl';
const wheel = randomBytes(5000);
const sha = sha256(wheel);
const indexPage = `<!DOCTYPE html><html><body><a href="/files/${WHEEL}#sha256=${sha}">${WHEEL}</a></body></html>`;
/** What the default backoff adds up to before a third attempt: 250 ms then 1 s. */
const BACKOFF_MS = 1250;

const plan: LockPlan = {
  file: 'requirements.lock',
  indexUrl: null,
  extraIndexUrls: [],
  pipOptions: noPipOptions(),
  requirements: [{ name: 'alpha', rawName: 'alpha', version: '1.0', extras: [], marker: null, sha256: [sha], line: 1 }],
};

let tmp: string;
const logLines: string[] = [];
const logger = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });

beforeAll(async () => {
  tmp = await realpath(await mkdtemp(path.join(os.tmpdir(), 'upstream-faults-test-')));
});

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

interface Upstream {
  /** `http://127.0.0.1:<port>` (or https). */
  origin: string;
  /** Request targets in the order they arrived. */
  hits: string[];
  close(): Promise<void>;
}

async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse) => void, tls?: { key: string; cert: string }): Promise<Upstream> {
  const hits: string[] = [];
  const sockets = new Set<Socket>();
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    hits.push(req.url ?? '');
    handler(req, res);
  };
  const server = tls ? https.createServer(tls, onRequest) : http.createServer(onRequest);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** The index page of alpha at /simple/alpha/, and the wheel at /files/<wheel> answered by `file`. */
function indexWith(file: (res: http.ServerResponse) => void): (req: http.IncomingMessage, res: http.ServerResponse) => void {
  return (req, res) => {
    if (req.url === '/simple/alpha/') res.writeHead(200, { 'content-type': 'text/html' }).end(indexPage);
    else if (req.url === `/files/${WHEEL}`) file(res);
    else res.writeHead(404).end();
  };
}

/** `origin` as an index URL with credentials in it, as a user's pip.conf might have. */
const withCredentials = (origin: string): string => `${origin.replace('://', '://user:secret@')}/simple/`;

let runs = 0;
function proxyOver(indexUrl: string, upstreamTimeoutMs = 5_000): Promise<IndexProxy> {
  return startProxy({
    plan,
    upstreams: { indexUrl, extraIndexUrls: [] },
    cacheDir: path.join(tmp, `cache-${++runs}`),
    listen: { host: '127.0.0.1', port: 0 },
    buildAllow: [],
    logger,
    upstreamTimeoutMs,
  });
}

interface Answer {
  status: number;
  body: string;
  ms: number;
}

function get(proxy: IndexProxy, target: string): Promise<Answer> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const r = http.request({ host: '127.0.0.1', port: Number(new URL(proxy.address).port), path: target, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), ms: performance.now() - started }));
      res.on('error', reject);
    });
    r.on('error', reject);
    r.end();
  });
}

const fileTarget = `/files/${sha}/${WHEEL}`;

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/** The credentials went nowhere: not into a finding, an answer to pip, or a log line. */
function expectNoSecret(proxy: IndexProxy, answers: Answer[], linesBefore: number): void {
  const everything = JSON.stringify(proxy.findings) + answers.map((a) => a.body).join('') + logLines.slice(linesBefore).join('');
  expect(everything).not.toContain('secret');
  expect(everything).not.toContain('user:');
}

function pageFailure(upstream: string, reason: string, attempts: number): unknown {
  const tries = `${attempts} ${attempts === 1 ? 'attempt' : 'attempts'}`;
  return {
    rule: 'install.upstream-failed',
    severity: 'high',
    package: 'alpha',
    message: `the alpha page could not be read from ${upstream}: ${reason} (${tries})`,
    evidence: { upstream, url: `${upstream}alpha/`, project: 'alpha', reason, attempts },
  };
}

function fileFailure(upstream: string, url: string, reason: string, attempts: number): unknown {
  const tries = `${attempts} ${attempts === 1 ? 'attempt' : 'attempts'}`;
  return {
    rule: 'install.upstream-failed',
    severity: 'high',
    package: 'alpha',
    message: `${WHEEL} could not be downloaded from ${upstream}: ${reason} (${tries})`,
    evidence: { upstream, url, project: 'alpha', filename: WHEEL, reason, attempts },
  };
}

async function expectNothingCached(proxy: IndexProxy): Promise<void> {
  expect(proxy.served).toEqual([]);
  expect(await readdir(path.join(tmp, `cache-${runs}`, 'sha256'))).toEqual([]);
}

describe('upstream faults through the proxy: a 502 for pip, one finding naming the upstream, bounded retries, then none', () => {
  it('an index that is down (a closed port): three attempts over 1.25 s, then every request fails at once', async () => {
    const port = await closedPort();
    const upstream = `http://127.0.0.1:${port}/simple/`;
    const linesBefore = logLines.length;
    const proxy = await proxyOver(withCredentials(`http://127.0.0.1:${port}`));
    let first: Answer;
    let again: Answer;
    try {
      first = await get(proxy, '/simple/alpha/');
      again = await get(proxy, '/simple/alpha/');
    } finally {
      await proxy.close();
    }
    expect(first.status).toBe(502);
    expect(first.body).toBe(`no upstream index answered for alpha: ${upstream}: ${upstream}alpha/: connection refused (3 attempts)\n`);
    // The backoff between the three attempts, and not much more.
    expect(first.ms).toBeGreaterThanOrEqual(BACKOFF_MS - 10);
    expect(first.ms).toBeLessThan(BACKOFF_MS + 1_000);
    expect(again.status).toBe(502);
    expect(again.ms).toBeLessThan(100);
    expect(proxy.findings).toEqual([pageFailure(upstream, 'connection refused', 3)]);
    expectNoSecret(proxy, [first, again], linesBefore);
  });

  it('an index that never answers: each attempt times out, the second timeout ends it, the total is bounded', async () => {
    const hanging = await serve(() => {
      // Never answers.
    });
    const upstream = `${hanging.origin}/simple/`;
    const linesBefore = logLines.length;
    const proxy = await proxyOver(withCredentials(hanging.origin), 300);
    let first: Answer;
    let again: Answer;
    try {
      first = await get(proxy, '/simple/alpha/');
      again = await get(proxy, '/simple/alpha/');
    } finally {
      await proxy.close();
      await hanging.close();
    }
    expect(first.status).toBe(502);
    // Two timeouts of 300 ms and the 250 ms between them: at most 2 x timeout + 1.25 s in any case.
    expect(first.ms).toBeGreaterThanOrEqual(2 * 300 + 250 - 10);
    expect(first.ms).toBeLessThan(2 * 300 + BACKOFF_MS + 500);
    expect(hanging.hits).toEqual(['/simple/alpha/', '/simple/alpha/']);
    expect(again).toMatchObject({ status: 502 });
    expect(again.ms).toBeLessThan(100);
    expect(proxy.findings).toEqual([pageFailure(upstream, 'timeout after 300 ms', 2)]);
    expectNoSecret(proxy, [first, again], linesBefore);
  });

  it('a file host that never answers: two timeouts, then the file fails at once for the rest of the run', async () => {
    const hanging = await serve(
      indexWith(() => {
        // Never answers.
      }),
    );
    const upstream = `${hanging.origin}/simple/`;
    const proxy = await proxyOver(withCredentials(hanging.origin), 300);
    let first: Answer;
    let again: Answer;
    try {
      expect((await get(proxy, '/simple/alpha/')).status).toBe(200);
      first = await get(proxy, fileTarget);
      again = await get(proxy, fileTarget);
    } finally {
      await proxy.close();
      await hanging.close();
    }
    expect(first.status).toBe(502);
    expect(first.ms).toBeLessThan(2 * 300 + BACKOFF_MS + 500);
    expect(hanging.hits).toEqual(['/simple/alpha/', `/files/${WHEEL}`, `/files/${WHEEL}`]);
    expect(again).toMatchObject({ status: 502, body: first.body });
    expect(proxy.findings).toEqual([fileFailure(upstream, `${hanging.origin}/files/${WHEEL}`, 'timeout after 300 ms', 2)]);
  });

  it('a file that answers HTTP 500: three attempts reach the upstream, pip asking again reaches it no more', async () => {
    const failing = await serve(indexWith((res) => res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error')));
    const upstream = `${failing.origin}/simple/`;
    const url = `${failing.origin}/files/${WHEEL}`;
    const linesBefore = logLines.length;
    const proxy = await proxyOver(withCredentials(failing.origin));
    let first: Answer;
    const again: Answer[] = [];
    try {
      const page = await get(proxy, '/simple/alpha/');
      expect(page.status).toBe(200);
      expect(page.body).toContain(`href="../../files/${sha}/${WHEEL}#sha256=${sha}"`);
      first = await get(proxy, fileTarget);
      // pip retries a 502 five times.
      for (let i = 0; i < 5; i++) again.push(await get(proxy, fileTarget));
    } finally {
      await proxy.close();
      await failing.close();
    }
    expect(first).toMatchObject({ status: 502, body: `download failed: ${url}: HTTP 500 (3 attempts)\n` });
    expect(first.ms).toBeGreaterThanOrEqual(BACKOFF_MS - 10);
    expect(failing.hits).toEqual(['/simple/alpha/', `/files/${WHEEL}`, `/files/${WHEEL}`, `/files/${WHEEL}`]);
    for (const a of again) expect(a).toMatchObject({ status: 502, body: first.body });
    expect(Math.max(...again.map((a) => a.ms))).toBeLessThan(100);
    expect(proxy.findings).toEqual([fileFailure(upstream, url, 'HTTP 500', 3)]);
    expectNoSecret(proxy, [first, ...again], linesBefore);
    await expectNothingCached(proxy);
  });

  it('a file whose body stops at 1000 of its 5000 bytes: retried as truncated, never a hash mismatch, nothing cached', async () => {
    const cutting = await serve(
      indexWith((res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 5000 });
        res.write(wheel.subarray(0, 1000));
        setTimeout(() => res.destroy(), 100);
      }),
    );
    const upstream = `${cutting.origin}/simple/`;
    const url = `${cutting.origin}/files/${WHEEL}`;
    const linesBefore = logLines.length;
    const proxy = await proxyOver(withCredentials(cutting.origin));
    let first: Answer;
    let again: Answer;
    try {
      expect((await get(proxy, '/simple/alpha/')).status).toBe(200);
      first = await get(proxy, fileTarget);
      again = await get(proxy, fileTarget);
    } finally {
      await proxy.close();
      await cutting.close();
    }
    expect(first).toMatchObject({ status: 502, body: `download failed: ${url}: truncated: 1000 of 5000 bytes (3 attempts)\n` });
    expect(again).toMatchObject({ status: 502, body: first.body });
    expect(cutting.hits.filter((h) => h === `/files/${WHEEL}`)).toHaveLength(3);
    expect(proxy.findings).toEqual([fileFailure(upstream, url, 'truncated: 1000 of 5000 bytes', 3)]);
    expectNoSecret(proxy, [first, again], linesBefore);
    await expectNothingCached(proxy);
  });

  it.each([
    [
      'a login page (200, text/html, no file of the project)',
      'text/html; charset=utf-8',
      '<!DOCTYPE html><html><body><h1>Sign in</h1><form action="/login"><input name="user"></form><a href="/help">Help</a></body></html>',
      'not an index page: text/html that lists no file of alpha',
    ],
    [
      'an HTML error page served as PEP 691 JSON',
      'application/vnd.pypi.simple.v1+json',
      '<html><body>502 Bad Gateway</body></html>',
      'not an index page: application/vnd.pypi.simple.v1+json that is not valid JSON',
    ],
  ])('an index answering 200 with %s: a 502, never a page that says alpha has no files; not retried', async (_, type, body, reason) => {
    const portal = await serve((_req, res) => res.writeHead(200, { 'content-type': type }).end(body));
    const upstream = `${portal.origin}/simple/`;
    const linesBefore = logLines.length;
    const proxy = await proxyOver(withCredentials(portal.origin));
    let first: Answer;
    let again: Answer;
    try {
      first = await get(proxy, '/simple/alpha/');
      again = await get(proxy, '/simple/alpha/');
    } finally {
      await proxy.close();
      await portal.close();
    }
    expect(first.status).toBe(502);
    expect(first.body).toMatch(/^no upstream index answered for alpha: /);
    expect(again.status).toBe(502);
    expect(portal.hits).toEqual(['/simple/alpha/']);
    expect(proxy.findings).toEqual([pageFailure(upstream, reason, 1)]);
    expectNoSecret(proxy, [first, again], linesBefore);
  });

  it('an https index whose certificate is not trusted: the handshake fails, no request is sent, not retried', async () => {
    const tls = await testCertificate();
    const untrusted = await serve(
      indexWith((res) => res.end(wheel)),
      tls,
    );
    const upstream = `${untrusted.origin}/simple/`;
    const linesBefore = logLines.length;
    const proxy = await proxyOver(withCredentials(untrusted.origin));
    let first: Answer;
    let again: Answer;
    try {
      first = await get(proxy, '/simple/alpha/');
      again = await get(proxy, '/simple/alpha/');
    } finally {
      await proxy.close();
      await untrusted.close();
    }
    expect(first.status).toBe(502);
    expect(first.ms).toBeLessThan(1_000);
    expect(again.status).toBe(502);
    // Nothing, the credentials included, went over a connection whose peer was not verified.
    expect(untrusted.hits).toEqual([]);
    expect(proxy.findings).toEqual([pageFailure(upstream, 'TLS: DEPTH_ZERO_SELF_SIGNED_CERT', 1)]);
    expectNoSecret(proxy, [first, again], linesBefore);
  });

  it('a file:// mirror whose page links a file that is not there: the path under the mirror, not retried', async () => {
    const mirror = path.join(tmp, 'mirror');
    await mkdir(path.join(mirror, 'simple', 'alpha'), { recursive: true });
    await mkdir(path.join(mirror, 'files'));
    await writeFile(
      path.join(mirror, 'simple', 'alpha', 'index.html'),
      `<!DOCTYPE html><html><body><a href="../../files/${WHEEL}#sha256=${sha}">${WHEEL}</a></body></html>`,
    );
    const indexUrl = pathToFileURL(path.join(mirror, 'simple')).href;
    const url = pathToFileURL(path.join(mirror, 'files', WHEEL)).href;
    const proxy = await proxyOver(indexUrl);
    let first: Answer;
    let again: Answer;
    try {
      expect((await get(proxy, '/simple/alpha/')).status).toBe(200);
      first = await get(proxy, fileTarget);
      again = await get(proxy, fileTarget);
    } finally {
      await proxy.close();
    }
    expect(first).toMatchObject({ status: 502, body: `download failed: ${url}: file: missing files/${WHEEL} (1 attempt)\n` });
    expect(first.ms).toBeLessThan(200);
    expect(again).toMatchObject({ status: 502, body: first.body });
    expect(proxy.findings).toEqual([fileFailure(indexUrl, url, `file: missing files/${WHEEL}`, 1)]);
    await expectNothingCached(proxy);
  });

  it('an index that fails while another lists every locked file: served, and no finding', async () => {
    const port = await closedPort();
    const good = await serve(indexWith((res) => res.writeHead(200, { 'content-length': wheel.length }).end(wheel)));
    const proxy = await startProxy({
      plan,
      upstreams: { indexUrl: `http://127.0.0.1:${port}/simple/`, extraIndexUrls: [`${good.origin}/simple/`] },
      cacheDir: path.join(tmp, `cache-${++runs}`),
      listen: { host: '127.0.0.1', port: 0 },
      buildAllow: [],
      logger,
    });
    try {
      const page = await get(proxy, '/simple/alpha/');
      expect(page.status).toBe(200);
      // The dead index is not waited for once the other lists the locked file.
      expect(page.ms).toBeLessThan(BACKOFF_MS);
      const file = await get(proxy, fileTarget);
      expect(file.status).toBe(200);
    } finally {
      await proxy.close();
      await good.close();
    }
    expect(proxy.findings).toEqual([]);
  });
});

describe('withRetries', () => {
  const never = new AbortController().signal;

  it('never retries a 4xx, and retries 500/502/503/504 up to the attempts', async () => {
    for (const [status, attempts] of [
      [404, 1],
      [403, 1],
      [429, 1],
      [500, 3],
      [502, 3],
      [503, 3],
      [504, 3],
    ] as const) {
      let calls = 0;
      const policy = { ...DEFAULT_RETRY, backoffMs: [0] };
      const failed = await withRetries('http://x.invalid/simple/a/', never, policy, () => {
        calls++;
        throw new UpstreamHttpError(status, 'http://u:p@x.invalid/simple/a/');
      }).catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(UpstreamFailed);
      expect(failed).toMatchObject({ reason: `HTTP ${status}`, attempts });
      expect(calls).toBe(attempts);
    }
  });

  it('passes through what is not an upstream fault, and stops when the signal fires', async () => {
    const full = new EnvironmentError('proxy-cache-full', 'disk full');
    expect(faultOf(full)).toBeNull();
    await expect(withRetries('u', never, DEFAULT_RETRY, () => Promise.reject(full))).rejects.toBe(full);
    const stop = new AbortController();
    let calls = 0;
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    await expect(
      withRetries('u', stop.signal, DEFAULT_RETRY, () => {
        calls++;
        stop.abort(new Error('closing'));
        return Promise.reject(reset);
      }),
    ).rejects.toBe(reset);
    expect(calls).toBe(1);
  });
});

/** A self-signed certificate for 127.0.0.1: made by openssl when it is on PATH, else a fixed one. */
async function testCertificate(): Promise<{ key: string; cert: string }> {
  const dir = await mkdtemp(path.join(tmp, 'tls-'));
  try {
    const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
    const subject = ['-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'];
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', ...subject, '-keyout', key, '-out', cert],
      {
        stdio: 'ignore',
      },
    );
    return { key: await readFile(key, 'utf8'), cert: await readFile(cert, 'utf8') };
  } catch {
    return FIXED_CERTIFICATE;
  }
}

/** Self-signed, CN and SAN 127.0.0.1, valid until 2126: used only where openssl is missing. */
const FIXED_CERTIFICATE = {
  key: `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQggaBJA4sALKsUCE5c
GCobhYITQH/T9C8yQgt8OjiEugChRANCAAQ2lj1DpQTd/XVjriey+dLWnh5/RHlC
WG6NLJ3npr89jAlM5I1QGymH/FQFlb5PGOycKU4c83EbZV2x0yhZ+dNQ
-----END PRIVATE KEY-----
`,
  cert: `-----BEGIN CERTIFICATE-----
MIIBkTCCATagAwIBAgIUVUACJ+TJARuUC+4NtIS08FndvdcwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTIwMzAwMDk0MFoYDzIxMjYxMTA5
MDAwOTQwWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQ2lj1DpQTd/XVjriey+dLWnh5/RHlCWG6NLJ3npr89jAlM5I1QGymH
/FQFlb5PGOycKU4c83EbZV2x0yhZ+dNQo2QwYjAdBgNVHQ4EFgQUXipu6SJl7WBi
yBzR6S+HG1/fOV0wHwYDVR0jBBgwFoAUXipu6SJl7WBiyBzR6S+HG1/fOV0wDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0kAMEYC
IQDZZd7UKDa/UOcaONXybWW2sJSMTh7kRcwFt61YQhSvDQIhAPbxGWKXe/coDuJm
N6GCwYH9itcPNxCkfvPxkKEdhMI+
-----END CERTIFICATE-----
`,
};
