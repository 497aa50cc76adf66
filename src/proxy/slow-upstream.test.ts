import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UpstreamClient, UpstreamTooSlow } from './upstream-client.js';

// Small limits so each case takes a fraction of a second: at least 8 KiB/s over 200 ms windows,
// that is 1,638 bytes per window. The drip sends one byte every 20 ms (50 bytes/s), always well
// inside the idle timeout; the steady upstream sends 1 KiB every 20 ms (50 KiB/s).
const WINDOW_MS = 200;
const MIN_RATE = 8 * 1024;
const FILE = 'big-1.0-py3-none-any.whl';

let server: http.Server;
let base: string;

function drip(res: http.ServerResponse, chunk: Buffer, everyMs: number, total: number): void {
  let sent = 0;
  const timer = setInterval(() => {
    if (res.destroyed || sent >= total) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    res.write(chunk);
    sent += chunk.length;
  }, everyMs);
  res.once('close', () => clearInterval(timer));
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    if (req.url === `/drip/${FILE}`) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 10_000 });
      drip(res, Buffer.from('x'), 20, 10_000);
    } else if (req.url === `/steady/${FILE}`) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 40 * 1024 });
      drip(res, Buffer.alloc(1024, 1), 20, 40 * 1024);
    } else if (req.url === '/simple/drip/') {
      res.writeHead(200, { 'content-type': 'text/html' });
      drip(res, Buffer.from(' '), 20, 100_000);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const client = (timeoutMs = 5_000) =>
  new UpstreamClient({ timeoutMs, maxPageBytes: 1024 * 1024, userAgent: 'test', minBytesPerSecond: MIN_RATE, throughputWindowMs: WINDOW_MS });

/** Read the stream to its end (or error); the byte count read and the time it took. */
async function drain(stream: Readable): Promise<{ bytes: number; ms: number; error: unknown }> {
  const started = performance.now();
  let bytes = 0;
  try {
    for await (const chunk of stream) bytes += (chunk as Buffer).length;
    return { bytes, ms: performance.now() - started, error: null };
  } catch (error: unknown) {
    return { bytes, ms: performance.now() - started, error };
  }
}

describe('upstream throughput floor', () => {
  it('drops a file download that drips below the floor after one window, with the URL redacted', async () => {
    const { stream, size } = await client().openFile(`http://alice:s3cret@${base.slice('http://'.length)}/drip/${FILE}`, new AbortController().signal);
    expect(size).toBe(10_000);
    const { bytes, ms, error } = await drain(stream);
    expect(error).toBeInstanceOf(UpstreamTooSlow);
    // One window of 20 ms drips: about 10 bytes, never the whole file.
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(20);
    expect(ms).toBeGreaterThanOrEqual(WINDOW_MS - 20);
    // Ended by the floor, not by the idle timeout (5 s) or the file's end (200 s of drips).
    expect(ms).toBeLessThan(1_000);
    const message = (error as Error).message;
    expect(message).toBe(`${base}/drip/${FILE}: ${bytes} bytes in 0.2 s, below the minimum of ${MIN_RATE} bytes/s over 0.2 s; gave up`);
    expect(message).not.toContain('s3cret');
    expect(message).not.toContain('alice');
  });

  it('lets a steady download above the floor run across several windows to its end', async () => {
    const { stream } = await client().openFile(`${base}/steady/${FILE}`, new AbortController().signal);
    const { bytes, ms, error } = await drain(stream);
    expect(error).toBeNull();
    expect(bytes).toBe(40 * 1024);
    expect(ms).toBeGreaterThan(WINDOW_MS * 3);
  });

  it('bounds a dripping index page by the timeout as a whole, headers and body', async () => {
    const started = performance.now();
    await expect(client(300).fetchProject(`${base}/simple`, 'drip', new AbortController().signal)).rejects.toThrow(
      `${base}/simple/drip/: no answer within 300 ms`,
    );
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});
