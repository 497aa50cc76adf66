/**
 * A report is built from what a package did: the argv of every process it started, every DNS name
 * it asked for, every path it touched, pip's output. A hostile package that runs hundreds of execs
 * with huge argv, or asks for thousands of distinct 4 KB names made of escape bytes, used to make
 * `JSON.stringify(report)` pass V8's string limit (about 512 Mi code units) and throw `RangeError:
 * Invalid string length`: the run ended with no report at all. `boundReport` caps every
 * package-controlled part and counts what it cut in `report.cut`; `serializeReport` is the one way
 * to write a report.
 *
 * Worst case with the default limits (a UTF-16 code unit costs at most 6 bytes of JSON, as `\u001b`, `\u202e`
 * or a lone `\udXXX`; indentation at most 16 spaces, a number at most 24 characters):
 *
 *   one record (evidence, event, error)  4,096 units of strings, keys and markers (+ ~100 of end
 *                                        markers) x 6 B = 25 KiB, + 256 values x 48 B = 12 KiB  <= 37 KiB
 *   one finding                          a record + message and package (2 x 1,024 x 6 B)        <= 50 KiB
 *   one proxy request                    time, method, path (3 x 1,024 x 6 B) + numbers          <= 19 KiB
 *   one package                          name, version (256), marker (1,024), 8 files of two
 *                                        256-unit strings, all x 6 B                              <= 34 KiB
 *   findings  2,000 x 50 KiB  =  98 MiB    events 3 x 5,000 x 37 KiB = 542 MiB
 *   proxy     5,000 x 19 KiB  =  93 MiB    packages 10,000 x 34 KiB  = 332 MiB
 *   the rest (6 top-level paths of 4,096, install.output's 4,096, error, timings)  < 256 KiB
 *
 * So the caps alone hold a report under about 1.1 GiB, and no single element over 50 KiB. Those
 * numbers are only reached by a package built to reach them; the guard at the end then keeps the
 * serialised report under `maxBytes` (64 MiB). It measures element by element (each at most 50 KiB
 * of JSON) and halves the largest event array, then the findings (least severe first), then the
 * packages, so nothing near V8's limit is ever built. It never throws.
 */
import { createHash } from 'node:crypto';
import { cutHead, cutTail } from './cut.js';
import { escapedJsonBytes, escapeJson } from './escape.js';
import type { Severity } from '../core/finding.js';
import type { Report, ReportCut } from './schema.js';

export interface ReportLimits {
  /** Any one string in a record, a finding's message or package, a proxy field, a package's marker. */
  stringChars: number;
  /** A package's name and version, and a file's name and sha256: short by nature. */
  nameChars: number;
  /** The end of install.output that is kept: pip prints the error that matters last. */
  outputChars: number;
  /** Top-level strings from the user or the tool: lockfile, policy, image, exported, manifest, tool.version. */
  pathChars: number;
  /** String code units (values, keys and cut markers together) in one record: one finding's evidence, one event, the error. */
  recordChars: number;
  /** Values (scalars, arrays, objects) in one record. */
  recordNodes: number;
  /** Entries in one array inside a record (argv), the `…[+N entries]` marker included. */
  arrayEntries: number;
  /** Keys in one object inside a record. */
  objectKeys: number;
  /** How deep objects and arrays may nest below a record. */
  depth: number;
  /** Findings kept after identical ones are merged. */
  findings: number;
  /** Entries kept in each of network, filesystem, processes and proxy, after identical ones are merged. */
  events: number;
  packages: number;
  /** Files kept per package. pip downloads one per package; more comes from a lockfile or index gone wrong. */
  files: number;
  /** The serialised report, in UTF-8 bytes, final newline included. */
  maxBytes: number;
}

