import type { Report } from './schema.js';
import { keepMostSevere } from './bound.js';
import { headUnits } from './cut.js';
import { escapeControl } from './escape.js';

const COLORS = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;
type Color = keyof typeof COLORS;

type JudgedFinding = Report['findings'][number];

export interface SummaryLimits {
  /** Findings listed under one package; the rest are one `… N more findings` line. */
  findingsPerPackage: number;
  /** Lines in the whole summary, the final `… N more findings` line included. At least 8. */
  lines: number;
  /** A message, package name, path or error, after escaping. */
  textChars: number;
  /** One evidence field's value, after escaping. */
  evidenceChars: number;
}

/** A screen or two: the JSON report has the rest. */
export const SUMMARY_LIMITS: Readonly<SummaryLimits> = { findingsPerPackage: 20, lines: 200, textChars: 300, evidenceChars: 200 };

function paint(enabled: boolean) {
  return (color: Color, text: string) => (enabled ? `\x1b[${COLORS[color]}m${text}\x1b[0m` : text);
}

/**
 * Package-controlled text for the terminal: escaped, then cut to `max` with a `…`. Escaping only
 * lengthens, so escaping the first max + 1 units gives the same head as escaping all of a 4 MB
 * argv, and the cut comes after the escape so it never leaves half an escape raw.
 */
function clip(text: string, max: number): string {
  const escaped = escapeControl(text.length > max ? text.slice(0, max + 1) : text);
  return escaped.length > max ? `${headUnits(escaped, max)}…` : escaped;
}

/** Evidence on one line: the few fields that say what happened, package-controlled text escaped. */
export function evidenceLine(evidence: Record<string, unknown>, max = SUMMARY_LIMITS.evidenceChars): string {
  const fields: string[] = [];
  for (const key of Object.keys(evidence)) {
    if (fields.length === 6) break;
    const value = evidence[key];
    if (value === undefined || value === null || typeof value === 'object') continue;
    fields.push(`${clip(key, 40)}=${clip(String(value), max)}`);
  }
  return fields.join(' ');
}

const more = (n: number) => `… ${n} more finding${n === 1 ? '' : 's'} (see the JSON report)`;

/**
 * Low findings that do not fail, as one line: each rule with its count and first packages. They
 * are advice (an entry point pytest loads, a source that cannot run); the JSON report lists each.
 */
function lowLine(low: JudgedFinding[], max: number): string {
  const byRule = new Map<string, Set<string>>();
  const count = new Map<string, number>();
  for (const f of low) {
    const packages = byRule.get(f.rule) ?? new Set<string>();
    packages.add(f.package ?? '(unattributed)');
    byRule.set(f.rule, packages);
    count.set(f.rule, (count.get(f.rule) ?? 0) + 1);
  }
  const parts = [...byRule].map(([rule, packages]) => {
    const names = [...packages];
    return `${rule} ×${count.get(rule) ?? 0} (${names.slice(0, 3).join(', ')}${names.length > 3 ? `, ${names.length - 3} more` : ''})`;
  });
  return clip(`${low.length} low finding${low.length === 1 ? '' : 's'}, not failing: ${parts.join('; ')}`, max);
}

/**
 * The short human summary on stdout: verdict, then findings grouped by package, at most
 * `findingsPerPackage` per package (the failing and most severe) and `lines` lines in all. Low
 * findings that do not fail are one line with their count at the end.
 */
export function renderSummary(report: Report, color: boolean, limits: SummaryLimits = SUMMARY_LIMITS): string {
  const c = paint(color);
  const verdictColor: Color = report.verdict === 'pass' ? 'green' : report.verdict === 'fail' ? 'red' : 'yellow';
  // Ignored and suppressed findings stay in the JSON report only; info ones unless they fail.
  const shown = report.findings.filter((f) => f.action !== 'ignore' && (f.severity !== 'info' || f.failing));
  const warnings = shown.filter((f) => f.action === 'warn').length;
  const suppressed = report.findings.filter((f) => f.suppressed).length;
  const header =
    `${c('bold', 'sandbox-install')} ${c(verdictColor, report.verdict.toUpperCase())}  ${clip(report.lockfile, limits.textChars)}  ` +
    `${report.packages.length} packages, ${shown.length} findings${warnings > 0 ? ` (${warnings} warning${warnings === 1 ? '' : 's'})` : ''}` +
    `${suppressed > 0 ? `, ${suppressed} suppressed` : ''}, policy ${clip(report.policy, limits.textChars)}`;
  const footer: string[] = [];
  if (report.exported) footer.push(`  exported ${clip(report.exported, limits.textChars)}`);
  else if (report.verdict !== 'pass') footer.push('  nothing exported');
  if (report.error) footer.push(`  ${c('yellow', clip(String(report.error.message ?? ''), limits.textChars))}`);

  const isLow = (f: JudgedFinding) => f.severity === 'low' && !f.failing;
  const low = shown.filter(isLow);
  if (low.length > 0) footer.unshift(`  ${c('yellow', '!')} ${lowLine(low, limits.textChars * 2)}  ${c('dim', '(see the JSON report)')}`);

  const byPackage = new Map<string, JudgedFinding[]>();
  for (const f of shown) {
    if (isLow(f)) continue;
    const key = f.package ?? '(unattributed)';
    const list = byPackage.get(key);
    if (list) list.push(f);
    else byPackage.set(key, [f]);
  }

  const body: string[] = [];
  // One line stays free for a final `… N more findings` line.
  let room = limits.lines - 1 - footer.length - 1;
  let left = shown.length - low.length;
  for (const [pkg, findings] of byPackage) {
    // A package line and at least one finding or `more` line.
    if (room < 2) break;
    const fits = Math.min(limits.findingsPerPackage, room - 1);
    const listed = findings.length <= fits ? findings : keepMostSevere(findings, Math.min(limits.findingsPerPackage, room - 2), (f) => f);
    body.push(`  ${c('bold', clip(pkg, limits.textChars))}`);
    for (const f of listed) {
      const mark = f.failing ? c('red', '✗') : f.action === 'warn' && f.severity !== 'info' ? c('yellow', '!') : c('dim', '·');
      body.push(`    ${mark} ${f.rule} [${f.severity}] ${clip(f.message, limits.textChars)}  ${c('dim', evidenceLine(f.evidence, limits.evidenceChars))}`);
    }
    if (listed.length < findings.length) body.push(`    ${c('dim', more(findings.length - listed.length))}`);
    room -= 1 + listed.length + (listed.length < findings.length ? 1 : 0);
    left -= findings.length;
  }
  if (left > 0) body.push(`  ${c('dim', more(left))}`);
  return [header, ...body, ...footer].join('\n') + '\n';
}

