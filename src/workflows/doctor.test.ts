/**
 * doctor on the fake engine: each check's line and hint, and the exit code (3 only when a required
 * check fails). No network: upstreams are temp file:// directories, a closed port of this machine,
 * or an HTTP server on 127.0.0.1; pip's configuration is injected.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InterruptedError } from '../errors.js';
import { FakeEngine, type FakeRun } from '../runtime/fake.js';
import { BUILD_PATH_LABEL, PYTHON_LABEL } from '../runtime/image.js';
import type { EngineVersion } from '../runtime/port.js';
import {
  cacheSize,
  checkPipConfig,
  diskStatus,
  doctor,
  formatAge,
  formatBytes,
  pipIndexSources,
  type DoctorCheck,
  type DoctorDeps,
  type DoctorRequest,
} from './doctor.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-12-10T12:00:00Z');
const IMAGE = 'sandbox-install:fake';

const engineRun = (overrides: Partial<FakeRun> = {}): FakeRun => ({
  exitCode: 0,
  files: {},
  trees: {},
  engineVersion: { engine: 'Docker 20.10.24', api: '1.41' },
  images: {
    [IMAGE]: {
      created: new Date(NOW - 3 * DAY - 5000).toISOString(),
      labels: { [BUILD_PATH_LABEL]: 'bootstrap-debian', [PYTHON_LABEL]: '3.11.2' },
      sizeBytes: 198_600_000,
    },
  },
  ...overrides,
});

/** A port of this machine that nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const byName = (checks: DoctorCheck[], name: string) => checks.filter((c) => c.name === name);

describe('doctor', () => {
  let work: string;
  let index: string;
  let request: DoctorRequest;
  let deps: (engine: FakeEngine, extra?: Partial<DoctorDeps>) => DoctorDeps;

  beforeEach(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-doctor-'));
    index = path.join(work, 'index');
    await mkdir(index);
    request = { indexUrl: pathToFileURL(index).href, extraIndexUrls: [], image: IMAGE, cacheDir: path.join(work, 'cache') };
    deps = (engine, extra = {}) => ({
      engine,
      signal: new AbortController().signal,
      env: {},
      readPipConfig: async () => null,
      now: () => NOW,
      ...extra,
    });
  });
  afterEach(async () => {
    await rm(work, { recursive: true, force: true });
  });

  it('all good with a file:// index: every check in order, exit 0', async () => {
    const { checks, exitCode } = await doctor(request, deps(new FakeEngine(engineRun())));
    expect(exitCode).toBe(0);
    expect(checks.map((c) => c.name)).toEqual(['engine', 'image', 'upstream', 'pip-config', 'cache', 'disk']);
    expect(checks.slice(0, 5)).toEqual([
      { name: 'engine', status: 'ok', detail: 'Docker 20.10.24 (API 1.41)', hint: null, required: true },
      { name: 'image', status: 'ok', detail: `${IMAGE}: 3 days old, 198.6 MB, built by bootstrap-debian, Python 3.11.2`, hint: null, required: false },
      { name: 'upstream', status: 'ok', detail: `${pathToFileURL(index).href}: a readable directory`, hint: null, required: true },
      {
        name: 'pip-config',
        status: 'ok',
        detail: 'no pip configuration sets an index (no config file found); --index-url is used',
        hint: null,
        required: false,
      },
      { name: 'cache', status: 'ok', detail: `${path.join(work, 'cache')} (not created yet: made on first use)`, hint: null, required: false },
    ]);
    // The cache does not exist yet: its free space is measured on the nearest directory that does.
    expect(checks[5]).toMatchObject({ name: 'disk', status: 'ok', required: true, hint: null });
    expect(checks[5]?.detail).toMatch(new RegExp(`^cache ${work}: \\d+\\.\\d [MG]B free; temp ${tmpdir()}: \\d+\\.\\d [MG]B free$`));
  });

  it('engine unreachable: exit 3, the error and its hint, and no image check', async () => {
    const { checks, exitCode } = await doctor(request, deps(new FakeEngine(engineRun({ engineDown: true }))));
    expect(exitCode).toBe(3);
    expect(checks[0]).toEqual({ name: 'engine', status: 'fail', detail: 'no container engine answers (fake)', hint: 'start one', required: true });
    expect(byName(checks, 'image')).toEqual([]);
  });

  it('an engine that does not answer fails within the limit, with the hung-engine hint', async () => {
    class HungEngine extends FakeEngine {
      override version(): Promise<EngineVersion> {
        return new Promise(() => {});
      }
    }
    const started = performance.now();
    const { checks, exitCode } = await doctor(request, deps(new HungEngine(engineRun()), { timeoutMs: 100 }));
    expect(performance.now() - started).toBeLessThan(2000);
    expect(exitCode).toBe(3);
    expect(checks[0]).toEqual({
      name: 'engine',
      status: 'fail',
      detail: 'container engine: no answer within 100 ms',
      hint: "an engine that does not answer in time may be hung: restart dockerd (or Podman's socket) and check DOCKER_HOST",
      required: true,
    });
  });

  it('image missing: a warning with the build command, exit 0', async () => {
    const { checks, exitCode } = await doctor(request, deps(new FakeEngine(engineRun({ images: {} }))));
    expect(exitCode).toBe(0);
    expect(byName(checks, 'image')).toEqual([
      {
        name: 'image',
        status: 'warn',
        detail: `${IMAGE} is not built yet (it is built on first use)`,
        hint: 'sandbox-install image build --bootstrap debian',
        required: false,
      },
    ]);
  });

  it('an image built before the build-path label says so', async () => {
    const images = { [IMAGE]: { created: new Date(NOW - 90 * 60_000).toISOString(), labels: {}, sizeBytes: 1_500_000_000 } };
    const { checks } = await doctor(request, deps(new FakeEngine(engineRun({ images }))));
    expect(byName(checks, 'image')[0]?.detail).toBe(
      `${IMAGE}: 1 hour old, 1.5 GB, build path unknown (built before labels), Python version unknown (built before its label)`,
    );
  });

  it('upstream unreachable (a closed port): exit 3, the URL and --index-url in the hint', async () => {
    const port = await closedPort();
    const url = `http://127.0.0.1:${port}/simple`;
    const { checks, exitCode } = await doctor({ ...request, indexUrl: url }, deps(new FakeEngine(engineRun())));
    expect(exitCode).toBe(3);
    expect(byName(checks, 'upstream')).toEqual([
      {
        name: 'upstream',
        status: 'fail',
        detail: `${url} unreachable: fetch failed: connect ECONNREFUSED 127.0.0.1:${port}`,
        hint: `check that ${url} is up and is the index you mean, or pass another with --index-url <url>`,
        required: true,
      },
    ]);
  });

  it('upstream a missing file:// directory: exit 3', async () => {
    const missing = pathToFileURL(path.join(work, 'nowhere')).href;
    const { checks, exitCode } = await doctor({ ...request, indexUrl: missing }, deps(new FakeEngine(engineRun())));
    expect(exitCode).toBe(3);
    expect(byName(checks, 'upstream')[0]).toMatchObject({ status: 'fail', detail: `${missing}: no such directory` });
  });

  it('an index that is down while an extra index answers is a warning, not exit 3', async () => {
    const missing = pathToFileURL(path.join(work, 'nowhere')).href;
    const { checks, exitCode } = await doctor(
      { ...request, indexUrl: missing, extraIndexUrls: [pathToFileURL(index).href] },
      deps(new FakeEngine(engineRun())),
    );
    expect(exitCode).toBe(0);
    expect(checks.filter((c) => c.name === 'upstream' || c.name === 'extra-index').map((c) => [c.name, c.status, c.hint])).toEqual([
      [
        'upstream',
        'warn',
        `check that ${missing} is up and is the index you mean, or pass another with --index-url <url> (another upstream answers, so runs still work)`,
      ],
      ['extra-index', 'ok', null],
    ]);
  });

  it('credentials in an index URL never show, whether it answers or not', async () => {
    const port = await closedPort();
    const down = await doctor({ ...request, indexUrl: `http://user:secret@127.0.0.1:${port}/simple` }, deps(new FakeEngine(engineRun())));
    expect(JSON.stringify(down)).not.toContain('secret');
    expect(byName(down.checks, 'upstream')[0]?.detail).toBe(
      `http://127.0.0.1:${port}/simple (credentials hidden) unreachable: fetch failed: connect ECONNREFUSED 127.0.0.1:${port}`,
    );

    // An index that answers: asked for pip's page, with the credentials sent as a header, not shown.
    const seen: Array<{ url?: string; authorization?: string }> = [];
    const server = http.createServer((req, res) => {
      seen.push({ url: req.url, authorization: req.headers.authorization });
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const live = `http://127.0.0.1:${(server.address() as AddressInfo).port}/simple`;
      const up = await doctor({ ...request, indexUrl: live.replace('//', '//user:secret@') }, deps(new FakeEngine(engineRun())));
      expect(JSON.stringify(up)).not.toContain('secret');
      expect(byName(up.checks, 'upstream')[0]).toMatchObject({ status: 'ok', detail: `${live} (credentials hidden) answers (no page for pip)` });
      expect(seen).toEqual([{ url: '/simple/pip/', authorization: `Basic ${Buffer.from('user:secret').toString('base64')}` }]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('says where pip configuration sets the index, from the files pip reads', async () => {
    const home = path.join(work, 'home');
    const userConf = path.join(home, '.config', 'pip', 'pip.conf');
    const files: Record<string, string> = { [userConf]: `[global]\nindex-url = ${pathToFileURL(index).href}\n` };
    const { checks, exitCode } = await doctor(
      { ...request, indexUrl: undefined },
      deps(new FakeEngine(engineRun()), { env: { HOME: home }, readPipConfig: async (file) => files[file] ?? null }),
    );
    expect(exitCode).toBe(0);
    expect(byName(checks, 'pip-config')[0]).toEqual({ name: 'pip-config', status: 'ok', detail: `index-url from ${userConf}`, hint: null, required: false });
    // The index pip's configuration names is the one checked.
    expect(byName(checks, 'upstream')[0]?.detail).toBe(`${pathToFileURL(index).href}: a readable directory`);
  });

  it('stops with the interrupt when the signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort(new InterruptedError('SIGINT'));
    await expect(doctor(request, deps(new FakeEngine(engineRun()), { signal: controller.signal }))).rejects.toBeInstanceOf(InterruptedError);
  });

  it('measures the cache in MB', async () => {
    const cache = path.join(work, 'cache');
    await mkdir(path.join(cache, 'sha256'), { recursive: true });
    await writeFile(path.join(cache, 'sha256', 'a'), Buffer.alloc(1_500_000));
    await writeFile(path.join(cache, 'sha256', 'b'), Buffer.alloc(250_000));
    const { checks } = await doctor(request, deps(new FakeEngine(engineRun())));
    expect(byName(checks, 'cache')[0]).toEqual({ name: 'cache', status: 'ok', detail: `${cache}: 1.8 MB in 2 files`, hint: null, required: false });
  });

  it('a cache path that is a file is a warning with a hint', async () => {
    await writeFile(path.join(work, 'cache'), 'not a directory');
    const { checks, exitCode } = await doctor(request, deps(new FakeEngine(engineRun())));
    expect(exitCode).toBe(0);
    expect(byName(checks, 'cache')[0]).toEqual({
      name: 'cache',
      status: 'warn',
      detail: `${path.join(work, 'cache')} is not a directory`,
      hint: `remove ${path.join(work, 'cache')}, or pass --cache-dir <dir>`,
      required: false,
    });
  });
});

describe('doctor helpers', () => {
  it('cacheSize stops at its file cap and says it did', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sandbox-install-cache-'));
    try {
      await mkdir(path.join(dir, 'sub'));
      for (const name of ['a', 'b', 'sub/c']) await writeFile(path.join(dir, name), 'xx');
      const signal = new AbortController().signal;
      expect(await cacheSize(dir, { maxFiles: 10, until: Infinity, now: Date.now, signal })).toEqual({ bytes: 6, files: 3, complete: true });
      expect(await cacheSize(dir, { maxFiles: 2, until: Infinity, now: Date.now, signal })).toEqual({ bytes: 4, files: 2, complete: false });
      expect(await cacheSize(dir, { maxFiles: 10, until: 0, now: () => 1, signal })).toEqual({ bytes: 0, files: 0, complete: false });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('pip configuration: the last layer to set a key wins, files then PIP_ variables', () => {
    const files = [
      { path: '/etc/pip.conf', text: '[global]\nindex-url = https://a.test/simple\nextra-index-url = https://b.test/simple\n' },
      { path: '/home/u/.config/pip/pip.conf', text: '[install]\nindex_url = https://c.test/simple\n' },
    ];
    expect(pipIndexSources(files, { PIP_EXTRA_INDEX_URL: 'https://d.test/simple', PIP_CERT: '/x' })).toEqual({
      'index-url': '/home/u/.config/pip/pip.conf',
      'extra-index-url': 'PIP_EXTRA_INDEX_URL',
    });
    expect(pipIndexSources([{ path: '/etc/pip.conf', text: '[global]\ncert = /x\n' }], { PIP_FIND_LINKS: '/opt/wheels' })).toEqual({});
  });

  it('pip configuration that sets no index is a warning with a hint, unless --index-url is given', () => {
    const files = [{ path: '/etc/pip.conf', text: '[global]\ncert = /x\n' }];
    expect(checkPipConfig({ extraIndexUrls: [] }, files, {})).toEqual({
      status: 'warn',
      detail: 'no pip configuration sets an index (read: /etc/pip.conf); the default index is used',
      hint: 'pass --index-url <url>, or set one for pip and sandbox-install alike: pip config set global.index-url <url>',
    });
    expect(checkPipConfig({ indexUrl: 'file:///i', extraIndexUrls: [] }, files, {}).status).toBe('ok');
    expect(checkPipConfig({ extraIndexUrls: [] }, [], { PIP_EXTRA_INDEX_URL: 'https://d.test/simple' })).toEqual({
      status: 'ok',
      detail: 'extra-index-url from PIP_EXTRA_INDEX_URL; index-url not set (the default, https://pypi.org/simple)',
      hint: null,
    });
    expect(checkPipConfig({ indexUrl: 'file:///i', extraIndexUrls: [] }, [], { PIP_INDEX_URL: 'https://d.test/simple' }).detail).toBe(
      'index-url from PIP_INDEX_URL, overridden by --index-url',
    );
  });

  it('free disk: fail under 200 MB, warn under 2 GB', () => {
    expect([199e6, 200e6, 1.99e9, 2e9].map(diskStatus)).toEqual(['fail', 'warn', 'warn', 'ok']);
  });

  it('ages and sizes read as people say them', () => {
    expect([-1, 59_000, 60_000, 3_599_999, 3_600_000, 47 * 3_600_000, 2 * DAY, NaN].map(formatAge)).toEqual([
      'age unknown',
      'less than a minute old',
      '1 minute old',
      '59 minutes old',
      '1 hour old',
      '47 hours old',
      '2 days old',
      'age unknown',
    ]);
    expect([0, 39_300_000, 999_999_999, 76_700_000_000].map(formatBytes)).toEqual(['0.0 MB', '39.3 MB', '1000.0 MB', '76.7 GB']);
  });
});