/**
 * 1,024 units hold a DNS name (253 at most), a real path and an argv entry worth reading; 4,096
 * per record hold a long compiler command line; 64 argv entries show what ran. 2,000 findings and
 * 5,000 events per array leave a reader more than they will read, and with the per-element bounds
 * above keep findings under 100 MiB and each event array under 190 MiB before the guard.
 */
export const REPORT_LIMITS: Readonly<ReportLimits> = {
  stringChars: 1024,
  nameChars: 256,
  outputChars: 4096,
  pathChars: 4096,
  recordChars: 4096,
  recordNodes: 256,
  arrayEntries: 64,
  objectKeys: 64,
  depth: 4,
  findings: 2000,
  events: 5000,
  packages: 10_000,
  files: 8,
  maxBytes: 64 * 1024 * 1024,
};

type JudgedFinding = Report['findings'][number];
type ProxyRecord = Report['proxy'][number];
type TimelineRecord = NonNullable<Report['timeline']>[number];
type Package = Report['packages'][number];
type EventRecord = Record<string, unknown>;
type Counts = { -readonly [K in keyof ReportCut]: number };

const COUNT_KEYS = ['strings', 'arrayEntries', 'objectKeys', 'nested', 'findingsMerged', 'findings', 'eventsMerged', 'events', 'packages'] as const;

function zero(): Counts {
  return { strings: 0, arrayEntries: 0, objectKeys: 0, nested: 0, findingsMerged: 0, findings: 0, eventsMerged: 0, events: 0, packages: 0 };
}

function addCounts(into: Counts, from: Partial<ReportCut>, sign = 1): void {
  for (const key of COUNT_KEYS) into[key] += sign * (from[key] ?? 0);
}

const SEVERITY_RANK: Record<Severity, number> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

/**
 * The `n` items to keep when there are too many: failing ones first, because they are why the
 * verdict is fail and a report that says fail must show why (a warn-only critical does not push out
 * the low finding that failed the run), then the most severe, then the earliest. The kept ones come
 * back in their original order.
 */
export function keepMostSevere<T>(items: readonly T[], n: number, judge: (item: T) => { severity: Severity; failing: boolean }): T[] {
  if (items.length <= n) return [...items];
  const ranked = items.map((item, index) => {
    const { severity, failing } = judge(item);
    return { severity, failing, index };
  });
  ranked.sort((a, b) => Number(b.failing) - Number(a.failing) || SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || a.index - b.index);
  const keep = new Set(ranked.slice(0, Math.max(0, n)).map((r) => r.index));
  return items.filter((_, index) => keep.has(index));
}

function cutText(value: string, max: number, counts: Counts): string {
  if (value.length <= max) return value;
  counts.strings += 1;
  return cutHead(value, max);
}

const cutNullable = (value: string | null, max: number, counts: Counts) => (value === null ? null : cutText(value, max, counts));

/** How many occurrences a finding's evidence or an event stands for: its own `count`, or one. */
function occurrences(count: unknown): number | null {
  return typeof count === 'number' && Number.isSafeInteger(count) && count >= 1 ? count : null;
}

/**
 * A key for "identical" events: a hash of an event's JSON text, so 200,000 distinct events of up
 * to 4,096 units do not sit in memory as keys. JSON.stringify has escaped any lone surrogate, so
 * UTF-8 loses nothing and tells all apart (hashing the raw UTF-16 was four times slower).
 */
const digest = (json: string): string => createHash('sha256').update(json).digest('base64');

const DROP = Symbol('drop');

/** The shortest cut worth keeping: a marker and a few characters. A value with less room is dropped. */
const MIN_CUT = 24;

function readField(holder: object, key: string | number): unknown {
  try {
    return (holder as Record<string | number, unknown>)[key];
  } catch {
    return '…[unreadable]';
  }
}

/** What JSON.stringify leaves out of an object. */
const omitted = (value: unknown) => value === undefined || typeof value === 'function' || typeof value === 'symbol';

