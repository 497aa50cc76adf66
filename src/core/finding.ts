import { z } from 'zod';
import { RULE_IDS, type RuleId as CatalogueId, type Severity as SeverityName } from './rules.js';

/** A rule id from the catalogue (core/rules.ts): findings can carry no other. */
export const RuleId = z.enum(RULE_IDS as [CatalogueId, ...CatalogueId[]]);
export type RuleId = CatalogueId;

export const Severity = z.enum(['info', 'low', 'medium', 'high', 'critical']) satisfies z.ZodType<SeverityName>;
export type Severity = SeverityName;

export const Finding = z.object({
  rule: RuleId,
  severity: Severity,
  /** Normalised name of the distribution the finding is attributed to, or null when unknown. */
  package: z.string().nullable(),
  message: z.string(),
  /** pid and argv, path, address, request: whatever shows what happened. */
  evidence: z.record(z.string(), z.unknown()),
  /** The phase of the run it happened in (install, import, …); absent for what precedes any phase (the lockfile's own lines). */
  phase: z.string().optional(),
});
export type Finding = z.infer<typeof Finding>;

export function finding(rule: RuleId, severity: Severity, message: string, evidence: Record<string, unknown>, pkg: string | null = null): Finding {
  return { rule, severity, package: pkg, message, evidence };
}
