/** The policy evaluator: a pure function from what was observed to findings and a verdict. */
import { finding, type Finding } from '../core/finding.js';
import { actionFor, mostSpecific, neverRelaxed, type Action, type Policy, type Suppression } from './schema.js';

export type Verdict = 'pass' | 'fail' | 'error';

export type JudgedFinding = Finding & {
  /** What the policy does with it: `ignore` keeps it in the JSON report only. */
  action: Action;
  /** It fails the run: action `fail` and a severity above info. */
  failing: boolean;
  /** The policy's suppression that accepted it. */
  suppressed?: { reason: string; expires: string | null };
};

export interface Judgement {
  verdict: Verdict;
  /** Every finding, with policy severities applied, its action, and `failing` marked. */
  findings: JudgedFinding[];
}

export interface EvaluationInput {
  findings: Finding[];
  /** Locked package names, to apply `packages.deny`. */
  packages: string[];
  /** pip ended with exit code 0 and the run was not cut short. */
  installSucceeded: boolean;
}

function matches(s: Suppression, f: Finding): boolean {
  return s.rule === f.rule && s.package === f.package && Object.entries(s.evidence).every(([key, value]) => f.evidence[key] === value);
}

function expiredFindings(policy: Policy): Finding[] {
  return policy.expiredSuppressions.map((s) =>
    finding(
      'policy.suppression-expired',
      'low',
      `the suppression of ${s.rule} for ${s.package ?? 'unattributed findings'} expired on ${s.expires ?? '?'}; what it suppressed counts again`,
      { rule: s.rule, suppressedPackage: s.package, expires: s.expires ?? null, reason: s.reason },
    ),
  );
}

export function evaluate(input: EvaluationInput, policy: Policy): Judgement {
  const denied = input.packages
    .filter((name) => policy.packages.deny.includes(name))
    .map((name) => finding('policy.package-denied', 'high', `${name} is denied by policy ${policy.name}`, { package: name }, name));
  const judged = [...input.findings, ...denied, ...expiredFindings(policy)].map((f): JudgedFinding => {
    // Nothing relaxes an attack on the tool itself or code that reaches every package, not even a
    // lower severity.
    if (neverRelaxed(f.rule)) return { ...f, action: 'fail', failing: f.severity !== 'info' };
    const severity = mostSpecific(policy.severities, f.rule) ?? f.severity;
    const suppression = policy.suppressions.find((s) => matches(s, f));
    if (suppression)
      return { ...f, severity, action: 'ignore', failing: false, suppressed: { reason: suppression.reason, expires: suppression.expires ?? null } };
    // Allowing a package accepts what it does: reported, never failing.
    const accepted = f.package !== null && policy.packages.allow.includes(f.package);
    const ruled = actionFor(policy, f.rule);
    const action: Action = accepted && ruled === 'fail' ? 'warn' : ruled;
    return { ...f, severity, action, failing: action === 'fail' && severity !== 'info' };
  });
  const verdict: Verdict = judged.some((f) => f.failing) ? 'fail' : input.installSucceeded ? 'pass' : 'error';
  return { verdict, findings: judged };
}
