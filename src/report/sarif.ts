/**
 * The report as SARIF 2.1.0, for GitHub code scanning and any other SARIF viewer.
 *
 * - One run; `tool.driver.rules` is the whole catalogue (core/rules.ts), in catalogue order, so a
 *   result's `ruleIndex` is its rule's place there.
 * - One result per distinct finding the policy did not ignore. Every result points at the lockfile:
 *   the line that names the package it is attributed to, or line 1 when it is unattributed or the
 *   package has no line (a build requirement the lock does not name).
 * - `partialFingerprints` carries a hash of the rule, the package and a stable key of the evidence
 *   (`STABLE_KEYS`): the same behaviour in the next run gets the same fingerprint, so code scanning
 *   keeps one alert open instead of closing it and opening another. Findings of one run that share a
 *   fingerprint (the same DNS name asked by three processes) are one result with their occurrences.
 */
import { createHash } from 'node:crypto';
import type { Finding } from '../core/finding.js';
import { CATALOGUE, familyOf, RULE_IDS, type RuleId, type Severity } from '../core/rules.js';
import type { Report } from './schema.js';

export const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json';
/** The partialFingerprints key: bump its version when STABLE_KEYS changes what a key holds. */
export const FINGERPRINT_KEY = 'sandboxInstall/v1';

export type SarifLevel = 'error' | 'warning' | 'note';

export interface SarifRule {
  id: RuleId;
  name: string;
  shortDescription: { text: string };
  fullDescription: { text: string };
  help: { text: string; markdown: string };
  defaultConfiguration: { level: SarifLevel };
  properties: { 'security-severity': string; tags: string[] };
}

export interface SarifResult {
  ruleId: RuleId;
  ruleIndex: number;
  level: SarifLevel;
  message: { text: string };
  locations: [{ physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } } }];
  partialFingerprints: Record<string, string>;
  properties: {
    package: string | null;
    phase: string | null;
    severity: Severity;
    evidence: Record<string, unknown>;
    /** How many findings (and their own evidence.count) this result stands for. */
    occurrences: number;
  };
}

export interface SarifLog {
  $schema: typeof SARIF_SCHEMA;
  version: '2.1.0';
  runs: [
    {
      tool: { driver: { name: 'sandbox-install'; version: string; rules: SarifRule[] } };
      results: SarifResult[];
    },
  ];
}

/**
 * GitHub reads `security-severity` as critical above 9.0, high from 7.0, medium from 4.0, and low
 * below; each severity sits inside its band. Info rules get 0.0 (shown as low): they are notes.
 */
export const SECURITY_SEVERITY: Readonly<Record<Severity, string>> = { critical: '9.5', high: '8.0', medium: '5.5', low: '3.0', info: '0.0' };

const DEFAULT_LEVEL: Readonly<Record<Severity, SarifLevel>> = { critical: 'error', high: 'error', medium: 'warning', low: 'warning', info: 'note' };
const LEVEL_RANK: Readonly<Record<SarifLevel, number>> = { note: 0, warning: 1, error: 2 };
const SEVERITY_RANK: Readonly<Record<Severity, number>> = { info: 0, low: 1, medium: 2, high: 3, critical: 4 };

/** `network.canary-exfil` → `NetworkCanaryExfil`. */
function pascalCase(id: string): string {
  return id
    .split(/[.-]/)
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');
}

function ruleDescriptor(id: RuleId): SarifRule {
  const { severity, description, help } = CATALOGUE[id];
  return {
    id,
    name: pascalCase(id),
    shortDescription: { text: description },
    fullDescription: { text: `${id} fires when ${description}. Default severity: ${severity}.` },
    help: { text: help, markdown: `**${id}** fires when ${description}.\n\n${help}` },
    defaultConfiguration: { level: DEFAULT_LEVEL[severity] },
    properties: { 'security-severity': SECURITY_SEVERITY[severity], tags: ['security', familyOf(id)] },
  };
}

type Evidence = Record<string, unknown>;

/** Each named field, or null when the finding has none. */
const pick =
  (...fields: string[]) =>
  (e: Evidence): Evidence =>
    Object.fromEntries(fields.map((field) => [field, e[field] ?? null]));

