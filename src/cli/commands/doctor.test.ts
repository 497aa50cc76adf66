/**
 * `sandbox-install doctor` as printed: one line per check, a hint under each that is not ok, the
 * exit code, and --format json. Upstreams are given on the command line (temp file:// indexes), so
 * the machine's pip configuration does not decide the exit code.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { InputError } from '../../errors.js';
import { FakeEngine, type FakeRun } from '../../runtime/fake.js';
import type { CommandContext } from '../context.js';
import { renderChecks, runDoctor } from './doctor.js';

const IMAGE = 'sandbox-install:fake';

/** A port of this machine that nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const engineRun = (overrides: Partial<FakeRun> = {}): FakeRun => ({
  exitCode: 0,
  files: {},
  trees: {},
  engineVersion: { engine: 'Docker 20.10.24', api: '1.41' },
  images: {},
  ...overrides,
});

describe('sandbox-install doctor', () => {
  let work: string;
  let stdout: string[];
  let options: Record<string, unknown>;
  const ctx = (engine: FakeEngine, color = false): CommandContext => ({
    logger: pino({ level: 'silent' }),
    signal: new AbortController().signal,
    color,
    engine: () => engine,
  });

  beforeEach(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-doctor-cli-'));
    await mkdir(path.join(work, 'index'));
    const index = pathToFileURL(path.join(work, 'index')).href;
    options = { indexUrl: index, extraIndexUrl: [index.replace(/\/index$/, '/index/')], image: IMAGE, cacheDir: path.join(work, 'cache') };
    stdout = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (stdout.push(String(chunk)), true));
  });
  afterEach(async () => {
    vi.restoreAllMocks();
    await rm(work, { recursive: true, force: true });
  });

  it('engine unreachable: exit 3, its line and its hint exactly', async () => {
    expect(await runDoctor(options, ctx(new FakeEngine(engineRun({ engineDown: true }))))).toBe(3);
    const lines = stdout.join('').split('\n');
    expect(lines.slice(0, 2)).toEqual(['✗ engine       no container engine answers (fake)', '  hint: start one']);
    expect(lines[2]).toMatch(/^✓ upstream {5}file:\/\//);
  });

  it('all good but the image: one line per check, exit 0, a hint only under the warning', async () => {
    expect(await runDoctor(options, ctx(new FakeEngine(engineRun())))).toBe(0);
    const lines = stdout.join('').trimEnd().split('\n');
    expect(lines.slice(0, 3)).toEqual([
      '✓ engine       Docker 20.10.24 (API 1.41)',
      `! image        ${IMAGE} is not built yet (it is built on first use)`,
      '  hint: sandbox-install image build --bootstrap debian',
    ]);
    expect(lines.slice(3).map((l) => l.slice(0, 15))).toEqual([
      '✓ upstream     ',
      '✓ extra-index  ',
      // With --index-url, pip's own configuration is not needed: ok whatever this machine's says.
      '✓ pip-config   ',
      '✓ cache        ',
      '✓ disk         ',
    ]);
  });

  it('--format json prints the checks and the exit code, credentials removed', async () => {
    const port = await closedPort();
    const code = await runDoctor(
      { ...options, indexUrl: `http://user:secret@127.0.0.1:${port}/simple`, format: 'json' },
      ctx(new FakeEngine(engineRun({ engineDown: true }))),
    );
    expect(code).toBe(3);
    const text = stdout.join('');
    expect(text).not.toContain('secret');
    const printed = JSON.parse(text) as { checks: Array<{ name: string; status: string; detail: string }>; exitCode: number };
    expect(printed.exitCode).toBe(3);
    expect(printed.checks.map((c) => c.name)).toEqual(['engine', 'upstream', 'extra-index', 'pip-config', 'cache', 'disk']);
    // The index is down but the extra index answers: a warning.
    expect(printed.checks[1]).toMatchObject({
      status: 'warn',
      detail: `http://127.0.0.1:${port}/simple (credentials hidden) unreachable: fetch failed: connect ECONNREFUSED 127.0.0.1:${port}`,
    });
  });

  it('colours the mark only, on a colour terminal', () => {
    const check = { name: 'engine', status: 'fail', detail: 'down', hint: 'start it', required: true } as const;
    expect(renderChecks([check], true)).toBe('\x1b[31m✗\x1b[0m engine       down\n  hint: start it\n');
    expect(renderChecks([{ ...check, status: 'ok', hint: null }], false)).toBe('✓ engine       down\n');
  });

  it('escapes control characters in what it prints', () => {
    const check = { name: 'cache', status: 'warn', detail: '/tmp/\x1b[2Jx is not a directory', hint: 'remove \u202e', required: false } as const;
    expect(renderChecks([check], false)).toBe('! cache        /tmp/\\x1b[2Jx is not a directory\n  hint: remove \\u202e\n');
  });

  it('a malformed --index-url is bad input', async () => {
    await expect(runDoctor({ ...options, indexUrl: 'not a url' }, ctx(new FakeEngine(engineRun())))).rejects.toBeInstanceOf(InputError);
  });
});