/** Timeline lines in the terminal; the JSON report has the whole timeline. */
export const TIMELINE_LINES = 200;

/**
 * investigate's timeline: per phase, per package, what each did with its offset from the phase's
 * start. At most `lines` lines; package-controlled text escaped.
 */
export function renderTimeline(report: Report, color: boolean, lines = TIMELINE_LINES, textChars = SUMMARY_LIMITS.textChars): string {
  const c = paint(color);
  const entries = report.timeline ?? [];
  const out = [c('bold', 'timeline')];
  if (entries.length === 0) return `${out[0]}: nothing any package did\n`;
  let shown = 0;
  for (const phase of [...new Set(entries.map((e) => e.phase))]) {
    if (out.length >= lines - 1) break;
    out.push(`  ${c('bold', clip(phase, 40))}`);
    const inPhase = entries.filter((e) => e.phase === phase);
    for (const pkg of [...new Set(inPhase.map((e) => e.package))]) {
      if (out.length >= lines - 1) break;
      out.push(`    ${c('bold', clip(pkg, textChars))}`);
      for (const e of inPhase.filter((x) => x.package === pkg)) {
        if (out.length >= lines) break;
        const count = e.count === undefined ? '' : c('dim', ` ×${e.count}`);
        out.push(`      ${c('dim', `+${e.offset.toFixed(3)}s`.padStart(10))}  ${clip(e.kind, 12).padEnd(9)} ${clip(e.what, textChars)}${count}`);
        shown++;
      }
    }
  }
  if (shown < entries.length) out.push(`  ${c('dim', `… ${entries.length - shown} more (see the JSON report)`)}`);
  return out.join('\n') + '\n';
}

/** Failed and timed-out modules named in the terminal, of each kind; the JSON report has up to 100. */
export const COVERAGE_NAMES = 10;

/**
 * investigate's verdict in words and what the imports covered. A pass says that no behaviour the
 * policy fails was observed, in this sandbox, for the modules the import phase reached: never that
 * a package is clean. Module names are package-controlled: escaped.
 */
export function renderCoverage(report: Report, color: boolean, names = COVERAGE_NAMES): string {
  const c = paint(color);
  const out: string[] = [];
  if (report.verdict === 'pass')
    out.push(c('green', 'no behaviour observed') + ' that the policy fails, in what ran (not a proof that the packages are harmless)');
  const coverage = report.importCoverage;
  if (coverage === undefined) return out.length > 0 ? `${out.join('\n')}\n` : '';
  if (coverage === null) {
    out.push(`${c('bold', 'import coverage')}: ${c('yellow', 'unknown')} (the import phase did not run, or its report is missing)`);
    return `${out.join('\n')}\n`;
  }
  const skew =
    coverage.clockSkewSeconds > 0
      ? `, clock +${coverage.clockSkewSeconds}s`
      : coverage.clockSkewUnavailable
        ? `, ${c('yellow', 'clock skew unavailable')}`
        : '';
  out.push(
    `${c('bold', 'import coverage')}: ${coverage.imported} of ${coverage.planned} modules imported, ${coverage.failed} failed, ${coverage.timedOut} timed out` +
      ` (${coverage.topLevel} top-level, ${coverage.processes} processes, linger ${coverage.lingerSeconds}s${skew})`,
  );
  if (coverage.boundHit) out.push(`  ${c('yellow', `bound hit: more than --max-modules ${coverage.maxModules} modules; the rest were not imported`)}`);
  for (const [label, list] of [
    ['failed', coverage.failedModules],
    ['timed out', coverage.timedOutModules],
  ] as const) {
    if (list.length === 0) continue;
    const shown = list.slice(0, names).map((name) => clip(name, 200));
    const rest = list.length - shown.length;
    out.push(`  ${label}: ${shown.join(', ')}${rest > 0 ? c('dim', ` … ${rest} more (see the JSON report)`) : ''}`);
  }
  return `${out.join('\n')}\n`;
}