/** Fields that differ from run to run for the same behaviour: never part of a key. */
const VOLATILE_FIELDS = new Set([
  'pid',
  'ppid',
  'writerPid',
  'count',
  'more',
  'dropped',
  'time',
  'offset',
  'ms',
  'bytes',
  'size',
  'src',
  'seen',
  'firstBytes',
  'heads',
]);

/** For rules whose evidence has no emitter to read yet: every field but the volatile ones. */
const generic = (e: Evidence): Evidence => Object.fromEntries(Object.entries(e).filter(([field]) => !VOLATILE_FIELDS.has(field)));

/** Linux hands out source ports from 32768 up: a destination there is a listener bound to port 0. */
const stablePort = (port: unknown): unknown => (typeof port === 'number' && port >= 32768 ? 'ephemeral' : (port ?? null));

/** A signal or ptrace target: the sandbox's pids differ every run; -1, 0 and 1 (everyone, own group, init) do not. */
const stableTarget = (target: unknown): unknown => (typeof target !== 'number' ? (target ?? null) : target > 1 ? 'pid' : target < -1 ? '-pid' : target);

/**
 * What identifies a finding of each rule across runs, from its evidence (the fields the detectors
 * in observe/, proxy/, export/ and policy/ emit). Left out everywhere: pids, counts, times, sizes,
 * source addresses and ports, and captured payloads (`seen`, `firstBytes`: they hold the run's
 * random canary values). Strings are then normalised by `stableText`. In short:
 * - network: the name (DNS), host or else address, destination port unless ephemeral, protocol;
 *   HTTP method, host and path; TLS SNI; the canary's name, channel and encoding; a socket's path.
 * - fs, static, export: the path (inside site-packages for static), with what was done to it.
 * - process: the executable and its argv, temp paths normalised; a refused call's name and request.
 * - monitor.tampered: which part failed (the flags, syscall, signal, request) and its target as a
 *   class (a sandbox pid, or -1/0/1).
 */
export const STABLE_KEYS: { readonly [R in RuleId]: (e: Evidence) => unknown } = {
  'integrity.hash-mismatch': pick('project', 'filename', 'lockSha256', 'expectedSha256'),
  'integrity.upstream-refused': pick('project', 'filename', 'expectedSha256', 'url'),
  'integrity.unlocked-request': pick('method', 'path', 'project', 'truncated'),
  'integrity.build-requirement': pick('project', 'filename', 'sha256'),
  // What differed names the run's own canary-derived choices: only which comparison failed is stable.
  'integrity.resolve-divergence': pick('kind'),
  'integrity.file-conflict': pick('distributions'),
  'integrity.installed-mismatch': pick('distribution', 'wheel', 'path', 'kind', 'reason'),
  'lock.unhashed': generic,
  'lock.unpinned': generic,
  'lock.invalid': generic,
  'lock.index-url': pick('url'),
  'network.dns': pick('name', 'qtype', 'malformed'),
  // The sinkhole gives each name its own 127.x address in the order they are asked: the name is the
  // stable part when the monitor knows it.
  'network.connect': (e) => ({ to: e.host ?? e.address ?? null, port: stablePort(e.port), protocol: e.protocol ?? null, syscall: e.syscall ?? null }),
  'network.http': pick('method', 'host', 'path', 'sni'),
  'network.canary-exfil': pick('secret', 'channel', 'encoding'),
  'network.unix-socket': pick('path'),
  'fs.write-outside-target': pick('path', 'kind'),
  'fs.sensitive-read': pick('path'),
  'fs.target-tamper': pick('path', 'syscall'),
  'fs.autorun-write': pick('path', 'syscall'),
  'fs.build-meddling': pick('path', 'syscall', 'ownerPhase', 'plantedIn'),
  'process.exec': pick('path', 'argv', 'viaFd'),
  'process.lingering': pick('argv', 'detached'),
  // The call and what it asked for (a command, a persona; a pid target only as a class).
  'process.forbidden-syscall': (e) => ({ ...pick('syscall', 'detail', 'argv')(e), target: stableTarget(e.target) }),
  'static.pth-exec': pick('path'),
  'static.pth-path': pick('path'),
  'static.autoload-entry-point': pick('group', 'name', 'object'),
  'static.import-shadowing': pick('module', 'path', 'shadowed'),
  'static.invalid-source': pick('path'),
  'static.stdlib-backport': pick('path', 'module'),
  'static.inert-source': pick('path', 'wheel'),
  'static.record-unhashed': pick('distribution', 'wheel'),
  'static.startup-hook': pick('path'),
  'static.stdlib-shadowing': pick('module', 'path'),
  'static.unrecorded-file': pick('path', 'reason', 'claimedBy', 'recorded'),
  'static.script-shadowing': pick('script'),
  'static.special-file': pick('path', 'reason'),
  'monitor.tampered': (e) => ({
    ...pick('event', 'syscall', 'signal', 'request', 'monitorAlive', 'traceMissing', 'tracerForcedStop', 'statusMissing', 'tracerExit', 'collectFailed')(e),
    target: stableTarget(e.target),
    traceCut: 'dropped' in e,
    unreadLines: 'unparsed' in e,
  }),
  'resource.timeout': pick('timeoutSeconds'),
  'resource.pids': pick(),
  'resource.memory': pick('limitBytes'),
  'resource.disk': pick('limit', 'max'),
  'install.failed': pick('exitCode'),
  // The reason is left out: its numbers (bytes, ms, attempts) differ from run to run for the same fault.
  'install.upstream-failed': pick('upstream', 'url', 'project', 'filename'),
  'policy.package-denied': pick('package'),
  'policy.sdist-forbidden': generic,
  'policy.suppression-expired': pick('rule', 'suppressedPackage', 'expires'),
  'export.unsafe-entry': pick('entry', 'type', 'reason'),
  'export.unexpected-file': generic,
};

