import { noPipOptions } from '../lock/pip-options.js';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LockPlan } from '../lock/types.js';
import { startProxy } from './server.js';

// DESIGN.md: "The proxy streams a 200 MB wheel with resident memory of 100 MB or less."
const SIZE = 200 * 1024 * 1024;
const LIMIT = 100 * 1024 * 1024;
const FILENAME = 'big-1.0-py3-none-any.whl';

let tmp: string;
let sha: string;
let fileIndex: string;
let httpIndex: string;
let upstream: http.Server | undefined;

/** Write SIZE random bytes one 1 MiB block at a time, hashing as we go; nothing is held in memory. */
async function generate(file: string): Promise<string> {
  const hash = createHash('sha256');
  const blocks = Readable.from(
    (function* () {
      for (let written = 0; written < SIZE; written += 1024 * 1024) {
        const block = randomFillSync(Buffer.allocUnsafe(1024 * 1024));
        hash.update(block);
        yield block;
      }
    })(),
  );
  await pipeline(blocks, createWriteStream(file));
  return hash.digest('hex');
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'proxy-memory-'));
  const root = path.join(tmp, 'index');
  await mkdir(path.join(root, 'simple', 'big'), { recursive: true });
  await mkdir(path.join(root, 'files'), { recursive: true });
  const big = path.join(root, 'files', FILENAME);
  sha = await generate(big);
  await writeFile(path.join(root, 'simple', 'big', 'index.html'), `<!DOCTYPE html><a href="../../files/${FILENAME}#sha256=${sha}">${FILENAME}</a>`);
  fileIndex = pathToFileURL(path.join(root, 'simple')).href;

  const server = http.createServer((req, res) => {
    if (req.url === '/simple/big/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(`<a href="/files/${FILENAME}#sha256=${sha}">${FILENAME}</a>`);
    } else if (req.url === `/files/${FILENAME}`) {
      res.writeHead(200, { 'content-length': SIZE, 'content-type': 'application/octet-stream' });
      pipeline(createReadStream(big), res).catch(() => res.destroy());
    } else {
      res.writeHead(404).end();
    }
  });
  upstream = server;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  httpIndex = `http://127.0.0.1:${(server.address() as AddressInfo).port}/simple`;
}, 120_000);

afterAll(async () => {
  const server = upstream;
  if (server) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** A real collector, so the baseline is not inflated by garbage from generating the file. */
function collector(): (() => void) | undefined {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return undefined;
  }
}
const gc = collector();

/** Download through the proxy, discarding chunks; return the digest received and the RSS peak. */
function download(port: number, target: string, sample: () => void): Promise<{ status: number; sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: target, agent: false }, (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        res.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          bytes += chunk.length;
          if ((bytes & 0xfffff) < chunk.length) sample();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, sha256: hash.digest('hex'), bytes }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

describe('index proxy memory', () => {
  it.each([
    ['file://', () => fileIndex],
    ['http://', () => httpIndex],
  ])(
    'streams a 200 MB file from a %s upstream with bounded resident memory',
    async (label, index) => {
      const plan: LockPlan = {
        file: 'big.lock',
        indexUrl: null,
        extraIndexUrls: [],
        pipOptions: noPipOptions(),
        requirements: [{ name: 'big', rawName: 'big', version: '1.0', extras: [], marker: null, sha256: [sha], line: 1 }],
      };
      await using proxy = await startProxy({
        plan,
        upstreams: { indexUrl: index(), extraIndexUrls: [] },
        cacheDir: path.join(tmp, `cache-${label.replace(/\W/g, '')}`),
        listen: { host: '127.0.0.1', port: 0 },
        buildAllow: [],
        logger: pino({ level: process.env.PROXY_DEBUG ? 'debug' : 'silent' }),
      });
      const port = Number(new URL(proxy.address).port);
      gc?.();
      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      const sample = (): void => {
        peak = Math.max(peak, process.memoryUsage().rss);
      };
      const timer = setInterval(sample, 20);
      const started = performance.now();
      try {
        const res = await download(port, `/files/${sha}/${FILENAME}`, sample);
        expect(res.status).toBe(200);
        expect(res.bytes).toBe(SIZE);
        expect(res.sha256).toBe(sha);
      } finally {
        clearInterval(timer);
      }
      sample();
      const growth = peak - baseline;
      console.log(
        `[proxy memory] ${label} upstream: 200 MiB in ${Math.round(performance.now() - started)} ms; ` +
          `rss baseline ${(baseline / 2 ** 20).toFixed(1)} MiB, peak ${(peak / 2 ** 20).toFixed(1)} MiB, growth ${(growth / 2 ** 20).toFixed(1)} MiB` +
          (gc ? ' (after gc)' : ' (no gc available)'),
      );
      expect(growth).toBeLessThan(LIMIT);
    },
    180_000,
  );
});
