import type { Report } from './schema.js';
import { escapeControl } from './escape.js';

const COLORS = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1 } as const;
type Color = keyof typeof COLORS;

function paint(enabled: boolean) {
  return (color: Color, text: string) => (enabled ? `\x1b[${COLORS[color]}m${text}\x1b[0m` : text);
}

/** Evidence on one line: the few fields that say what happened, package-controlled text escaped. */
export function evidenceLine(evidence: Record<string, unknown>): string {
  return Object.entries(evidence)
    .filter(([, value]) => value !== undefined && value !== null && typeof value !== 'object')
    .slice(0, 6)
    .map(([key, value]) => `${key}=${escapeControl(String(value)).slice(0, 200)}`)
    .join(' ');
}

/** The short human summary on stdout: verdict, then findings grouped by package. */
export function renderSummary(report: Report, color: boolean): string {
  const c = paint(color);
  const lines: string[] = [];
  const verdictColor: Color = report.verdict === 'pass' ? 'green' : report.verdict === 'fail' ? 'red' : 'yellow';
  const shown = report.findings.filter((f) => f.severity !== 'info' || f.failing);
  lines.push(
    `${c('bold', 'sandbox-install')} ${c(verdictColor, report.verdict.toUpperCase())}  ${escapeControl(report.lockfile)}  ` +
      `${report.packages.length} packages, ${shown.length} findings, policy ${report.policy}`,
  );
  const byPackage = new Map<string, typeof shown>();
  for (const f of shown) {
    const key = f.package ?? '(unattributed)';
    byPackage.set(key, [...(byPackage.get(key) ?? []), f]);
  }
  for (const [pkg, findings] of byPackage) {
    lines.push(`  ${c('bold', escapeControl(pkg))}`);
    for (const f of findings) {
      const mark = f.failing ? c('red', '✗') : c('dim', '·');
      lines.push(`    ${mark} ${f.rule} [${f.severity}] ${escapeControl(f.message)}  ${c('dim', evidenceLine(f.evidence))}`);
    }
  }
  if (report.exported) lines.push(`  exported ${escapeControl(report.exported)}`);
  else if (report.verdict !== 'pass') lines.push('  nothing exported');
  if (report.error) lines.push(`  ${c('yellow', escapeControl(String(report.error.message ?? '')))}`);
  return lines.join('\n') + '\n';
}