/**
 * One path component under a temp root, with its random part replaced: pip's TempDirectory
 * (`pip-build-env-e4g603gw`, `pip-install-q8_72yms`) and CPython's tempfile names, `tmp` or
 * `.tmp-` and 8 characters of `[a-z0-9_]` (`tmpk2j3ab_x`, `.tmp-m5nq13pu`, `tmpab12cd34.py`).
 */
function stableComponent(part: string): string {
  return part.replace(/^(pip-[a-z]+(?:-[a-z]+)*-)[a-z0-9_]+$/, '$1*').replace(/^(\.?tmp-?)[a-z0-9_]{8}(?=\.|$)/, '$1*');
}

const TEMP_PATH = /\/(?:tmp|var\/tmp|dev\/shm)\/[^\s'"]*/g;

/**
 * Text with what changes from run to run replaced by `*`: random parts of temp paths, pip's
 * per-requirement build dirs (`evil-pkg_<uuid hex>`), UUIDs (run ids), importlib's atomic-write
 * suffix (`x.pyc.140082840000176`), `/proc/<pid>` of a sandbox process (pid 1, the supervisor,
 * stays), and the lengths in the report's cut markers.
 */
export function stableText(text: string): string {
  return text
    .replace(TEMP_PATH, (found) => found.split('/').map(stableComponent).join('/'))
    .replace(/_[0-9a-f]{32}(?![0-9a-f])/g, '_*')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '*')
    .replace(/(\.py[co]?)\.\d+\b/g, '$1.*')
    .replace(/\/proc\/(?:[2-9]|[1-9]\d+)(?=\/|$)/g, '/proc/*')
    .replace(/…\[\+\d+ (chars|entries)\]/g, '…[+* $1]');
}

function stableValue(value: unknown): unknown {
  if (typeof value === 'string') return stableText(value);
  if (Array.isArray(value)) return value.map(stableValue);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, stableValue(v)]));
  return value ?? null;
}

/** The evidence of a finding reduced to what is the same for the same behaviour in every run. */
export function stableEvidenceKey(finding: Pick<Finding, 'rule' | 'evidence'>): unknown {
  return stableValue(STABLE_KEYS[finding.rule](finding.evidence));
}