/**
 * Copies one record (a finding's evidence, an event, the error) within its budget of string code
 * units and values. Once an array entry no longer fits, it and the rest of the array are dropped
 * and counted: a gap in the middle of an argv would misquote it.
 */
class RecordBounder {
  private chars: number;
  private nodes: number;

  constructor(
    private readonly limits: ReportLimits,
    private readonly counts: Counts,
  ) {
    this.chars = limits.recordChars;
    this.nodes = limits.recordNodes;
  }

  record(value: unknown): EventRecord {
    const out = this.value(value, 0);
    return typeof out === 'object' && out !== null && !Array.isArray(out) ? (out as EventRecord) : {};
  }

  private string(value: string): string | typeof DROP {
    const max = Math.min(this.limits.stringChars, this.chars);
    if (value.length <= max) {
      this.chars -= value.length;
      return value;
    }
    if (max < MIN_CUT) return DROP;
    this.counts.strings += 1;
    const out = cutHead(value, max);
    this.chars -= out.length;
    return out;
  }

  /** A marker is always written, even past the budget: it is short and says what is missing. */
  private marker(text: string): string {
    this.chars -= text.length;
    this.nodes -= 1;
    return text;
  }

  private value(input: unknown, depth: number): unknown {
    if (this.nodes <= 0) return DROP;
    let value = input;
    // As JSON.stringify does: Date, Buffer and the like stand for what their toJSON returns.
    if (typeof value === 'object' && value !== null && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
      try {
        value = (value as { toJSON: () => unknown }).toJSON();
      } catch {
        value = '…[unserialisable]';
      }
    }
    if (typeof value === 'bigint') value = String(value); // JSON.stringify throws on a bigint
    if (omitted(value)) return undefined;
    if (typeof value === 'string') {
      const out = this.string(value);
      if (out !== DROP) this.nodes -= 1;
      return out;
    }
    if (typeof value === 'object' && value !== null && depth > this.limits.depth) {
      this.counts.nested += 1;
      return this.marker('…[nested]');
    }
    this.nodes -= 1;
    if (typeof value !== 'object' || value === null) return value;
    return Array.isArray(value) ? this.array(value, depth) : this.object(value, depth);
  }

  private array(items: readonly unknown[], depth: number): unknown[] {
    const room = items.length > this.limits.arrayEntries ? this.limits.arrayEntries - 1 : this.limits.arrayEntries;
    const out: unknown[] = [];
    let next = 0;
    for (; next < items.length && out.length < room; next += 1) {
      const item = this.value(readField(items, next), depth + 1);
      if (item === DROP) break;
      out.push(item === undefined ? null : item);
    }
    if (next < items.length) {
      this.counts.arrayEntries += items.length - next;
      out.push(this.marker(`…[+${items.length - next} entries]`));
    }
    return out;
  }

  /**
   * Scalars first, then nested arrays and objects, each in key order; written back in key order.
   * So a 1,000-entry argv takes what its record has left, and cannot push out pid or package.
   * A key that does not fit is dropped alone: keys have names, so a gap misleads nobody.
   */
  private object(holder: object, depth: number): EventRecord {
    const fields: Array<{ key: string; raw: unknown; out: unknown }> = [];
    for (const key of Object.keys(holder)) {
      const raw = readField(holder, key);
      if (omitted(raw)) continue;
      if (fields.length < this.limits.objectKeys) fields.push({ key, raw, out: DROP });
      else this.counts.objectKeys += 1;
    }
    const nested = (raw: unknown) => typeof raw === 'object' && raw !== null;
    for (const pass of [false, true]) {
      for (const field of fields) {
        if (nested(field.raw) !== pass) continue;
        const name = this.string(field.key);
        if (name === DROP) continue;
        field.key = name;
        field.out = this.value(field.raw, depth + 1);
      }
    }
    const entries: Array<[string, unknown]> = [];
    for (const field of fields) {
      if (field.out === DROP) this.counts.objectKeys += 1;
      else if (field.out !== undefined) entries.push([field.key, field.out]);
    }
    // fromEntries defines own properties, so a `__proto__` key stays a key.
    return Object.fromEntries(entries);
  }
}

