#!/usr/bin/env node
// Run the static scan (the built dist/observe/static-scan.js) over every wheel of a local mirror,
// one wheel at a time, as if pip had installed it alone: what would the scan report on real,
// published packages? Its purpose is false positives: a rule that fires here fires on real locks.
//
//   npm run build && node scripts/mirror-scan.mjs [dir ...]
//
// With no dir, the mirrors come from `pip config list`: each find-links dir, and for each
// `file://…/simple` index its parent dir (where this machine's mirrors keep their files).
//
// Only what the rules read is read from a wheel: its listing, its top-level `.pth` files and its
// dist-info's METADATA and entry_points.txt. Every other file is given empty content, and the
// dist-info's RECORD is rewritten to list each installed path with the hash of what the archive
// holds (as pip rewrites it), so `static.unrecorded-file` says nothing about content here (its
// count is printed but means nothing). `.data/purelib` and `.data/platlib` land in site-packages
// as pip puts them; the other `.data` schemes go outside it and are left out.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pack } from 'tar-stream';
import yauzl from 'yauzl';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const { scanSitePackages } = await import(path.join(ROOT, 'dist/observe/static-scan.js'));
const { STDLIB_MODULE_NAMES } = await import(path.join(ROOT, 'dist/observe/stdlib-names.js')).catch(() => ({ STDLIB_MODULE_NAMES: new Set() }));
const { loadPolicy } = await import(path.join(ROOT, 'dist/policy/load.js'));
// The default policy's reviewed allowances. An entry that pins the code a .pth imports never matches
// here (module contents are left empty): such a .pth is listed, and the sweep (bench/) judges it.
const DEFAULT_POLICY = await loadPolicy('default');

const MAX_TEXT = 1024 * 1024;
const EMPTY_SHA = createHash('sha256').update('').digest('base64url');

