#!/usr/bin/env node
/**
 * `npm run sweep`: the whole mirror as a benchmark of false positives. Lists every project of the
 * mirror's simple indexes, resolves them on the host in groups (newest version each, wheels only),
 * writes each group's lock with the hash of the file pip chose, installs each lock with
 * `sandbox-install install` under the default policy, and writes bench/SWEEP.md and
 * bench/sweep-results.json: projects covered and skipped, distributions installed, each one with a
 * failing finding and its trigger, conflicts between distributions, warnings, run times.
 *
 *   node bench/sweep.mjs [--projects a,b,c | --limit N] [--group-size 40] [--work DIR [--resume] [--resolve-only]]
 *                        [--index-url URL] [--extra-index-url URL ...] [--policy default] [--out bench]
 *
 * Each install runs under `flock /tmp/sandbox-docker.lock` (the engine is shared). The work dir
 * keeps the plan (plan.json: the groups, their locks, the skipped projects), each run's lock,
 * report and time; `--resume` reuses them, `--resolve-only` writes the plan and runs nothing. The
 * pure parts are in bench/sweep-lib.mjs.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { escapeControl } from '../dist/report/escape.js';
import { CLI, logger, ROOT, run } from './common.mjs';
import { machine } from './results.mjs';
import {
  fileOverlaps,
  conflictSets,
  lockFromPipReport,
  parseSimpleIndex,
  pipReason,
  rerunId,
  rerunPlan,
  readRunReport,
  renderMarkdown,
  resolveGroups,
  summarize,
} from './sweep-lib.mjs';

const DEFAULT_INDEXES = ['/opt/pypi/simple', '/opt/pypi-more/simple'].filter((dir) => existsSync(dir)).map((dir) => `file://${dir}`);
const DOCKER_LOCK = '/tmp/sandbox-docker.lock';
/** Rounds of runs at most: the first, then those without what failed or in halves (bench/sweep-lib.mjs rerunPlan). */
const MAX_ROUNDS = 4;

/**
 * pip's environment variables switched off beside its config files: this machine sets
 * PIP_FIND_LINKS, which made pip pick wheels from a directory no index lists (the tool's proxy,
 * rightly, serves only what the upstreams list).
 */
const NO_PIP_ENV = Object.fromEntries(
  Object.keys(process.env)
    .filter((k) => k.startsWith('PIP_') && k !== 'PIP_CONFIG_FILE')
    .map((k) => [k, undefined]),
);

