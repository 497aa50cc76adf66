/**
 * The policy file format, as a zod schema. `policies/schema.json` is generated from `PolicyFile`
 * (scripts/generate-schemas.ts) so editors complete and check policies; a unit test fails when the
 * checked-in copy is stale.
 */
import { z } from 'zod';
import { Severity } from '../core/finding.js';
import { familyOf, RULE_IDS } from '../core/rules.js';
import type { BuildPin } from '../lock/build-pins.js';

/** What a policy does with a finding: fail the run, report it as a warning, or drop it from the output. */
export const Action = z.enum(['fail', 'warn', 'ignore']);
export type Action = z.infer<typeof Action>;

const FAMILY_PATTERNS = [...new Set(RULE_IDS.map((id) => `${familyOf(id)}.*`))];

/** A rule id from the catalogue, or a family wildcard such as `network.*`. */
export const RulePattern = z.enum([...RULE_IDS, ...FAMILY_PATTERNS] as [string, ...string[]], {
  error: (issue) => `unknown rule id or family '${String(issue.input)}' (see the rule catalogue; a family is written family.*)`,
});

/**
 * Rules no policy can relax: attacks on the tool itself (tracer, monitor, proxy integrity, limits,
 * export, the calls its seccomp filters refuse), denials, and code that would run outside the package's own import (startup hooks, .pth
 * lines, files nobody installed, writes into the target, modules named like another package's or
 * the standard library's), whose effects reach every other package.
 * `packages.allow`, a `warn`/`ignore` action and a suppression never apply to them.
 */
export const NEVER_RELAXED = [
  'monitor.*',
  'resource.*',
  'integrity.*',
  'export.*',
  'policy.package-denied',
  'policy.sdist-forbidden',
  'static.startup-hook',
  'static.pth-exec',
  'static.pth-path',
  'static.unrecorded-file',
  'static.import-shadowing',
  'static.stdlib-shadowing',
  'fs.target-tamper',
  'fs.autorun-write',
  // A secret that left is a secret that left, whoever sent it: no allow-list or action makes it a warning.
  'network.canary-exfil',
  'process.forbidden-syscall',
  // One build reaching another's files: whoever the meddler is, the victim's build is not its own.
  'fs.build-meddling',
];

export function neverRelaxed(rule: string): boolean {
  return NEVER_RELAXED.some((pattern) => matchesRule(pattern, rule));
}

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'not a lowercase hex sha256');
/** A normalised project name, as the lock and the report write it. */
const ProjectName = z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/, 'not a project name');
/** A path relative to site-packages, as a RECORD writes it: no `..`, not absolute. */
const SitePath = z
  .string()
  .min(1)
  .refine(
    (p) => !p.startsWith('/') && !p.includes('\0') && !p.split('/').some((part) => part === '..' || part === '.' || part === ''),
    'not a path inside site-packages',
  );

/**
 * A top-level `.pth` whose executable lines are accepted: its file name and exact sha256, the
 * distribution that must own it, and every file of that distribution its lines import, each with
 * its sha256 (a `.pth` that imports code is only as good as that code). The failing finding of
 * `static.pth-exec` prints the entry to add.
 */
export const KnownGoodPth = z
  .object({
    name: z.string().min(1),
    sha256: Sha256,
    distribution: ProjectName.optional(),
    imports: z.array(z.object({ path: SitePath, sha256: Sha256 }).strict()).optional(),
    /** Directories (relative to site-packages) the imported code puts on sys.path: scanned as import roots, like a path line. */
    adds: z.array(SitePath).optional(),
    reason: z.string().min(1).optional(),
    source: z.string().min(1).optional(),
  })
  .strict();
export type KnownGoodPth = z.infer<typeof KnownGoodPth>;

/** Console scripts named like a tool that are accepted from one distribution only: that tool's own. */
export const KnownGoodScripts = z
  .object({
    distribution: ProjectName,
    scripts: z.array(z.string().min(1)).min(1),
    reason: z.string().min(1).optional(),
    source: z.string().min(1).optional(),
  })
  .strict();
export type KnownGoodScripts = z.infer<typeof KnownGoodScripts>;

