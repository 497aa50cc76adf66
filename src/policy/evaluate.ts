/** The policy evaluator: a pure function from what was observed to findings and a verdict. */
import { finding, type Finding } from '../core/finding.js';
import { matchesRule, type Policy } from './schema.js';

export type Verdict = 'pass' | 'fail' | 'error';

/**
 * Rules that `packages.allow` cannot accept: attacks on the tool itself, and code that would run
 * outside the package's own import (startup hooks, .pth lines, files nobody installed, writes into
 * the target), whose effects reach every other package.
 */
const UNACCEPTABLE = [
  'monitor.*',
  'resource.*',
  'integrity.*',
  'export.*',
  'policy.package-denied',
  'static.startup-hook',
  'static.pth-exec',
  'static.pth-path',
  'static.unrecorded-file',
  'static.import-shadowing',
  'fs.target-tamper',
];

export interface Judgement {
  verdict: Verdict;
  /** Every finding, with policy severities applied and `failing` marked. */
  findings: Array<Finding & { failing: boolean }>;
}

export interface EvaluationInput {
  findings: Finding[];
  /** Locked package names, to apply `packages.deny`. */
  packages: string[];
  /** pip ended with exit code 0 and the run was not cut short. */
  installSucceeded: boolean;
}

export function evaluate(input: EvaluationInput, policy: Policy): Judgement {
  const denied = input.packages
    .filter((name) => policy.packages.deny.includes(name))
    .map((name) => finding('policy.package-denied', 'high', `${name} is denied by policy ${policy.name}`, { package: name }, name));
  const judged = [...input.findings, ...denied].map((f) => {
    // An exact rule id wins over a family wildcard, whatever order the policy lists them in.
    const wildcard = Object.entries(policy.severities).find(([pattern]) => pattern.endsWith('.*') && matchesRule(pattern, f.rule));
    const severity = policy.severities[f.rule] ?? wildcard?.[1] ?? f.severity;
    // Allowing a package accepts what it does, never an attack on the tool itself (tracer,
    // monitor, proxy integrity, limits, export), and never a denial.
    const accepted = !UNACCEPTABLE.some((pattern) => matchesRule(pattern, f.rule)) && f.package !== null && policy.packages.allow.includes(f.package);
    const warnOnly = policy.warnOnly.some((pattern) => matchesRule(pattern, f.rule));
    const failing = severity !== 'info' && !accepted && !warnOnly && policy.failOn.some((pattern) => matchesRule(pattern, f.rule));
    return { ...f, severity, failing };
  });
  const verdict: Verdict = judged.some((f) => f.failing) ? 'fail' : input.installSucceeded ? 'pass' : 'error';
  return { verdict, findings: judged };
}
