/**
 * The proxy serving one 200 MB wheel from an HTTP upstream on loopback, cold (downloaded, verified
 * and cached, then served) and warm (served from the verified cache): throughput and the process's
 * resident memory. Run as its own process so its RSS is the proxy's alone; prints one JSON line.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pino } from 'pino';
import { startProxy } from '../dist/proxy/index.js';
import { noPipOptions } from '../dist/lock/pip-options.js';

const SIZE = 200 * 1024 * 1024;
const FILENAME = 'big-1.0-py3-none-any.whl';

async function generate(file) {
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

function download(port, target, sample) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: target, agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (chunk) => {
          bytes += chunk.length;
          sample();
        });
        res.on('end', () => resolve({ status: res.statusCode, bytes }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

const tmp = await mkdtemp(path.join(os.tmpdir(), 'sandbox-install-bench-proxy-'));
try {
  await mkdir(path.join(tmp, 'files'));
  const big = path.join(tmp, 'files', FILENAME);
  const sha = await generate(big);
  const upstream = http.createServer((req, res) => {
    if (req.url === '/simple/big/') res.writeHead(200, { 'content-type': 'text/html' }).end(`<a href="/files/${FILENAME}#sha256=${sha}">${FILENAME}</a>`);
    else if (req.url === `/files/${FILENAME}`) {
      res.writeHead(200, { 'content-length': SIZE, 'content-type': 'application/octet-stream' });
      pipeline(createReadStream(big), res).catch(() => res.destroy());
    } else res.writeHead(404).end();
  });
  await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const plan = {
    file: 'big.lock',
    indexUrl: null,
    extraIndexUrls: [],
    pipOptions: noPipOptions(),
    requirements: [{ name: 'big', rawName: 'big', version: '1.0', extras: [], marker: null, sha256: [sha], line: 1 }],
  };
  const proxy = await startProxy({
    plan,
    upstreams: { indexUrl: `http://127.0.0.1:${upstream.address().port}/simple`, extraIndexUrls: [] },
    cacheDir: path.join(tmp, 'cache'),
    listen: { host: '127.0.0.1', port: 0 },
    buildAllow: [],
    logger: pino({ level: 'silent' }),
  });
  const port = Number(new URL(proxy.address).port);
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sample = () => {
    peak = Math.max(peak, process.memoryUsage().rss);
  };
  const timer = setInterval(sample, 20);
  const runs = [];
  for (const label of ['cold', 'warm']) {
    const started = performance.now();
    const res = await download(port, `/files/${sha}/${FILENAME}`, sample);
    const seconds = (performance.now() - started) / 1000;
    if (res.status !== 200 || res.bytes !== SIZE) throw new Error(`${label}: status ${res.status}, ${res.bytes} bytes`);
    runs.push({ label, seconds, mbPerSecond: SIZE / 2 ** 20 / seconds });
  }
  clearInterval(timer);
  await proxy.close();
  upstream.closeAllConnections();
  upstream.close();
  process.stdout.write(`${JSON.stringify({ sizeMiB: SIZE / 2 ** 20, runs, rssBaselineMiB: baseline / 2 ** 20, rssPeakMiB: peak / 2 ** 20 })}\n`);
} finally {
  await rm(tmp, { recursive: true, force: true });
}