const { values } = parseArgs({
  options: {
    'index-url': { type: 'string', default: DEFAULT_INDEXES[0] },
    'extra-index-url': { type: 'string', multiple: true, default: DEFAULT_INDEXES.slice(1) },
    projects: { type: 'string' },
    limit: { type: 'string' },
    'group-size': { type: 'string', default: '40' },
    policy: { type: 'string', default: 'default' },
    timeout: { type: 'string' },
    work: { type: 'string' },
    'cache-dir': { type: 'string' },
    resume: { type: 'boolean', default: false },
    'resolve-only': { type: 'boolean', default: false },
    out: { type: 'string', default: path.join(ROOT, 'bench') },
    python: { type: 'string', default: 'python3.11' },
  },
});
if (!values['index-url']) throw new Error('no mirror: pass --index-url (the defaults, /opt/pypi/simple and /opt/pypi-more/simple, do not exist here)');
if (values.resume && !values.work) throw new Error('--resume needs --work DIR (the work dir of the sweep to resume)');
if (values['resolve-only'] && !values.work) throw new Error('--resolve-only needs --work DIR (where the plan is kept)');
const indexes = [values['index-url'], ...values['extra-index-url']];
const indexArgs = ['--index-url', indexes[0], ...indexes.slice(1).flatMap((u) => ['--extra-index-url', u])];
const positive = (option) => {
  const n = Number(values[option]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${option} takes a whole number of at least 1, not ${values[option]}`);
  return n;
};
const groupSize = positive('group-size');
const limit = values.limit === undefined ? null : positive('limit');
const log = logger('sweep');

/** The projects a PEP 503 index lists: its root page, else (a file index without one) its directory. */
async function listIndex(url) {
  if (!url.startsWith('file://')) {
    const response = await fetch(url.endsWith('/') ? url : `${url}/`);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return parseSimpleIndex(await response.text());
  }
  const dir = fileURLToPath(url);
  const page = path.join(dir, 'index.html');
  if (existsSync(page)) return parseSimpleIndex(await readFile(page, 'utf8'));
  return parseSimpleIndex((await readdir(dir)).map((name) => `<a href="${name}/">${name}</a>`).join('\n'));
}

/** The sha256-pinned resolution of `projects` by pip on the host, and the files its wheels share. */
async function resolve(projects, dir) {
  const reportFile = path.join(dir, 'pip-report.json');
  await rm(reportFile, { force: true });
  const pip = await run(
    values.python,
    [
      '-I',
      '-m',
      'pip',
      'install',
      '--dry-run',
      '--ignore-installed',
      '--quiet',
      '--disable-pip-version-check',
      '--report',
      reportFile,
      ...indexArgs,
      '--only-binary',
      ':all:',
      ...projects,
    ],
    { env: NO_PIP_ENV },
  );
  if (pip.code !== 0) return { ok: false, reason: pipReason(pip.stderr) };
  let lock;
  try {
    lock = lockFromPipReport(JSON.parse(await readFile(reportFile, 'utf8')));
  } catch (error) {
    return { ok: false, reason: error instanceof Error ? error.message : String(error) };
  }
  return { ok: true, lock, overlaps: await wheelOverlaps(lock.dists) };
}

/** Entries of each locked wheel that is a local file (the zip's central directory only), then fileOverlaps. */
async function wheelOverlaps(dists) {
  const local = dists.filter((d) => d.url.startsWith('file://') && d.filename.endsWith('.whl')).map((d) => ({ name: d.name, file: fileURLToPath(d.url) }));
  if (local.length < 2) return [];
  const script = [
    'import json, sys, zipfile',
    'out = {}',
    'for item in json.load(sys.stdin):',
    '    try:',
    '        with zipfile.ZipFile(item["file"]) as z:',
    '            out[item["name"]] = z.namelist()',
    '    except (OSError, zipfile.BadZipFile):',
    '        out[item["name"]] = []  # the tool judges a wheel it cannot read',
    'json.dump(out, sys.stdout)',
  ].join('\n');
  const listing = await run('python3', ['-I', '-S', '-c', script], { input: JSON.stringify(local) });
  if (listing.code !== 0) throw new Error(`listing the wheels of ${local.map((d) => d.name).join(', ')} failed: ${listing.stderr.trim().split('\n').at(-1)}`);
  const listed = JSON.parse(listing.stdout);
  return fileOverlaps(Object.entries(listed).map(([name, entries]) => ({ name, entries })));
}

/**
 * Install one group's lock with the tool (under the engine's lock), its JSON report in the work
 * dir; with --resume, a group whose report and timing are there is read, not run again.
 */
async function runGroup(g, work, cache) {
  const lockFile = path.join(work, `${g.id}.lock.txt`);
  const reportFile = path.join(work, `${g.id}.report.json`);
  const runFile = path.join(work, `${g.id}.run.json`);
  await writeFile(lockFile, `# sweep ${g.id}: ${g.projects.join(', ')}\n${g.lock}`);
  let ran;
  if (values.resume && existsSync(reportFile) && existsSync(runFile)) {
    ran = JSON.parse(await readFile(runFile, 'utf8'));
    log(`${g.id}: kept from the resumed sweep`);
  } else {
    await rm(reportFile, { force: true });
    const output = path.join(work, `${g.id}.site-packages`);
    const result = await run(
      'flock',
      [
        DOCKER_LOCK,
        'node',
        CLI,
        'install',
        lockFile,
        '-o',
        output,
        ...indexArgs,
        '--policy',
        values.policy,
        '--report',
        reportFile,
        '--cache-dir',
        cache,
        ...(values.timeout ? ['--timeout', values.timeout] : []),
        '-q',
      ],
      { env: NO_PIP_ENV },
    );
    await rm(output, { recursive: true, force: true });
    ran = { exitCode: result.code, seconds: result.seconds, stderr: result.stderr.slice(-2000) };
    await writeFile(runFile, `${JSON.stringify(ran, null, 2)}\n`);
  }
  const report = existsSync(reportFile) ? JSON.parse(await readFile(reportFile, 'utf8')) : null;
  const read = report
    ? readRunReport(report, { overlaps: g.overlaps, escape: escapeControl })
    : {
        verdict: null,
        seconds: null,
        installed: [],
        failing: [],
        conflicts: conflictSets(g.overlaps),
        warnings: {},
        error: `no report (exit ${ran.exitCode}): ${ran.stderr.trim().split('\n').at(-1) ?? ''}`,
      };
  const seconds = read.seconds ?? ran.seconds;
  log(`${g.id}: ${read.verdict ?? 'no verdict'} in ${seconds.toFixed(1)} s (${ran.seconds.toFixed(1)} s wall), ${read.failing.length} failing findings`);
  return { id: g.id, projects: g.projects, locked: g.dists.length, exitCode: ran.exitCode, ...read, seconds, wallSeconds: ran.seconds };
}

/**
 * The next round's runs for a group that did not pass (rerunPlan): each part resolved again,
 * split in halves as in the first round where it does not resolve or pulls in what failed; a
 * distribution that cannot be resolved without what failed is left out.
 */
async function rerunsOf(g, ran, work, round) {
  const plan = rerunPlan(ran, g.projects);
  if (!plan) return [];
  const bad = new Set(plan.bad);
  const scratch = path.join(work, 'resolve');
  const avoiding = async (part) => {
    const answer = await resolve(part, scratch);
    const pulled = answer.ok ? answer.lock.dists.filter((d) => bad.has(d.name)).map((d) => d.name) : [];
    return pulled.length > 0 ? { ok: false, reason: `pulls in ${pulled.join(', ')}` } : answer;
  };
  const parts = [];
  for (const part of plan.parts) parts.push(...(await resolveGroups(part, part.length, avoiding)).groups);
  const runs = parts.map((part, k) => ({
    id: rerunId(g.id, round, k, parts.length),
    projects: part.projects,
    dists: part.lock.dists,
    overlaps: part.overlaps,
    lock: part.lock.text,
  }));
  const asked = plan.parts.reduce((sum, p) => sum + p.length, 0);
  const kept = runs.reduce((sum, r) => sum + r.projects.length, 0);
  log(
    plan.kind === 'without'
      ? `${g.id}: ${kept} of the ${asked} distributions that did not fail run again in ${runs.length} run(s), without ${plan.bad.join(', ')}`
      : `${g.id}: ${ran.verdict === 'error' ? 'no verdict of its own' : 'a failing finding names no package'}; its ${asked} projects run again in ${runs.length} parts`,
  );
  return runs;
}

async function gitCommit() {
  const head = await run('git', ['-C', ROOT, 'rev-parse', '--short=12', 'HEAD']);
  const dirty = await run('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']);
  return head.code === 0 ? `${head.stdout.trim()}${dirty.stdout.trim() ? ' (with uncommitted changes)' : ''}` : 'unknown';
}