/**
 * A backport of a standard-library module accepted from one distribution, by its file's exact
 * sha256: the finding becomes `static.stdlib-backport`, a warning, since with the export on
 * PYTHONPATH it still replaces Python's own module.
 */
export const KnownGoodStdlib = z
  .object({
    distribution: ProjectName,
    path: SitePath,
    sha256: Sha256,
    reason: z.string().min(1).optional(),
    source: z.string().min(1).optional(),
  })
  .strict();
export type KnownGoodStdlib = z.infer<typeof KnownGoodStdlib>;

/** A file of reviewed allowances (policies/known-good.json), named by a policy's `knownGood`. */
export const KnownGoodFile = z
  .object({
    $schema: z.string().optional(),
    $comment: z.string().optional(),
    pth: z.array(KnownGoodPth).default([]),
    scripts: z.array(KnownGoodScripts).default([]),
    stdlib: z.array(KnownGoodStdlib).default([]),
  })
  .strict();
/** A build requirement pinned like a lock entry: one version, the sha256 of each file it may use. */
const PinnedBuildRequirement = z
  .object({
    name: ProjectName,
    version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9.+!_-]*$/, 'not a version'),
    sha256: z.array(Sha256).min(1),
  })
  .strict();

/** An absolute, normalised path inside the sandbox. */
const SandboxPath = z
  .string()
  .regex(/^\/[^\0]*$/, 'not an absolute path')
  .refine((p) => !p.split('/').some((part) => part === '..' || part === '.') && !p.includes('//') && (p === '/' || !p.endsWith('/')), 'not a normalised path')
  .refine((p) => p !== '/', 'the whole filesystem cannot be allowed');

export const Suppression = z
  .object({
    rule: RulePattern.refine((r) => !r.endsWith('.*'), 'a suppression names one rule id, not a family').refine(
      (r) => !neverRelaxed(r),
      'this rule cannot be suppressed: attacks on the tool and code that reaches every package always count',
    ),
    /** The package the finding is attributed to; null for an unattributed one. */
    package: ProjectName.nullable(),
    /** Every key given must equal the finding's evidence value (strings, numbers, booleans). */
    evidence: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
    /** Why it is accepted: shown in the report next to the finding. */
    reason: z.string().min(1),
    /** The last day (UTC) it applies; after it the finding counts again and the run says so. */
    expires: z.iso.date().optional(),
  })
  .strict();
export type Suppression = z.infer<typeof Suppression>;

const Limits = z
  .object({
    timeoutSeconds: z.number().int().min(10).max(86_400).optional(),
    memoryMb: z.number().int().min(128).max(65_536).optional(),
    pids: z.number().int().min(64).max(32_768).optional(),
    /** What the sandbox may write to its own filesystem (default 10 GiB). */
    diskMb: z.number().int().min(64).max(1_048_576).optional(),
  })
  .strict();