function mirrorDirs() {
  const dirs = new Set();
  let config = '';
  try {
    config = execFileSync('pip', ['config', 'list'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return [];
  }
  for (const line of config.split('\n')) {
    const match = /^[^=]*\.(find-links|index-url|extra-index-url)='(.*)'$/.exec(line);
    if (!match) continue;
    for (const value of match[2].split(/\s+/).filter(Boolean)) {
      if (match[1] === 'find-links') dirs.add(value.replace(/^file:\/\//, ''));
      else if (value.startsWith('file://')) dirs.add(path.dirname(value.slice('file://'.length).replace(/\/+$/, '')));
    }
  }
  return [...dirs];
}

function wheelsUnder(dir) {
  const found = [];
  const walk = (d) => {
    let names;
    try {
      names = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of names) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && entry.name.endsWith('.whl')) found.push(full);
    }
  };
  walk(dir);
  return found;
}

function openZip(file) {
  return new Promise((resolve, reject) =>
    yauzl.open(file, { lazyEntries: true, autoClose: false, decodeStrings: true, strictFileNames: true }, (error, zip) => (error ? reject(error) : resolve(zip))),
  );
}

function readEntry(zip, entry) {
  return new Promise((resolve, reject) =>
    zip.openReadStream(entry, async (error, stream) => {
      if (error) return reject(error);
      const chunks = [];
      let bytes = 0;
      for await (const chunk of stream) {
        if (bytes < MAX_TEXT) chunks.push(chunk);
        bytes += chunk.length;
      }
      resolve(Buffer.concat(chunks).subarray(0, MAX_TEXT));
    }),
  );
}

/** The files pip would put in site-packages for this wheel: `{ path: Buffer | null }` (null: empty). */
async function installedTree(file) {
  const zip = await openZip(file);
  const entries = [];
  await new Promise((resolve, reject) => {
    zip.on('entry', (entry) => {
      entries.push(entry);
      zip.readEntry();
    });
    zip.on('end', resolve);
    zip.on('error', reject);
    zip.readEntry();
  });
  const distInfos = new Set(entries.map((e) => e.fileName.split('/')[0]).filter((top) => top.endsWith('.dist-info')));
  if (distInfos.size !== 1) throw new Error(`${distInfos.size} dist-info dirs`);
  const [distInfo] = distInfos;
  const dataDir = `${distInfo.slice(0, -'.dist-info'.length)}.data/`;
  const tree = new Map();
  for (const entry of entries) {
    if (entry.fileName.endsWith('/')) continue;
    let rel = entry.fileName;
    if (rel.startsWith(dataDir)) {
      const rest = rel.slice(dataDir.length);
      const scheme = ['purelib/', 'platlib/'].find((s) => rest.startsWith(s));
      if (!scheme) continue;
      rel = rest.slice(scheme.length);
    }
    if (rel === `${distInfo}/RECORD`) continue;
    const interesting = (!rel.includes('/') && rel.endsWith('.pth')) || rel === `${distInfo}/METADATA` || rel === `${distInfo}/entry_points.txt`;
    tree.set(rel, interesting ? await readEntry(zip, entry) : null);
  }
  zip.close();
  tree.set(`${distInfo}/INSTALLER`, null);
  const rows = [...tree.entries()].map(([rel, content]) => {
    const hash = content ? createHash('sha256').update(content).digest('base64url') : EMPTY_SHA;
    const field = /[",\r\n]/.test(rel) ? `"${rel.replaceAll('"', '""')}"` : rel;
    return `${field},sha256=${hash},${content ? content.length : 0}\r\n`;
  });
  tree.set(`${distInfo}/RECORD`, Buffer.from(`${rows.join('')}${distInfo}/RECORD,,\r\n`));
  return tree;
}

function archive(tree) {
  const p = pack();
  const dirs = new Set();
  p.entry({ name: 'site-packages/', type: 'directory', mode: 0o755 });
  for (const [rel, content] of tree) {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i += 1) {
      const dir = parts.slice(0, i).join('/');
      if (dirs.has(dir)) continue;
      dirs.add(dir);
      p.entry({ name: `site-packages/${dir}/`, type: 'directory', mode: 0o755 });
    }
    p.entry({ name: `site-packages/${rel}`, type: 'file', mode: 0o644 }, content ?? Buffer.alloc(0));
  }
  p.finalize();
  return p;
}

/** What the report lists beside the findings: top-level names, .pth files and their path lines. */
function summary(tree) {
  const tops = new Set();
  const pths = [];
  for (const [rel, content] of tree) {
    const top = rel.split('/')[0];
    if (!top.endsWith('.dist-info')) tops.add(top.replace(/\..*$/, ''));
    if (!rel.includes('/') && rel.endsWith('.pth')) {
      const lines = content
        .toString('utf8')
        .split(/\r\n|\r|\n/)
        .filter((l) => l.trim() !== '' && !l.startsWith('#'));
      pths.push({ name: rel, paths: lines.filter((l) => !/^import[ \t]/.test(l)), imports: lines.filter((l) => /^import[ \t]/.test(l)).length });
    }
  }
  return { tops, pths };
}

const dirs = process.argv.length > 2 ? process.argv.slice(2) : mirrorDirs();
const wheels = [...new Set(dirs.flatMap(wheelsUnder))].sort();
const byRule = new Map();
const errors = [];
const pthReport = [];
const nearMisses = new Map();
let scanned = 0;
for (const wheel of wheels) {
  const name = path.basename(wheel);
  let tree;
  try {
    tree = await installedTree(wheel);
  } catch (error) {
    errors.push(`${name}: ${error.message}`);
    continue;
  }
  scanned += 1;
  const { tops, pths } = summary(tree);
  for (const pth of pths) pthReport.push(`${name}: ${pth.name}: ${pth.imports} import line(s), path lines ${JSON.stringify(pth.paths.slice(0, 5))}`);
  for (const top of tops) {
    // Names a careless prefix match would confuse with a standard-library module.
    for (const std of STDLIB_MODULE_NAMES) {
      if (top !== std && (top.startsWith(std) || top.startsWith(`_${std}`)) && std.length > 2) nearMisses.set(top, std);
    }
  }
  const result = await scanSitePackages(archive(tree), { knownGoodPth: DEFAULT_POLICY.knownGoodPth, knownGoodScripts: DEFAULT_POLICY.knownGoodScripts });
  for (const f of result.findings) {
    const list = byRule.get(f.rule) ?? [];
    list.push(`${name}: [${f.package}] ${JSON.stringify(f.evidence)}`);
    byRule.set(f.rule, list);
  }
}

console.log(`mirrors: ${dirs.join(', ')}`);
console.log(`wheels: ${wheels.length} found, ${scanned} scanned, ${errors.length} unreadable`);
for (const error of errors) console.log(`  unreadable: ${error}`);
console.log(`\ntop-level .pth files: ${pthReport.length}`);
for (const line of pthReport) console.log(`  ${line}`);
console.log(`\nfindings by rule (static.unrecorded-file is meaningless here: contents are not read):`);
for (const [rule, list] of [...byRule].sort()) {
  console.log(`  ${rule}: ${list.length}`);
  if (rule !== 'static.unrecorded-file') for (const line of list) console.log(`    ${line}`);
}
console.log(`\ntop-level names that start with a standard-library name but are not one (must not fire): ${nearMisses.size}`);
console.log(
  `  ${[...nearMisses]
    .sort()
    .map(([top, std]) => `${top}(${std})`)
    .join(' ')}`,
);