async function main() {
  const date = new Date().toISOString();
  const work = values.work ? path.resolve(values.work) : await mkdtemp(path.join(os.tmpdir(), 'sandbox-install-sweep-'));
  await mkdir(work, { recursive: true });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, async () => {
      if (!values.work) await rm(work, { recursive: true, force: true });
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }
  const cache = values['cache-dir'] ?? path.join(work, 'cache');
  log(`work dir ${work}`);
  try {
    const listed = [...new Set((await Promise.all(indexes.map(listIndex))).flat())].sort();
    let projects = listed;
    let subset = null;
    if (values.projects) {
      projects = values.projects
        .split(',')
        .map((p) =>
          p
            .trim()
            .toLowerCase()
            .replace(/[-_.]+/g, '-'),
        )
        .filter(Boolean);
      subset = `--projects ${projects.join(',')}`;
    }
    if (limit !== null) {
      projects = projects.slice(0, limit);
      subset = `${subset ? `${subset} ` : ''}--limit ${limit}`;
    }
    log(`${listed.length} projects listed, ${projects.length} to sweep`);

    // 1. Resolve, or reuse the plan of the sweep being resumed.
    const planFile = path.join(work, 'plan.json');
    let plan;
    const resolveStarted = performance.now();
    if (values.resume && existsSync(planFile)) {
      plan = JSON.parse(await readFile(planFile, 'utf8'));
      if (JSON.stringify(plan.projects) !== JSON.stringify(projects) || plan.groupSize !== groupSize)
        throw new Error(`${planFile} is for other projects or another group size`);
      log(`resuming: ${plan.groups.length} groups from ${planFile}`);
    } else {
      const scratch = path.join(work, 'resolve');
      await mkdir(scratch, { recursive: true });
      const apart = [];
      const resolved = await resolveGroups(
        projects,
        groupSize,
        (part) => resolve(part, scratch),
        (part, answer) => {
          if (answer.ok && answer.overlaps.length > 0 && part.length > 1) apart.push(...answer.overlaps);
          log(
            `resolve ${part.length === 1 ? part[0] : `${part.length} projects (${part[0]} … ${part.at(-1)})`}: ${
              answer.ok ? `${answer.lock.dists.length} distributions${answer.overlaps.length ? `, ${answer.overlaps.length} shared files` : ''}` : answer.reason
            }`,
          );
        },
      );
      plan = {
        projects,
        groupSize,
        resolveSeconds: (performance.now() - resolveStarted) / 1000,
        skipped: resolved.skipped,
        groups: resolved.groups.map((g, i) => ({
          id: `group-${String(i + 1).padStart(3, '0')}`,
          projects: g.projects,
          dists: g.lock.dists.map(({ name, version, filename, sha256 }) => ({ name, version, filename, sha256 })),
          overlaps: g.overlaps,
          lock: g.lock.text,
        })),
        // Overlaps that made a group split, less those still together in a group of one project.
        keptApart: conflictSets(
          [...new Map(apart.map((o) => [`${o.path}\0${o.distributions.join()}`, o])).values()].filter(
            (o) => !resolved.groups.some((g) => g.overlaps.some((x) => x.path === o.path && x.distributions.join() === o.distributions.join())),
          ),
        ),
      };
      await writeFile(planFile, `${JSON.stringify(plan, null, 2)}\n`);
    }

    if (values['resolve-only']) {
      const dists = new Set(plan.groups.flatMap((g) => g.dists.map((d) => `${d.name}==${d.version}`)));
      log(
        `${plan.groups.length} groups, ${dists.size} distributions, ${plan.skipped.length} projects skipped, resolved in ${plan.resolveSeconds.toFixed(1)} s: ${planFile}`,
      );
      return;
    }

    // 2. Run each group's lock; then, in further rounds, what a failing run kept from its export.
    const groups = [];
    let round = plan.groups;
    for (let n = 1; n <= MAX_ROUNDS && round.length > 0; n += 1) {
      const next = [];
      for (const [i, g] of round.entries()) {
        log(`round ${n}, ${g.id} (${i + 1} of ${round.length}): ${g.dists.length} distributions`);
        const ran = await runGroup(g, work, cache);
        groups.push(ran);
        next.push(...(await rerunsOf(g, ran, work, n + 1)));
      }
      round = next;
    }
    if (round.length > 0) log(`stopped after ${MAX_ROUNDS} rounds; ${round.length} runs left undone`);

    // 3. Results.
    const pip = await run(values.python, ['-I', '-m', 'pip', '--version']);
    const results = {
      date,
      tool: { version: JSON.parse(await readFile(path.join(ROOT, 'package.json'), 'utf8')).version, commit: await gitCommit() },
      mirror: indexes,
      policy: values.policy,
      resolver: `${pip.stdout.split(' from ')[0]} on ${values.python}`,
      machine: machine(),
      subset,
      groupSize,
      resolveSeconds: plan.resolveSeconds,
      projects: { listed: listed.length, covered: projects, skipped: plan.skipped },
      keptApart: plan.keptApart,
      summary: summarize(groups),
      groups,
      command: ['npm run sweep --', ...(subset ? subset.split(' ') : []), ...(groupSize !== 40 ? ['--group-size', String(groupSize)] : []), ...indexArgs].join(
        ' ',
      ),
    };
    await mkdir(values.out, { recursive: true });
    await writeFile(path.join(values.out, 'sweep-results.json'), `${JSON.stringify(results, null, 2)}\n`);
    await writeFile(path.join(values.out, 'SWEEP.md'), renderMarkdown(results));
    const s = results.summary;
    log(`${s.installed} distributions installed, ${s.failingCount} with a failing finding (${s.rate ?? '–'} %), ${s.conflicts.length} conflicts`);
    log(`wrote ${path.join(values.out, 'SWEEP.md')} and sweep-results.json`);
  } finally {
    if (!values.work) await rm(work, { recursive: true, force: true });
  }
}

await main();
