import { z } from 'zod';
import { Severity } from '../core/finding.js';
import { RULE_IDS } from '../core/rules.js';

/** A rule id, or a family wildcard such as `network.*`. */
const RulePattern = z.string().refine((value) => value.endsWith('.*') || (RULE_IDS as readonly string[]).includes(value), {
  message: 'not a known rule id or family wildcard (family.*)',
});

const KnownGoodPth = z.object({ name: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/) }).strict();

/** A policy file as written: everything optional so it can extend a preset. */
export const PolicyFile = z
  .object({
    $comment: z.string().optional(),
    name: z.string().optional(),
    extends: z.string().optional(),
    failOn: z.array(RulePattern).optional(),
    warnOnly: z.array(RulePattern).optional(),
    build: z
      .object({ allow: z.array(z.string()) })
      .strict()
      .optional(),
    onlyBinary: z.boolean().optional(),
    allowLockIndexUrl: z.boolean().optional(),
    knownGoodPth: z.array(KnownGoodPth).optional(),
    severities: z.record(RulePattern, Severity).optional(),
    packages: z
      .object({ allow: z.array(z.string()).default([]), deny: z.array(z.string()).default([]) })
      .strict()
      .optional(),
    process: z
      .object({ execWatch: z.array(z.string().min(1)) })
      .strict()
      .optional(),
    export: z.boolean().optional(),
  })
  .strict();
export type PolicyFile = z.infer<typeof PolicyFile>;

/** A policy after `extends` is resolved: nothing optional. */
export interface Policy {
  name: string;
  failOn: string[];
  /** Rules reported as warnings for a reviewer, never failing (an exact id or a family wildcard). */
  warnOnly: string[];
  build: { allow: string[] };
  onlyBinary: boolean;
  allowLockIndexUrl: boolean;
  knownGoodPth: Array<{ name: string; sha256: string }>;
  severities: Record<string, Severity>;
  /** Packages whose findings are accepted (not failing), and packages that fail outright. */
  packages: { allow: string[]; deny: string[] };
  /** Executables whose run during the install is `process.exec`: shells and network tools. */
  process: { execWatch: string[] };
  export: boolean;
}

export function matchesRule(pattern: string, rule: string): boolean {
  return pattern.endsWith('.*') ? rule.startsWith(pattern.slice(0, -1)) : pattern === rule;
}