function boundRecord(value: unknown, limits: ReportLimits, counts: Counts): EventRecord {
  return new RecordBounder(limits, counts).record(value);
}

/** One element of a top-level array, with its serialised size and what was cut inside it. */
interface Part<T> {
  value: T;
  bytes: number;
  cut: Counts;
}

const pretty = (value: unknown): string => JSON.stringify(value, null, 2);

/**
 * The UTF-8 bytes an element takes inside the written report, from its own `pretty` text: escaped
 * as escapeJson will, every line indented 4 more by the array, and a `,\n` after it.
 */
function elementBytes(text: string): number {
  let lines = 1;
  for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', at + 1)) lines += 1;
  return escapedJsonBytes(text) + 4 * lines + 2;
}

/** Room for a `count` added to an element after it was measured: a line of indent, key and a safe integer. */
const COUNT_BYTES = 40;

function boundFindings(findings: readonly JudgedFinding[], limits: ReportLimits, counts: Counts): Array<Part<JudgedFinding>> {
  interface Group {
    first: JudgedFinding;
    message: string;
    package: string | null;
    severity: Severity;
    failing: boolean;
    count: number;
    members: number;
  }
  const groups = new Map<string, Group>();
  for (const f of findings) {
    const message = cutHead(f.message, limits.stringChars);
    const pkg = f.package === null ? null : cutHead(f.package, limits.stringChars);
    // A plain string key (the rule has no space; the package's length makes the split unique):
    // hashing JSON of 50,000 hostile messages took 2.7 s, this takes 0.2 s, and holds no more
    // than the capped text of each distinct finding while it runs.
    const key = `${f.rule} ${f.action} ${f.phase ?? '-'} ${pkg === null ? '-' : `${pkg.length}:${pkg}`} ${message}`;
    const count = occurrences(f.evidence.count) ?? 1;
    const group = groups.get(key);
    if (!group) {
      groups.set(key, { first: f, message, package: pkg, severity: f.severity, failing: f.failing, count, members: 1 });
      continue;
    }
    group.count += count;
    group.members += 1;
    if (SEVERITY_RANK[f.severity] > SEVERITY_RANK[group.severity]) group.severity = f.severity;
    group.failing ||= f.failing;
  }
  counts.findingsMerged += findings.length - groups.size;
  const kept = keepMostSevere([...groups.values()], limits.findings, (g) => g);
  counts.findings += groups.size - kept.length;
  // Evidence is copied only for the findings kept: 50,000 dropped ones cost a hash each, no more.
  return kept.map((g) => {
    const cut = zero();
    if (g.message !== g.first.message) cut.strings += 1;
    if (g.package !== g.first.package) cut.strings += 1;
    const evidence = boundRecord(g.first.evidence, limits, cut);
    if (g.members > 1) evidence.count = g.count;
    const value: JudgedFinding = {
      rule: g.first.rule,
      severity: g.severity,
      package: g.package,
      message: g.message,
      evidence,
      action: g.first.action,
      failing: g.failing,
      ...(g.first.suppressed ? { suppressed: { reason: cutHead(g.first.suppressed.reason, limits.stringChars), expires: g.first.suppressed.expires } } : {}),
      // The tool's own phase names (a short enum), never package text.
      ...(g.first.phase === undefined ? {} : { phase: cutHead(g.first.phase, limits.nameChars) }),
    };
    addCounts(counts, cut);
    return { value, bytes: elementBytes(pretty(value)), cut };
  });
}

/**
 * Bounds each event, merges identical ones (after bounding) into the first with a `count`, and
 * keeps the first `limits.events` distinct ones. An event's own numeric `count` adds up.
 */
