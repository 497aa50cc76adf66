import { z } from 'zod';

/** The rule catalogue (DESIGN.md). Rule ids are a public contract: reports, SARIF and policies use them. */
export const RULES = [
  'integrity.hash-mismatch',
  'integrity.unlocked-request',
  'integrity.build-requirement',
  'integrity.installed-mismatch',
  'lock.unhashed',
  'lock.unpinned',
  'lock.invalid',
  'lock.index-url',
  'network.dns',
  'network.connect',
  'network.http',
  'network.unix-socket',
  'fs.write-outside-target',
  'fs.sensitive-read',
  'fs.target-tamper',
  'process.exec',
  'process.lingering',
  'static.pth-exec',
  'static.pth-path',
  'static.autoload-entry-point',
  'static.import-shadowing',
  'static.invalid-source',
  'static.startup-hook',
  'static.unrecorded-file',
  'static.script-shadowing',
  'static.special-file',
  'monitor.tampered',
  'resource.timeout',
  'resource.pids',
  'resource.memory',
  'resource.disk',
  'install.failed',
  'policy.sdist-forbidden',
  'policy.package-denied',
  'export.unsafe-entry',
] as const;

export const RuleId = z.enum(RULES);
export type RuleId = z.infer<typeof RuleId>;

export const Severity = z.enum(['info', 'low', 'medium', 'high', 'critical']);
export type Severity = z.infer<typeof Severity>;

export const Finding = z.object({
  rule: RuleId,
  severity: Severity,
  /** Normalised name of the distribution the finding is attributed to, or null when unknown. */
  package: z.string().nullable(),
  message: z.string(),
  /** pid and argv, path, address, request: whatever shows what happened. */
  evidence: z.record(z.string(), z.unknown()),
});
export type Finding = z.infer<typeof Finding>;

export function finding(
  rule: RuleId,
  severity: Severity,
  message: string,
  evidence: Record<string, unknown>,
  pkg: string | null = null,
): Finding {
  return { rule, severity, package: pkg, message, evidence };
}