/** A policy file as written: everything optional so it can extend a preset. */
export const PolicyFile = z
  .object({
    $schema: z.string().optional(),
    $comment: z.string().optional(),
    name: z.string().optional(),
    /** A preset name (default, strict, investigate) or a path relative to this file. */
    extends: z.string().optional(),
    /** The action per rule id or family. The most specific pattern wins; a rule no pattern names is a warning. */
    rules: z
      .partialRecord(RulePattern, Action)
      .superRefine((rules, ctx) => {
        for (const [rule, action] of Object.entries(rules)) {
          if (action !== 'fail' && !rule.endsWith('.*') && neverRelaxed(rule)) {
            ctx.addIssue({
              code: 'custom',
              path: [rule],
              message: `${rule} always fails: attacks on the tool and code that reaches every package cannot be relaxed`,
            });
          }
        }
      })
      .optional(),
    /**
     * Build requirements the proxy may serve when a locked sdist is built (pip #11974): a pin
     * (`{name, version, sha256}`, served like a locked file), or a bare project name, the explicit
     * opt-in to an unpinned one (the newest release is picked before the run and marked).
     */
    build: z
      .object({ allow: z.array(z.union([ProjectName, PinnedBuildRequirement])) })
      .strict()
      .optional(),
    /** Refuse sdists: a lock entry with only an sdist fails before any container starts. */
    onlyBinary: z.boolean().optional(),
    allowLockIndexUrl: z.boolean().optional(),
    /** Files of reviewed allowances (`.pth` files, console scripts), relative to this file; extends the base policy's. */
    knownGood: z.array(z.string().min(1)).optional(),
    /** `.pth` files accepted by name and sha256 (and owner, and the code they import); extends the base policy's list. */
    knownGoodPth: z.array(KnownGoodPth).optional(),
    /** Console scripts named like a tool, accepted from that tool's own distribution; extends the base policy's list. */
    knownGoodScripts: z.array(KnownGoodScripts).optional(),
    /** Standard-library backports accepted as a warning, by distribution, file and sha256; extends the base policy's list. */
    knownGoodStdlib: z.array(KnownGoodStdlib).optional(),
    severities: z.partialRecord(RulePattern, Severity).optional(),
    packages: z
      .object({ allow: z.array(ProjectName).default([]), deny: z.array(ProjectName).default([]) })
      .strict()
      .optional(),
    process: z
      .object({ execWatch: z.array(z.string().min(1)) })
      .strict()
      .optional(),
    /** Paths outside the target where an install may write (a directory allows everything under it); extends the base list. */
    writes: z
      .object({ allow: z.array(SandboxPath) })
      .strict()
      .optional(),
    limits: Limits.optional(),
    suppressions: z.array(Suppression).optional(),
    export: z.boolean().optional(),
  })
  .strict();
export type PolicyFile = z.infer<typeof PolicyFile>;

/** A policy after `extends` is resolved: nothing optional. */
export interface Policy {
  name: string;
  /** Pattern → action; resolved by `actionFor`. */
  rules: Record<string, Action>;
  /** Unpinned build requirements by normalised name (the explicit opt-in), and pinned ones. */
  build: { allow: string[]; pins: BuildPin[] };
  onlyBinary: boolean;
  allowLockIndexUrl: boolean;
  knownGoodPth: KnownGoodPth[];
  knownGoodScripts: KnownGoodScripts[];
  knownGoodStdlib: KnownGoodStdlib[];
  severities: Record<string, Severity>;
  /** Packages whose findings are accepted (not failing), and packages that fail outright. */
  packages: { allow: string[]; deny: string[] };
  /** Executables whose run during the install is `process.exec`: shells and network tools. */
  process: { execWatch: string[] };
  writes: { allow: string[] };
  limits: z.infer<typeof Limits>;
  /** Suppressions still in force. */
  suppressions: Suppression[];
  /** Suppressions past their expiry date: they no longer apply, and the run reports each. */
  expiredSuppressions: Suppression[];
  export: boolean;
}

export function matchesRule(pattern: string, rule: string): boolean {
  return pattern.endsWith('.*') ? rule.startsWith(pattern.slice(0, -1)) : pattern === rule;
}

/** The value of the most specific pattern naming `rule` (an exact id, then its family), if any. */
export function mostSpecific<T>(map: Record<string, T>, rule: string): T | undefined {
  return map[rule] ?? Object.entries(map).find(([pattern]) => pattern.endsWith('.*') && matchesRule(pattern, rule))?.[1];
}

/** What the policy does with a finding of `rule`: a rule no pattern names is a warning. */
export function actionFor(policy: Pick<Policy, 'rules'>, rule: string): Action {
  return mostSpecific(policy.rules, rule) ?? 'warn';
}

/** The JSON Schema of policy files (draft-07, what editors understand best); checked in as policies/schema.json. */
export function policyJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(PolicyFile, { target: 'draft-7', io: 'input' }),
    title: 'sandbox-install policy',
    description:
      'A policy for sandbox-install: the action per rule, packages, build requirements, writes, limits and suppressions. Generated from src/policy/schema.ts.',
  };
}

/** The JSON Schema of known-good files (policies/known-good.schema.json). */
export function knownGoodJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(KnownGoodFile, { target: 'draft-7', io: 'input' }),
    title: 'sandbox-install known-good allowances',
    description: 'Reviewed .pth files and console scripts a policy accepts (its knownGood list). Generated from src/policy/schema.ts.',
  };
}