function boundEvents<T extends { count?: unknown }>(
  events: readonly T[],
  limits: ReportLimits,
  counts: Counts,
  bound: (event: T, cut: Counts) => T,
): Array<Part<T>> {
  interface Group {
    value: T;
    bytes: number;
    cut: Counts;
    count: number;
    counted: boolean;
  }
  const groups = new Map<string, Group>();
  for (const event of events) {
    const cut = zero();
    const bounded = bound(event, cut);
    const own = occurrences(bounded.count);
    let rest = bounded;
    if (own !== null) {
      const { count: _, ...others } = bounded;
      rest = others as T;
    }
    const text = pretty(rest);
    const key = digest(text);
    const group = groups.get(key);
    if (group) {
      group.count += own ?? 1;
      group.counted = true;
      counts.eventsMerged += 1;
    } else if (groups.size >= limits.events) {
      counts.events += 1;
    } else {
      groups.set(key, { value: rest, bytes: elementBytes(text) + COUNT_BYTES, cut, count: own ?? 1, counted: own !== null });
      addCounts(counts, cut);
    }
  }
  return [...groups.values()].map((g) => ({ value: g.counted ? { ...g.value, count: g.count } : g.value, bytes: g.bytes, cut: g.cut }));
}

function boundPackages(packages: readonly Package[], limits: ReportLimits, counts: Counts): Array<Part<Package>> {
  counts.packages += Math.max(0, packages.length - limits.packages);
  return packages.slice(0, limits.packages).map((p) => {
    const cut = zero();
    cut.arrayEntries += Math.max(0, p.files.length - limits.files);
    const value: Package = {
      name: cutText(p.name, limits.nameChars, cut),
      version: cutText(p.version, limits.nameChars, cut),
      marker: cutNullable(p.marker, limits.stringChars, cut),
      ...(p.line === undefined ? {} : { line: p.line }),
      files: p.files
        .slice(0, limits.files)
        .map((f) => ({ filename: cutText(f.filename, limits.nameChars, cut), sha256: cutText(f.sha256, limits.nameChars, cut), size: f.size })),
    };
    addCounts(counts, cut);
    return { value, bytes: elementBytes(pretty(value)), cut };
  });
}

const EVENT_SECTIONS = ['network', 'filesystem', 'processes', 'proxy', 'timeline'] as const;

interface Parts {
  packages: Array<Part<Package>>;
  findings: Array<Part<JudgedFinding>>;
  network: Array<Part<EventRecord>>;
  filesystem: Array<Part<EventRecord>>;
  processes: Array<Part<EventRecord>>;
  proxy: Array<Part<ProxyRecord>>;
  timeline: Array<Part<TimelineRecord>>;
}

const sumBytes = (parts: ReadonlyArray<Part<unknown>>) => parts.reduce((sum, p) => sum + p.bytes, 0);

/**
 * One step of the guard: halve the largest event array (keeping the earliest), or, with no events
 * left, the findings (keeping the most severe), or the packages. False when nothing is left to cut.
 */
function shrinkOnce(parts: Parts, counts: Counts): boolean {
  const drop = (gone: ReadonlyArray<Part<unknown>>) => gone.forEach((p) => addCounts(counts, p.cut, -1));
  const section = EVENT_SECTIONS.filter((s) => parts[s].length > 0).sort((a, b) => sumBytes(parts[b]) - sumBytes(parts[a]))[0];
  if (section !== undefined) {
    const list: Array<Part<unknown>> = parts[section];
    const gone = list.splice(Math.floor(list.length / 2));
    counts.events += gone.length;
    drop(gone);
    return true;
  }
  if (parts.findings.length > 0) {
    const kept = keepMostSevere(parts.findings, Math.floor(parts.findings.length / 2), (p) => p.value);
    const keep = new Set(kept);
    counts.findings += parts.findings.length - kept.length;
    drop(parts.findings.filter((p) => !keep.has(p)));
    parts.findings = kept;
    return true;
  }
  if (parts.packages.length > 0) {
    const gone = parts.packages.splice(Math.floor(parts.packages.length / 2));
    counts.packages += gone.length;
    drop(gone);
    return true;
  }
  return false;
}

