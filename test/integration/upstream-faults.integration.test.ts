/**
 * Issue 10, item 3, on the real engine with real pip: an upstream that fails ends the run
 * inconclusive (exit 4), exports nothing, and the report and the terminal name the upstream, with
 * its credentials removed. The proxy's retries and pip's own (five per 502) do not multiply: a
 * file URL that failed is asked three times in the whole run.
 */
import { access, readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FixturePackage } from '../fixtures/index.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { engineAvailable, expectNoContainersLeft, runCli, type CliRun } from './helpers.js';

const exists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  );

const victim: FixturePackage = {
  name: 'upstream-victim',
  version: '1.0',
  kind: 'wheel',
  files: { 'upstream_victim/__init__.py': 'VALUE = 1\n' },
};

interface FixtureServer {
  origin: string;
  hits: string[];
  close(): Promise<void>;
}

/**
 * The fixture index over HTTP: `/simple/<project>/` and `/files/<name>` from its directory, except
 * the files `failing` names, which answer 500.
 */
async function serveIndex(dir: string, failing: string[]): Promise<FixtureServer> {
  const hits: string[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const target = req.url ?? '';
    hits.push(target);
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
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

function expectNoSecret(run: CliRun): void {
  expect(run.stdout + run.stderr + JSON.stringify(run.report)).not.toContain('secret');
}

describe.runIf(engineAvailable())('upstream faults on the real engine', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('a locked wheel whose file answers HTTP 500: exit 4, nothing exported, install.upstream-failed names the upstream, in well under 60 s', async () => {
    const index = await buildFixtureIndex([victim]);
    const wheel = index.files.find((f) => f.name === 'upstream-victim')!.filename;
    const server = await serveIndex(index.dir, [wheel]);
    const upstream = `${server.origin}/simple/`;
    const started = Date.now();
    let run: CliRun;
    try {
      run = await runCli(index.lockFile, `${server.origin.replace('://', '://user:secret@')}/simple/`);
    } finally {
      await server.close();
    }
    const seconds = (Date.now() - started) / 1000;
    expect(run.exitCode).toBe(4);
    expect(run.report.verdict).toBe('error');
    expect(run.report.exported).toBeNull();
    expect(await exists(run.output)).toBe(false);
    expect(run.report.findings.filter((f) => f.rule === 'install.upstream-failed')).toEqual([
      expect.objectContaining({
        package: 'upstream-victim',
        severity: 'high',
        action: 'warn',
        failing: false,
        message: `${wheel} could not be downloaded from ${upstream}: HTTP 500 (3 attempts)`,
        evidence: { upstream, url: `${server.origin}/files/${wheel}`, project: 'upstream-victim', filename: wheel, reason: 'HTTP 500', attempts: 3 },
      }),
    ]);
    // pip asked for the file six times (a 502 is retried five times); the upstream saw our three attempts only.
    expect(server.hits.filter((h) => h === `/files/${wheel}`)).toHaveLength(3);
    expect(run.stdout + run.stderr).toContain(`could not be downloaded from ${upstream}: HTTP 500`);
    expectNoSecret(run);
    expect(seconds).toBeLessThan(60);
  });

  it('an index that is down (a closed port): exit 3 before any container, the upstream named, the report saying why', async () => {
    const index = await buildFixtureIndex([victim]);
    const port = await closedPort();
    const upstream = `http://127.0.0.1:${port}/simple/`;
    const started = Date.now();
    const run = await runCli(index.lockFile, `http://user:secret@127.0.0.1:${port}/simple/`);
    const seconds = (Date.now() - started) / 1000;
    // Every locked project's page is read on the host before the run (to know which sdists to
    // build): an index that is down is the machine's problem, found before any container starts.
    expect(run.exitCode).toBe(3);
    expect(run.report.image).toBeNull();
    expect(run.report.exported).toBeNull();
    expect(await exists(run.output)).toBe(false);
    expect(run.report.error).toMatchObject({ code: 'upstream.unreachable' });
    expect(run.report.error?.message).toContain(`cannot read upstream-victim's page from ${upstream}`);
    expect(run.stderr).toContain(`cannot read upstream-victim's page from ${upstream}`);
    expectNoSecret(run);
    expect(seconds).toBeLessThan(60);
  });
});