/** sha256 (hex) of the rule, the package and the stable evidence key: the result's partial fingerprint. */
export function sarifFingerprint(finding: Pick<Finding, 'rule' | 'package' | 'evidence'>): string {
  const key = JSON.stringify([finding.rule, finding.package, stableEvidenceKey(finding)]);
  return createHash('sha256').update(key).digest('hex');
}

/**
 * A plain-text SARIF message may not hold what a viewer would render as something else: `{` and
 * `}` are written `{{` and `}}` (placeholders, §3.11.5), and a `](` gets a backslash before its `]`
 * so no package-controlled text forms an embedded link (§3.11.6) a viewer would make clickable.
 */
export function sarifText(text: string): string {
  return text.replace(/[{}]/g, '$&$&').replace(/(\\*)\]\(/g, (found, slashes: string) => (slashes.length % 2 === 0 ? `${slashes}\\](` : found));
}

/** Each segment of a relative POSIX path percent-encoded, so the URI is the path. */
function pathUri(file: string): string {
  return file.split('/').map(encodeURIComponent).join('/');
}

type JudgedFinding = Report['findings'][number];

function levelOf(f: JudgedFinding): SarifLevel {
  return f.failing ? 'error' : f.severity === 'info' ? 'note' : 'warning';
}

/** How many occurrences a finding stands for: its evidence's own count (report/bound.ts folds), or one. */
function occurrencesOf(f: JudgedFinding): number {
  const count = f.evidence.count;
  return typeof count === 'number' && Number.isSafeInteger(count) && count >= 1 ? count : 1;
}

/**
 * The report as a SARIF log. `lockLines` maps a normalised package name to the 1-based lockfile
 * line that names it; `lockfileUri` is the lockfile's path relative to the repository root (as
 * code scanning resolves it), with `/` separators; its segments are percent-encoded here.
 */
export function toSarif(report: Report, lockLines: ReadonlyMap<string, number>, lockfileUri: string): SarifLog {
  const uri = pathUri(lockfileUri);
  const lineOf = (pkg: string | null): number => {
    const line = pkg === null ? undefined : lockLines.get(pkg);
    return line !== undefined && Number.isSafeInteger(line) && line >= 1 ? line : 1;
  };
  const ruleIndex = new Map(RULE_IDS.map((id, index) => [id, index]));

  const groups = new Map<string, { first: JudgedFinding; level: SarifLevel; severity: Severity; occurrences: number }>();
  for (const f of report.findings) {
    // The lead's schema gains `action`; until every report carries it, `failing` alone decides.
    if ((f as { action?: string }).action === 'ignore') continue;
    const fingerprint = sarifFingerprint(f);
    const level = levelOf(f);
    const group = groups.get(fingerprint);
    if (!group) {
      groups.set(fingerprint, { first: f, level, severity: f.severity, occurrences: occurrencesOf(f) });
      continue;
    }
    group.occurrences += occurrencesOf(f);
    if (LEVEL_RANK[level] > LEVEL_RANK[group.level] || (level === group.level && SEVERITY_RANK[f.severity] > SEVERITY_RANK[group.severity])) {
      group.first = f;
    }
    if (LEVEL_RANK[level] > LEVEL_RANK[group.level]) group.level = level;
    if (SEVERITY_RANK[f.severity] > SEVERITY_RANK[group.severity]) group.severity = f.severity;
  }

  const results = [...groups].map(([fingerprint, { first: f, level, severity, occurrences }]): SarifResult => ({
    ruleId: f.rule,
    ruleIndex: ruleIndex.get(f.rule) ?? -1,
    level,
    message: { text: sarifText(f.message === '' ? CATALOGUE[f.rule].description : f.message) },
    locations: [{ physicalLocation: { artifactLocation: { uri }, region: { startLine: lineOf(f.package) } } }],
    partialFingerprints: { [FINGERPRINT_KEY]: fingerprint },
    properties: { package: f.package, phase: f.phase ?? null, severity, evidence: f.evidence, occurrences },
  }));

  return {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'sandbox-install', version: report.tool.version, rules: RULE_IDS.map(ruleDescriptor) } },
        results,
      },
    ],
  };
}