/**
 * The report's text: JSON.stringify(…, null, 2), then what a terminal would obey escaped as
 * `\uXXXX` (escapeJson), since the report is printed as well as written.
 */
function tryStringify(report: Report): string | null {
  try {
    return escapeJson(pretty(report));
  } catch {
    return null; // RangeError: Invalid string length; the caller cuts more
  }
}

function bound(report: Report, overrides: Partial<ReportLimits>): { report: Report; text: string } {
  const limits: ReportLimits = { ...REPORT_LIMITS, ...overrides };
  const counts = zero();
  if (report.cut) addCounts(counts, report.cut);

  const parts: Parts = {
    packages: boundPackages(report.packages, limits, counts),
    findings: boundFindings(report.findings, limits, counts),
    network: boundEvents(report.network, limits, counts, (e, cut) => boundRecord(e, limits, cut)),
    filesystem: boundEvents(report.filesystem, limits, counts, (e, cut) => boundRecord(e, limits, cut)),
    processes: boundEvents(report.processes, limits, counts, (e, cut) => boundRecord(e, limits, cut)),
    proxy: boundEvents(report.proxy, limits, counts, (p, cut) => ({
      time: cutText(p.time, limits.stringChars, cut),
      method: cutText(p.method, limits.stringChars, cut),
      path: cutText(p.path, limits.stringChars, cut),
      status: p.status,
      bytes: p.bytes,
      ms: p.ms,
      ...(p.count === undefined ? {} : { count: p.count }),
      ...(p.phase === undefined ? {} : { phase: cutText(p.phase, limits.stringChars, cut) }),
    })),
    timeline: boundEvents(report.timeline ?? [], limits, counts, (e, cut) => ({
      phase: cutText(e.phase, limits.nameChars, cut),
      offset: Number.isFinite(e.offset) ? e.offset : 0,
      package: cutText(e.package, limits.nameChars, cut),
      kind: cutText(e.kind, limits.nameChars, cut),
      what: cutText(e.what, limits.stringChars, cut),
      pid: e.pid,
      ...(e.count === undefined ? {} : { count: e.count }),
    })),
  };
  const install = report.install && {
    pipExitCode: report.install.pipExitCode,
    timedOut: report.install.timedOut,
    output: report.install.output.length > limits.outputChars ? cutTail(report.install.output, limits.outputChars) : report.install.output,
    traceBytes: report.install.traceBytes,
  };
  if (install && install.output !== report.install?.output) counts.strings += 1;
  const skeleton = {
    tool: { name: report.tool.name, version: cutText(report.tool.version, limits.pathChars, counts) },
    lockfile: cutText(report.lockfile, limits.pathChars, counts),
    policy: cutText(report.policy, limits.pathChars, counts),
    image: cutNullable(report.image, limits.pathChars, counts),
    // The tool's own numbers; a stray NaN would serialise as null and fail the schema, a bigint break JSON itself.
    timings: Object.fromEntries(Object.entries(report.timings).filter(([, ms]) => Number.isFinite(ms))),
    exported: cutNullable(report.exported, limits.pathChars, counts),
    manifest: cutNullable(report.manifest, limits.pathChars, counts),
    error: report.error === null ? null : boundRecord(report.error, limits, counts),
    // The tool's own list, one entry per phase it ran (a handful): capped all the same.
    phases: report.phases?.slice(0, 16).map((p) => ({
      name: cutHead(p.name, limits.nameChars),
      exitCode: p.exitCode,
      timedOut: p.timedOut,
      traceBytes: p.traceBytes,
      ...(p.ms === undefined ? {} : { ms: p.ms }),
    })),
  };
  const assemble = (cut: ReportCut | undefined): Report => ({
    // Ours (a URL of the tool's own schema file), never package text.
    ...(report.$schema === undefined ? {} : { $schema: report.$schema }),
    schemaVersion: report.schemaVersion,
    tool: skeleton.tool,
    verdict: report.verdict,
    lockfile: skeleton.lockfile,
    policy: skeleton.policy,
    image: skeleton.image,
    // Versions the tool read and checked as X.Y.Z (an option, the host's python3.11, the image's label).
    ...(report.python === undefined ? {} : { python: { image: report.python.image, target: report.python.target } }),
    packages: parts.packages.map((p) => p.value),
    findings: parts.findings.map((p) => p.value),
    network: parts.network.map((p) => p.value),
    filesystem: parts.filesystem.map((p) => p.value),
    processes: parts.processes.map((p) => p.value),
    proxy: parts.proxy.map((p) => p.value),
    ...(report.timeline === undefined ? {} : { timeline: parts.timeline.map((p) => p.value) }),
    install,
    ...(skeleton.phases === undefined ? {} : { phases: skeleton.phases }),
    // Capped by its schema (core/import-coverage.ts): 100 module names of 200 characters each.
    ...(report.importCoverage === undefined ? {} : { importCoverage: report.importCoverage }),
    timings: skeleton.timings,
    exported: skeleton.exported,
    manifest: skeleton.manifest,
    error: skeleton.error,
    ...(cut === undefined ? {} : { cut }),
  });
  const finalCut = (): ReportCut | undefined => (COUNT_KEYS.some((key) => counts[key] > 0) ? { ...counts } : undefined);

  // The guard, first on measured sizes: the report with empty arrays and the largest `cut` it
  // could get, plus every element as measured, plus the brackets of seven non-empty arrays.
  const emptied: Parts = { packages: [], findings: [], network: [], filesystem: [], processes: [], proxy: [], timeline: [] };
  const widestCut = Object.fromEntries(COUNT_KEYS.map((key) => [key, Number.MAX_SAFE_INTEGER])) as ReportCut;
  const base = escapedJsonBytes(pretty({ ...assemble(widestCut), ...emptied })) + 1 + 7 * 8;
  const estimate = () => base + sumBytes(parts.packages) + sumBytes(parts.findings) + EVENT_SECTIONS.reduce((sum, s) => sum + sumBytes(parts[s]), 0);
  let fits = estimate() <= limits.maxBytes;
  while (!fits && shrinkOnce(parts, counts)) fits = estimate() <= limits.maxBytes;

  // Then on the real text, in case the measure was ever short.
  let result = assemble(finalCut());
  let text = tryStringify(result);
  while ((text === null || Buffer.byteLength(text) + 1 > limits.maxBytes) && shrinkOnce(parts, counts)) {
    result = assemble(finalCut());
    text = tryStringify(result);
  }
  // With every array empty, what is left is bounded strings and numbers: stringify cannot fail.
  return { report: result, text: (text ?? escapeJson(pretty(result))) + '\n' };
}

/**
 * A copy of `report` in which every package-controlled string, array and record is capped, identical
 * findings and events are merged with a count, and the whole serialises to at most
 * `limits.maxBytes`. What was cut is counted in `cut`. Pure; never throws.
 */
export function boundReport(report: Report, limits: Partial<ReportLimits> = {}): Report {
  return bound(report, limits).report;
}

/**
 * The report as written to a file or stdout: bounded, JSON.stringify(…, null, 2) with terminal
 * controls and bidi characters escaped as `\uXXXX` (the parsed report is the same), and a final
 * newline. At most `limits.maxBytes` UTF-8 bytes.
 */
export function serializeReport(report: Report, limits: Partial<ReportLimits> = {}): string {
  return bound(report, limits).text;
}
