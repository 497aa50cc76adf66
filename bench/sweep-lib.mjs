/**
 * The pure parts of `npm run sweep` (bench/sweep.mjs): reading a mirror's index, grouping projects
 * into locks that resolve and do not overwrite each other's files, writing a lock from pip's
 * installation report, reading a run's report, and the results as JSON and Markdown. Nothing here
 * runs a command or touches the disk; bench/sweep-lib.test.mjs tests it.
 */

/** PEP 503 normalised project name. */
export const normalize = (name) => name.toLowerCase().replace(/[-_.]+/g, '-');

/** Project names linked from a PEP 503 root page (`<a href="name/">name</a>`), normalised, in page order. */
export function parseSimpleIndex(html) {
  const names = [];
  for (const match of html.matchAll(/<a\b[^>]*>([^<]+)<\/a>/gi)) {
    const name = match[1].trim();
    if (/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) names.push(normalize(name));
  }
  return names;
}

/** `items` in slices of `size`. */
export function chunk(items, size) {
  if (!(size >= 1)) throw new Error(`group size must be at least 1, got ${size}`);
  const out = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Where a wheel entry lands under site-packages: `<name>.data/purelib|platlib/` is unpacked into
 * it, the other `.data` dirs (scripts, headers, data) go elsewhere (null), directories are not files (null).
 */
export function sitePackagesPath(entry) {
  if (entry.endsWith('/')) return null;
  const data = /^[^/]+\.data\/([^/]+)\/(.+)$/.exec(entry);
  if (!data) return entry;
  return data[1] === 'purelib' || data[1] === 'platlib' ? data[2] : null;
}

/**
 * Files that several distributions would put at the same place in site-packages: pip installs the
 * later over the earlier, and the tool rightly reports it (static.unrecorded-file claimed by several
 * RECORDs, integrity.installed-mismatch). `wheels` is `[{ name, entries }]`, entries as the wheel's
 * zip names. Returns `[{ path, distributions }]`, sorted by path.
 */
export function fileOverlaps(wheels) {
  const owners = new Map();
  for (const { name, entries } of wheels) {
    for (const entry of entries) {
      const rel = sitePackagesPath(entry);
      if (rel === null || rel.split('/')[0].endsWith('.dist-info')) continue;
      const list = owners.get(rel) ?? [];
      if (!list.includes(name)) list.push(name);
      owners.set(rel, list);
    }
  }
  return [...owners]
    .filter(([, names]) => names.length > 1)
    .map(([path, names]) => ({ path, distributions: [...names].sort() }))
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** One conflict per set of distributions: `{ distributions, paths (up to 3), count }`. */
export function conflictSets(overlaps) {
  const sets = new Map();
  for (const { path, distributions } of overlaps) {
    const key = distributions.join(' + ');
    const set = sets.get(key) ?? { distributions, paths: [], count: 0 };
    if (set.paths.length < 3) set.paths.push(path);
    set.count += 1;
    sets.set(key, set);
  }
  return [...sets.values()];
}

/**
 * What pip's `--report` says it would install, as a hash-pinned lock: `name==version
 * --hash=sha256:<the file pip chose>`. Throws on an entry with no sha256 (a directory or VCS
 * requirement, or an index without hashes), since the tool installs hash-checked locks only.
 */
export function lockFromPipReport(report) {
  const dists = (report.install ?? []).map((item) => {
    const { name, version } = item.metadata;
    const url = item.download_info?.url ?? '';
    const archive = item.download_info?.archive_info;
    const sha256 = archive?.hashes?.sha256 ?? /^sha256=([0-9a-f]{64})$/.exec(archive?.hash ?? '')?.[1];
    if (!sha256) throw new Error(`pip's report gives no sha256 for ${name} ${version} (${url})`);
    return { name: normalize(name), version, url, filename: decodeURIComponent(url.split('/').at(-1) ?? ''), sha256 };
  });
  dists.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const text = dists.map((d) => `${d.name}==${d.version} \\\n    --hash=sha256:${d.sha256}\n`).join('');
  return { dists, text };
}

/** The first line of pip's stderr that says why (an ERROR line), else its last non-warning line. */
export function pipReason(stderr) {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('WARNING:') && !l.startsWith('[notice]'));
  return lines.find((l) => l.startsWith('ERROR:')) ?? lines.at(-1) ?? 'pip failed without a message';
}

/**
 * Resolve `projects` in groups of `size`. `resolve(projects)` answers `{ ok: true, lock, overlaps }`
 * or `{ ok: false, reason }`. A group that does not resolve, or whose distributions would overwrite
 * each other's files (`overlaps` not empty), is split in halves down to single projects, so that
 * conflicting distributions land in different groups where that is possible. A single project that
 * does not resolve is skipped with pip's reason; one whose own resolution overlaps is kept, its
 * overlaps reported as a conflict. Then each part of a split group is tried together with the one
 * before it, and joined to it if the two resolve together without overlaps. Each set of
 * projects is resolved once; `onStep(projects, answer)` hears each resolution.
 */
export async function resolveGroups(projects, size, resolveOnce, onStep = () => {}) {
  const groups = [];
  const skipped = [];
  const answers = new Map();
  const resolve = async (part) => {
    const key = part.join('\0');
    if (!answers.has(key)) {
      answers.set(key, await resolveOnce(part));
      onStep(part, answers.get(key));
    }
    return answers.get(key);
  };
  const visit = async (part) => {
    const answer = await resolve(part);
    if (answer.ok && (answer.overlaps.length === 0 || part.length === 1)) {
      groups.push({ projects: part, lock: answer.lock, overlaps: answer.overlaps });
      return;
    }
    if (part.length === 1) {
      skipped.push({ project: part[0], reason: answer.reason });
      return;
    }
    const half = Math.ceil(part.length / 2);
    await visit(part.slice(0, half));
    await visit(part.slice(half));
  };
  for (const part of chunk(projects, size)) {
    const first = groups.length;
    await visit(part);
    // Halving leaves small groups; neighbouring parts that resolved may well resolve together again.
    const parts = groups.splice(first);
    for (const part of parts) {
      const last = groups.length > first ? groups.at(-1) : null;
      if (last && last.overlaps.length === 0 && part.overlaps.length === 0) {
        const together = [...last.projects, ...part.projects];
        const answer = await resolve(together);
        if (answer.ok && answer.overlaps.length === 0) {
          groups[groups.length - 1] = { projects: together, lock: answer.lock, overlaps: [] };
          continue;
        }
      }
      groups.push(part);
    }
  }
  return { groups, skipped };
}

/** Text of package-controlled evidence on one line, cut to `max` characters. */
export function oneLine(text, max = 160, escape = (s) => s) {
  const flat = escape(String(text).replace(/\s+/g, ' ').trim());
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/**
 * What set a finding off, on one line: its path, then the first line or the script it names, else
 * the rest of its message (which usually starts with the path); its message alone when it has no path.
 */
export function trigger(finding, escape) {
  const e = finding.evidence ?? {};
  const message = String(finding.message ?? '');
  const parts = [];
  if (typeof e.path === 'string') parts.push(e.path);
  if (typeof e.script === 'string') parts.push(`script ${e.script}`);
  if (Array.isArray(e.lines) && e.lines.length > 0) parts.push(String(e.lines[0]));
  else if (typeof e.path === 'string' && message.startsWith(`${e.path} `)) parts.push(message.slice(e.path.length + 1));
  else if (typeof e.script !== 'string') parts.push(message || JSON.stringify(e));
  return oneLine(parts.join(': '), 160, escape);
}

/**
 * One run's report, read for the sweep. `overlaps` are the paths the group's wheels share (known
 * before the run). A failing finding is a conflict, not a false positive, when it is the tool's
 * integrity.file-conflict, when it says a file is claimed by several RECORDs (the tool's word for
 * it before integrity.file-conflict), when it is about a path that several distributions of the group
 * install (an overwrite seen as a mismatch), or when it says one distribution of a conflicting set
 * shadows another's module (`evidence.shadowed`: two distributions of one import package). Returns
 * the installed distributions (none unless the install ran: verdict pass or fail), the failing
 * findings (rule, package, phase, trigger), the conflicts (each with how many failing findings it
 * accounts for), and the warnings counted per rule.
 */
export function readRunReport(report, { overlaps = [], escape } = {}) {
  const findings = report.findings ?? [];
  const pathOf = (f) => (typeof f.evidence?.path === 'string' ? f.evidence.path : null);
  const claimedBy = (f) => (Array.isArray(f.evidence?.claimedBy) ? f.evidence.claimedBy.map(String) : []);
  const seen = findings
    .filter((f) => f.failing && f.rule === 'static.unrecorded-file' && claimedBy(f).length > 1 && pathOf(f) !== null)
    .map((f) => ({ path: pathOf(f), distributions: [...new Set(claimedBy(f).map(normalize))].sort() }));
  const sets = conflictSets([...overlaps, ...seen]).map((c) => ({ ...c, findings: 0 }));
  const setOfPath = new Map([...overlaps, ...seen].map((o) => [o.path, o.distributions.join(' + ')]));
  // The tool's own word for it: one integrity.file-conflict per set, naming the distributions and the first shared files.
  const declaredSet = (f) => {
    if (f.rule !== 'integrity.file-conflict' || !Array.isArray(f.evidence?.distributions)) return undefined;
    const distributions = [...new Set(f.evidence.distributions.map((d) => normalize(String(d))))].sort();
    const key = distributions.join(' + ');
    const paths = Array.isArray(f.evidence.paths) ? f.evidence.paths.map(String) : [];
    let set = sets.find((c) => c.distributions.join(' + ') === key);
    if (!set) {
      set = { distributions, paths: paths.slice(0, 3), count: 0, findings: 0 };
      sets.push(set);
    }
    set.count = Math.max(set.count, Number.isInteger(f.evidence.files) ? f.evidence.files : paths.length);
    for (const p of paths) if (!setOfPath.has(p)) setOfPath.set(p, key);
    return set;
  };
  for (const f of findings) if (f.failing) declaredSet(f);
  const conflictOf = (f) => {
    const declared = declaredSet(f);
    if (declared) return declared;
    const key = setOfPath.get(pathOf(f));
    if (key !== undefined) return sets.find((c) => c.distributions.join(' + ') === key);
    const [a, b] = [f.package, f.evidence?.shadowed].map((n) => (typeof n === 'string' ? normalize(n) : null));
    return a && b ? sets.find((c) => c.distributions.includes(a) && c.distributions.includes(b)) : undefined;
  };
  const failing = [];
  const warnings = {};
  for (const f of findings) {
    if (f.action === 'warn') warnings[f.rule] = (warnings[f.rule] ?? 0) + 1;
    if (!f.failing) continue;
    const conflict = conflictOf(f);
    if (conflict) conflict.findings += 1;
    else failing.push({ rule: f.rule, package: f.package ?? null, phase: f.phase ?? null, severity: f.severity, trigger: trigger(f, escape) });
  }
  const installed = report.verdict === 'error' ? [] : (report.packages ?? []).map((p) => ({ name: normalize(p.name), version: p.version }));
  return {
    verdict: report.verdict,
    // The tool's own measure of the run (report timings), which leaves out the wait for the engine's lock.
    seconds: typeof report.timings?.total === 'number' ? report.timings.total / 1000 : null,
    installed,
    failing,
    conflicts: sets,
    warnings,
    error:
      report.verdict !== 'error'
        ? null
        : oneLine(
            report.error?.message ?? findings.find((f) => f.rule === 'install.failed')?.message ?? JSON.stringify(report.error ?? 'verdict error'),
            300,
            escape,
          ),
  };
}

const byText = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
const MAX_TRIGGERS = 10;

/**
 * The sweep's totals from each run's read report (readRunReport plus `id`, `projects`, `seconds`,
 * `exitCode`): distinct distributions installed, those exported (in a run that passed), those with
 * a failing finding (per rule: how many distinct triggers, the first few), failing findings
 * attributed to no package (against their run), conflicts, warnings per rule, and times. The rate
 * is the share of installed distributions with a failing finding, in percent to two decimals.
 */
export function summarize(groups) {
  const installed = new Map();
  const exported = new Set();
  const failingByDist = new Map();
  const unattributed = [];
  const conflicts = new Map();
  const warnings = {};
  for (const g of groups) {
    const versions = new Map(g.installed.map((d) => [d.name, d.version]));
    for (const d of g.installed) {
      installed.set(`${d.name}==${d.version}`, d);
      if (g.verdict === 'pass') exported.add(`${d.name}==${d.version}`);
    }
    for (const f of g.failing) {
      if (f.package === null) {
        unattributed.push({ group: g.id, ...f });
        continue;
      }
      const name = normalize(f.package);
      const version = versions.get(name) ?? null;
      const key = `${name}==${version ?? '?'}`;
      const entry = failingByDist.get(key) ?? { name, version, findings: [], groups: [] };
      if (!entry.groups.includes(g.id)) entry.groups.push(g.id);
      const same = entry.findings.find((x) => x.rule === f.rule);
      if (!same) entry.findings.push({ rule: f.rule, phase: f.phase, count: 1, triggers: [f.trigger] });
      else if (!same.triggers.includes(f.trigger)) {
        same.count += 1;
        if (same.triggers.length < MAX_TRIGGERS) same.triggers.push(f.trigger);
      }
      failingByDist.set(key, entry);
    }
    for (const c of g.conflicts) {
      const key = c.distributions.join(' + ');
      const entry = conflicts.get(key) ?? { distributions: c.distributions, paths: c.paths, count: c.count, findings: 0, groups: [] };
      entry.findings += c.findings ?? 0;
      if (!entry.groups.includes(g.id)) entry.groups.push(g.id);
      conflicts.set(key, entry);
    }
    for (const [rule, n] of Object.entries(g.warnings)) warnings[rule] = (warnings[rule] ?? 0) + n;
  }
  const failing = [...failingByDist.entries()].sort(([a], [b]) => byText(a, b)).map(([, v]) => v);
  const failingKeys = new Set(failingByDist.keys());
  const inConflict = new Set([...conflicts.values()].flatMap((c) => c.distributions));
  const failingInstalled = [...failingKeys].filter((k) => installed.has(k)).length;
  return {
    installed: installed.size,
    exported: exported.size,
    // Installed and scanned, but never in a run that passed: the checks made while exporting
    // (bytecode compiles, the export's own) did not reach them.
    notExported: [...installed.keys()].filter((k) => !exported.has(k) && !failingKeys.has(k) && !inConflict.has(installed.get(k).name)).sort(byText),
    failing,
    failingCount: failing.length,
    rate: installed.size === 0 ? null : Number(((100 * failingInstalled) / installed.size).toFixed(2)),
    unattributed,
    conflicts: [...conflicts.values()].sort((a, b) => byText(a.distributions.join(), b.distributions.join())),
    warnings: Object.fromEntries(Object.entries(warnings).sort(([a], [b]) => byText(a, b))),
    groupsNotRun: groups.filter((g) => g.verdict === 'error' || g.verdict === null).map((g) => ({ id: g.id, error: g.error })),
    seconds: groups.reduce((sum, g) => sum + (g.seconds ?? 0), 0),
    wallSeconds: groups.reduce((sum, g) => sum + (g.wallSeconds ?? g.seconds ?? 0), 0),
  };
}

/**
 * What to run again after a run that did not pass, or null. A run that failed stops before the
 * export, where some checks happen (the bytecode compile's static.invalid-source), so:
 * - when every failing finding names a package, `without`: each installed distribution that
 *   neither failed nor conflicts, pinned (`name==version`), in one part; `bad` lists what failed,
 *   which the next run must not pull in;
 * - when a failing finding names no package, or the install ended without a verdict of its own
 *   (verdict error: pip failed, a limit was hit), `halves`: the run's projects in two parts, to
 *   find whose it is;
 * - nothing when the run passed, the tool could not run it at all (exit 3, the environment: no
 *   engine, the upstream down; or no report), or nothing is left to split.
 */
export function rerunPlan(read, projects) {
  if (read.verdict === 'pass' || read.verdict === null || read.exitCode === 3) return null;
  const attributed = read.verdict === 'fail' && read.failing.every((f) => f.package !== null);
  const bad = new Set([...read.failing.filter((f) => f.package !== null).map((f) => normalize(f.package)), ...read.conflicts.flatMap((c) => c.distributions)]);
  if (attributed && bad.size > 0) {
    const specs = read.installed.filter((d) => !bad.has(d.name)).map((d) => `${d.name}==${d.version}`);
    return specs.length === 0 ? null : { kind: 'without', parts: [specs], bad: [...bad].sort(byText) };
  }
  if (projects.length < 2) return null;
  const half = Math.ceil(projects.length / 2);
  return { kind: 'halves', parts: [projects.slice(0, half), projects.slice(half)], bad: [] };
}

/** The id of a run's next-round run: `group-001` → `group-001-r2` (or `-r2.1`, `-r2.2` for several). */
export function rerunId(id, round, k, of) {
  const base = `${id.replace(/-r\d+$/, '')}-r${round}`;
  return of === 1 ? base : `${base}.${k + 1}`;
}

const cell = (text) => String(text).replaceAll('|', '\\|');
const secs = (s) => (s === null || s === undefined ? '–' : `${s.toFixed(1)} s`);

/** bench/SWEEP.md from the results (see bench/sweep.mjs for their shape). */
export function renderMarkdown(r) {
  const s = r.summary;
  const out = [];
  out.push('# Sweep: the whole mirror as a benchmark', '');
  if (r.subset) {
    out.push(
      `> **Subset run** (${r.subset}): ${r.projects.covered.length} of the mirror's ${r.projects.listed} projects were asked for. This is not the whole mirror; \`npm run sweep\` with no \`--projects\` or \`--limit\` sweeps it all.`,
      '',
    );
  }
  out.push(
    `Every project of the mirror, newest version each, resolved on the host in groups (\`pip install --dry-run --report\`), each group locked with hashes and installed by \`sandbox-install install\` under the \`${r.policy}\` policy. A distribution with a failing finding is one the tool would refuse on its own, so on a mirror of ordinary packages each is a false positive or a rule to fix.`,
    '',
    "A run that fails stops before the export, where the bytecode compile checks the sources (`static.invalid-source`), so the distributions of a failed run that did not fail themselves are pinned, resolved again without what failed, and run again (`-r2`, `-r3`, ...); a run whose failing finding names no package, or that ended without a verdict of its own, runs again in halves. A distribution that is installed and does not fail but never was in a run that passed is listed apart: the export's checks did not reach it.",
    '',
    `- Date: ${r.date}`,
    `- Tool: sandbox-install ${r.tool.version}, commit \`${r.tool.commit}\``,
    `- Mirror: ${r.mirror.map((u) => `\`${u}\``).join(', ')}`,
    `- Resolver: ${r.resolver}, with pip's configuration files and \`PIP_*\` variables switched off, so only the mirror's indexes count; wheels only (\`--only-binary :all:\`): the mirror holds wheels, so a project with no wheel for this Python is skipped with pip's reason and no sdist is built. The version of each distribution is pip's choice for its group: the newest that resolves with the rest of the group.`,
    `- Machine: ${r.machine.cpus}, ${r.machine.memoryGiB} GiB, ${r.machine.kernel}, Node ${r.machine.node}, engine ${r.machine.engine}`,
    '',
    '## Summary',
    '',
    '| | |',
    '|---|---|',
    `| projects listed | ${r.projects.listed} |`,
    `| projects covered (resolved and run) | ${r.projects.covered.length - r.projects.skipped.length} |`,
    `| projects skipped | ${r.projects.skipped.length} |`,
    `| runs (groups, then their re-runs) | ${r.groups.length} |`,
    `| distinct distributions installed | ${s.installed} |`,
    `| of them exported (in a run that passed) | ${s.exported} |`,
    `| installed, not failing, never in a run that passed | ${s.notExported.length} |`,
    `| distributions with a failing finding | ${s.failingCount} |`,
    `| rate (of the distributions installed) | ${s.rate === null ? '–' : `${s.rate.toFixed(2)} %`} |`,
    `| failing findings attributed to no package | ${s.unattributed.length} |`,
    `| conflicting sets of distributions | ${s.conflicts.length} |`,
    `| runs without a verdict (install error, no report) | ${s.groupsNotRun.length} |`,
    `| run time, all runs (the reports' total) | ${secs(s.seconds)} |`,
    `| wall time of the runs (with the waits for the shared engine) | ${secs(s.wallSeconds)} |`,
    `| resolve time, on the host | ${secs(r.resolveSeconds)} |`,
    '',
    '## Distributions with a failing finding',
    '',
  );
  if (s.failing.length === 0) out.push('None.', '');
  else {
    out.push('| distribution | version | rule | phase | trigger | groups |', '|---|---|---|---|---|---|');
    for (const f of s.failing) {
      for (const x of f.findings) {
        const more = x.count > 1 ? ` (and ${x.count - 1} more)` : '';
        out.push(
          `| ${cell(f.name)} | ${cell(f.version ?? '?')} | \`${x.rule}\` | ${x.phase ?? '–'} | ${cell(x.triggers[0])}${more} | ${f.groups.join(', ')} |`,
        );
      }
    }
    out.push('');
  }
  if (s.unattributed.length > 0) {
    out.push('Failing findings attributed to no package (they count against their group):', '', '| group | rule | phase | trigger |', '|---|---|---|---|');
    for (const f of s.unattributed) out.push(`| ${f.group} | \`${f.rule}\` | ${f.phase ?? '–'} | ${cell(f.trigger)} |`);
    out.push('');
  }
  out.push(
    '## Conflicts',
    '',
    'Distributions that put files at the same place in site-packages overwrite each other, and the tool rightly says so. They are not counted as false positives. Conflicts the sweep saw in the wheels before running were split into different groups where it could; those left are in the groups listed.',
    '',
  );
  if (s.conflicts.length === 0) out.push('None.', '');
  else {
    out.push('| distributions | shared files | e.g. | failing findings it accounts for | runs |', '|---|---|---|---|---|');
    for (const c of s.conflicts) {
      out.push(`| ${cell(c.distributions.join(' + '))} | ${c.count} | ${cell(c.paths.join(', '))} | ${c.findings} | ${c.groups.join(', ')} |`);
    }
    out.push('');
  }
  if (r.keptApart.length > 0) {
    out.push('Kept apart before running (their wheels share files, so they were resolved into different groups):', '');
    for (const c of r.keptApart) out.push(`- ${cell(c.distributions.join(' + '))}: ${c.count} files, e.g. \`${cell(c.paths[0])}\``);
    out.push('');
  }
  if (s.notExported.length > 0) {
    out.push("Installed and not failing, but never in a run that passed (the export's checks did not reach them):", '', s.notExported.map(cell).join(', '), '');
  }
  out.push('## Warnings', '', 'Findings the policy warns about (they do not fail a run), per rule:', '');
  const rules = Object.entries(s.warnings);
  if (rules.length === 0) out.push('None.', '');
  else {
    out.push('| rule | findings |', '|---|---|');
    for (const [rule, n] of rules) out.push(`| \`${rule}\` | ${n} |`);
    out.push('');
  }
  out.push('## Skipped projects', '');
  if (r.projects.skipped.length === 0) out.push('None.', '');
  else {
    out.push('| project | reason (pip) |', '|---|---|');
    for (const k of r.projects.skipped) out.push(`| ${cell(k.project)} | ${cell(k.reason)} |`);
    out.push('');
  }
  if (s.groupsNotRun.length > 0) {
    out.push('## Runs without a verdict', '');
    for (const g of s.groupsNotRun) out.push(`- ${g.id}: ${cell(g.error ?? 'no report')}`);
    out.push('');
  }
  out.push(
    '## Runs',
    '',
    "Run time is the report's total (timings.total); wall time adds the tool's start and the wait for the engine, which other work on this machine shares.",
    '',
    '| run | projects | distributions | verdict | exit | run time | wall time |',
    '|---|---|---|---|---|---|---|',
  );
  for (const g of r.groups) {
    out.push(
      `| ${g.id} | ${g.projects.length} | ${g.installed.length} | ${g.verdict ?? '–'} | ${g.exitCode ?? '–'} | ${secs(g.seconds)} | ${secs(g.wallSeconds)} |`,
    );
  }
  out.push('', '## Reproduce', '', '```', r.command, '```', '');
  return out.join('\n');
}
