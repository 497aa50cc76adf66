#!/usr/bin/env node
/**
 * `npm run bench`: sandbox-install against plain pip, side by side, on this machine.
 *
 *   A       python3 -m venv v && v/bin/pip install --require-hashes --no-cache-dir -r <lock>
 *   B       sandbox-install <lock> -o <dir>   (full monitoring, as a user runs it; download cache warm)
 *   B-cold  the first B run of a lock, with an empty download cache (the image present)
 *
 * Both install from the same index on loopback. Pairs alternate their order (AB, BA, AB, ...), and
 * each lock size reports medians and the per-pair ratio B/A. By default the bench builds its own
 * packages (bench/packages.mjs) and serves them (bench/serve.mjs); `--index-url URL --lock FILE ...`
 * runs real locks instead. It also measures the fixed overhead on an empty lock by phase, the
 * proxy's throughput and peak RSS serving a 200 MB wheel, and the per-package slope of A and B.
 * Results: bench/RESULTS.md and bench/chart.svg (see bench/results.mjs).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CLI, logger, ROOT, timed } from './common.mjs';
import { buildBenchIndex } from './packages.mjs';
import { writeResults } from './results.mjs';
import { serveIndex } from './serve.mjs';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '5,50,125' },
    reps: { type: 'string', default: '3' },
    'index-url': { type: 'string' },
    lock: { type: 'string', multiple: true },
    out: { type: 'string', default: path.join(ROOT, 'bench') },
    'skip-proxy': { type: 'boolean', default: false },
  },
});
const reps = Number(values.reps);
const real = values.lock !== undefined;
if (real && !values['index-url']) throw new Error('--lock needs --index-url (the index both A and B install from)');

const log = logger('bench');

const work = await mkdtemp(path.join(os.tmpdir(), 'sandbox-install-bench-'));
const cleanups = [() => rm(work, { recursive: true, force: true })];
process.once('SIGINT', async () => {
  for (const c of cleanups.reverse()) await c();
  process.exit(130);
});

/** A: a fresh venv and plain pip, no cache. */
async function runA(lock, indexUrl) {
  const venv = path.join(work, 'venv');
  await rm(venv, { recursive: true, force: true });
  const seconds = await timed('bash', [
    '-c',
    `python3 -m venv "$1" && "$1/bin/pip" install -q --require-hashes --no-cache-dir --disable-pip-version-check --index-url "$2" -r "$3"`,
    'bench',
    venv,
    indexUrl,
    lock,
  ]);
  await rm(venv, { recursive: true, force: true });
  return seconds;
}

/** B: the main job as a user runs it; returns the wall time and the report's phase timings. */
async function runB(lock, indexUrl, cacheDir) {
  const out = path.join(work, 'site-packages');
  const report = path.join(work, 'report.json');
  await rm(out, { recursive: true, force: true });
  const seconds = await timed('node', [CLI, lock, '--index-url', indexUrl, '-o', out, '--report', report, '--cache-dir', cacheDir, '-q']);
  const { timings, verdict } = JSON.parse(await readFile(report, 'utf8'));
  if (verdict !== 'pass') throw new Error(`B on ${lock}: verdict ${verdict}`);
  await rm(out, { recursive: true, force: true });
  return { seconds, timings };
}

async function main() {
  const started = new Date();
  log('engine and image');
  await timed('bash', [path.join(ROOT, 'scripts', 'ensure-engine.sh')]);
  await timed('node', [CLI, 'image', 'build', '--bootstrap', 'debian']);

  let indexUrl = values['index-url'];
  let locks;
  let mix = null;
  if (real) {
    locks = Object.fromEntries(values.lock.map((file) => [path.resolve(file), path.resolve(file)]));
  } else {
    const sizes = values.sizes.split(',').map(Number);
    log(`building ${Math.max(...sizes)} packages`);
    const built = await buildBenchIndex(path.join(work, 'index'), Math.max(...sizes), sizes);
    mix = Object.fromEntries(sizes.map((s) => [s, built.mix(s)]));
    const server = await serveIndex(path.join(work, 'index'));
    cleanups.push(server.close);
    indexUrl = server.url;
    locks = { ...built.locks };
  }
  const cache = path.join(work, 'cache');
  await mkdir(cache, { recursive: true });

  // The fixed overhead: the empty lock, B only (A has nothing to install but the venv).
  const empty = real ? null : locks[0];
  const overhead = [];
  if (empty) {
    log('empty lock');
    await runB(empty, indexUrl, cache); // warm-up: the image and the engine's page cache
    for (let i = 0; i < reps; i += 1) overhead.push(await runB(empty, indexUrl, cache));
  }

  const rows = [];
  for (const [key, lock] of Object.entries(locks)) {
    if (!real && key === '0') continue;
    const size = real ? (await readFile(lock, 'utf8')).split('\n').filter((l) => /^[A-Za-z0-9]/.test(l)).length : Number(key);
    log(`lock of ${size} packages: B-cold`);
    const coldCache = path.join(work, `cache-cold-${size}`);
    const cold = await runB(lock, indexUrl, coldCache);
    await rm(coldCache, { recursive: true, force: true });
    await runB(lock, indexUrl, cache); // warms the shared cache for this lock
    const pairs = [];
    for (let i = 0; i < reps; i += 1) {
      log(`lock of ${size} packages: pair ${i + 1} of ${reps}`);
      const order = i % 2 === 0 ? ['A', 'B'] : ['B', 'A'];
      const pair = {};
      for (const which of order) pair[which] = which === 'A' ? await runA(lock, indexUrl) : await runB(lock, indexUrl, cache);
      pairs.push({ a: pair.A, b: pair.B.seconds, timings: pair.B.timings, ratio: pair.B.seconds / pair.A });
    }
    rows.push({ lock: real ? path.basename(lock) : `generated ${size}`, size, mix: mix?.[size] ?? null, cold, pairs });
  }

  let proxy = null;
  if (!values['skip-proxy']) {
    log('proxy: a 200 MB wheel');
    const output = await new Promise((resolve, reject) =>
      execFile('node', [path.join(ROOT, 'bench', 'proxy-throughput.mjs')], { maxBuffer: 1024 ** 2 }, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      ),
    );
    proxy = JSON.parse(output.trim().split('\n').at(-1));
  }

  const result = { started: started.toISOString(), reps, indexUrl: real ? indexUrl : 'generated packages, served on loopback', real, overhead, rows, proxy };
  await writeResults(result, values.out);
  log(`wrote ${path.join(values.out, 'RESULTS.md')} and chart.svg`);
}

try {
  await main();
} finally {
  for (const c of cleanups.reverse()) await c();
}
