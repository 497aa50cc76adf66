import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { finding, Severity, type Finding } from '../core/finding.js';
import { RULE_IDS } from '../core/rules.js';
import { evaluate, type EvaluationInput } from './evaluate.js';
import { loadPolicy } from './load.js';
import type { Policy, Suppression } from './schema.js';

/** A resolved policy as loadPolicy returns it; each case changes what it is about. */
function policy(overrides: Partial<Policy> = {}): Policy {
  return {
    name: 'test',
    rules: { 'network.*': 'fail', 'fs.write-outside-target': 'fail', 'policy.*': 'fail', 'monitor.*': 'fail' },
    build: { allow: [], pins: [] },
    onlyBinary: false,
    allowLockIndexUrl: false,
    knownGoodPth: [],
    knownGoodScripts: [],
    knownGoodStdlib: [],
    severities: {},
    packages: { allow: [], deny: [] },
    process: { execWatch: ['sh'] },
    writes: { allow: [] },
    limits: {},
    suppressions: [],
    expiredSuppressions: [],
    export: true,
    ...overrides,
  };
}

const input = (findings: Finding[], extra: Partial<EvaluationInput> = {}): EvaluationInput => ({
  findings,
  packages: ['evil-pkg', 'six'],
  installSucceeded: true,
  ...extra,
});

const DNS = finding('network.dns', 'high', 'DNS query for x.test', { name: 'x.test', pid: 11, cached: false }, 'evil-pkg');
const EXEC = finding('process.exec', 'high', 'ran sh: sh -c id', { argv: 'sh -c id' }, 'evil-pkg');
const TAMPERED = finding('monitor.tampered', 'critical', 'kill(1, SIGKILL)', { target: 1 }, 'evil-pkg');

describe('evaluate: verdict', () => {
  it('passes a successful install with no findings', () => {
    expect(evaluate(input([]), policy())).toEqual({ verdict: 'pass', findings: [] });
  });

  it('fails on a finding whose rule a family wildcard makes fail, and marks it failing', () => {
    expect(evaluate(input([DNS]), policy())).toEqual({ verdict: 'fail', findings: [{ ...DNS, action: 'fail', failing: true }] });
  });

  it('fails on a rule whose exact id is fail', () => {
    const write = finding('fs.write-outside-target', 'high', 'added /etc/x', { path: '/etc/x' }, null);
    expect(evaluate(input([write]), policy()).findings).toEqual([{ ...write, action: 'fail', failing: true }]);
  });

  it('passes with findings of rules no pattern names: they are warnings', () => {
    const read = finding('fs.sensitive-read', 'high', 'tried to open ~/.ssh/id_rsa', { path: '/home/sandbox/.ssh/id_rsa' }, 'evil-pkg');
    expect(evaluate(input([EXEC, read]), policy())).toEqual({
      verdict: 'pass',
      findings: [
        { ...EXEC, action: 'warn', failing: false },
        { ...read, action: 'warn', failing: false },
      ],
    });
  });

  it('warns by default: a policy with no rules at all fails nothing (but what is never relaxed)', () => {
    expect(evaluate(input([DNS, EXEC]), policy({ rules: {} }))).toEqual({
      verdict: 'pass',
      findings: [
        { ...DNS, action: 'warn', failing: false },
        { ...EXEC, action: 'warn', failing: false },
      ],
    });
  });

  it('is an error, not a pass, when the install failed and nothing failed the policy', () => {
    expect(evaluate(input([EXEC], { installSucceeded: false }), policy()).verdict).toBe('error');
  });

  it('is a fail, not an error, when the install failed and a finding fails the policy', () => {
    expect(evaluate(input([DNS], { installSucceeded: false }), policy()).verdict).toBe('fail');
  });

  it('does not read a family wildcard as a prefix of a family name', () => {
    expect(evaluate(input([DNS]), policy({ rules: { 'net.*': 'fail' } })).findings).toEqual([{ ...DNS, action: 'warn', failing: false }]);
    expect(evaluate(input([DNS]), policy({ rules: { 'network.*': 'fail' } })).verdict).toBe('fail');
  });
});

describe('evaluate: actions', () => {
  const connect = finding('network.connect', 'high', 'connect to 10.0.0.1:80', { address: '10.0.0.1', port: 80 }, 'six');

  it.each([
    ['fail', true],
    ['warn', false],
    ['ignore', false],
  ] as const)('applies %s by exact id and by family', (action, failing) => {
    const rulesCases: Array<Policy['rules']> = [{ 'network.dns': action }, { 'network.*': action }];
    for (const rules of rulesCases) {
      const judged = evaluate(input([DNS]), policy({ rules }));
      expect(judged).toEqual({ verdict: failing ? 'fail' : 'pass', findings: [{ ...DNS, action, failing }] });
    }
  });

  it('keeps an ignored finding in the list, with its action', () => {
    const judged = evaluate(input([DNS, connect]), policy({ rules: { 'network.*': 'ignore' } }));
    expect(judged.findings.map((f) => [f.rule, f.action, f.failing])).toEqual([
      ['network.dns', 'ignore', false],
      ['network.connect', 'ignore', false],
    ]);
  });

  it('lets the exact id win over its family, whichever is listed first', () => {
    const rulesCases: Array<Policy['rules']> = [
      { 'network.*': 'fail', 'network.dns': 'warn' },
      { 'network.dns': 'warn', 'network.*': 'fail' },
    ];
    for (const rules of rulesCases) {
      const judged = evaluate(input([DNS, connect]), policy({ rules }));
      expect(judged.findings.map((f) => [f.rule, f.action, f.failing])).toEqual([
        ['network.dns', 'warn', false],
        ['network.connect', 'fail', true],
      ]);
    }
    const ignored = evaluate(input([DNS, connect]), policy({ rules: { 'network.*': 'warn', 'network.dns': 'ignore', 'network.connect': 'fail' } }));
    expect(ignored.findings.map((f) => [f.rule, f.action])).toEqual([
      ['network.dns', 'ignore'],
      ['network.connect', 'fail'],
    ]);
  });

  it('reports an exact warn without failing even when its family fails (static.autoload-entry-point in default)', () => {
    const plugin = finding('static.autoload-entry-point', 'low', 'pytest11 entry point', { group: 'pytest11' }, 'pytest-x');
    const judged = evaluate(input([plugin]), policy({ rules: { 'static.*': 'fail', 'static.autoload-entry-point': 'warn' } }));
    expect(judged).toEqual({ verdict: 'pass', findings: [{ ...plugin, action: 'warn', failing: false }] });
    expect(evaluate(input([plugin]), policy({ rules: { 'static.*': 'fail' } })).verdict).toBe('fail');
  });
});

describe('evaluate: severities', () => {
  it('overrides a rule by family wildcard and by exact id', () => {
    const connect = finding('network.connect', 'high', 'connect to 10.0.0.1:80', {}, 'six');
    const { findings } = evaluate(input([DNS, connect, EXEC]), policy({ severities: { 'network.*': 'low', 'process.exec': 'critical' } }));
    expect(findings.map((f) => [f.rule, f.severity, f.action, f.failing])).toEqual([
      ['network.dns', 'low', 'fail', true],
      ['network.connect', 'low', 'fail', true],
      ['process.exec', 'critical', 'warn', false],
    ]);
  });

  it('never fails on a finding turned into info, whatever its action', () => {
    const judged = evaluate(input([DNS]), policy({ severities: { 'network.dns': 'info' } }));
    expect(judged).toEqual({ verdict: 'pass', findings: [{ ...DNS, severity: 'info', action: 'fail', failing: false }] });
  });

  it('never fails on a finding raised as info', () => {
    const info = finding('network.connect', 'info', 'noted', {}, null);
    expect(evaluate(input([info]), policy())).toEqual({ verdict: 'pass', findings: [{ ...info, action: 'fail', failing: false }] });
  });

  it('can raise an info finding so that it fails', () => {
    const info = finding('network.connect', 'info', 'noted', {}, null);
    expect(evaluate(input([info]), policy({ severities: { 'network.connect': 'medium' } })).findings).toEqual([
      { ...info, severity: 'medium', action: 'fail', failing: true },
    ]);
  });

  it('lets an exact severity override win over a family wildcard listed before it', () => {
    const judged = evaluate(input([DNS]), policy({ severities: { 'network.*': 'low', 'network.dns': 'info' } }));
    expect(judged.findings.map((f) => [f.severity, f.failing])).toEqual([['info', false]]);
    expect(judged.verdict).toBe('pass');
  });

  it('does not change the findings it was given', () => {
    const original = structuredClone(DNS);
    evaluate(input([DNS]), policy({ severities: { 'network.*': 'info' } }));
    expect(DNS).toEqual(original);
  });
});

describe('evaluate: packages', () => {
  it('turns the fails of an allowed package into warnings, but not those of others or unattributed ones', () => {
    const other = finding('network.dns', 'high', 'DNS query for y.test', { name: 'y.test' }, 'six');
    const nobody = finding('network.dns', 'high', 'DNS query for z.test', { name: 'z.test' }, null);
    const judged = evaluate(input([DNS, other, nobody]), policy({ packages: { allow: ['evil-pkg'], deny: [] } }));
    expect(judged.verdict).toBe('fail');
    expect(judged.findings.map((f) => [f.package, f.action, f.failing])).toEqual([
      ['evil-pkg', 'warn', false],
      ['six', 'fail', true],
      [null, 'fail', true],
    ]);
    expect(evaluate(input([DNS]), policy({ packages: { allow: ['evil-pkg'], deny: [] } }))).toEqual({
      verdict: 'pass',
      findings: [{ ...DNS, action: 'warn', failing: false }],
    });
  });

  it('leaves an ignored rule ignored for an allowed package', () => {
    const judged = evaluate(input([DNS]), policy({ rules: { 'network.dns': 'ignore' }, packages: { allow: ['evil-pkg'], deny: [] } }));
    expect(judged.findings).toEqual([{ ...DNS, action: 'ignore', failing: false }]);
  });

  it('adds policy.package-denied for each locked package on the deny list, after the given findings', () => {
    const judged = evaluate(
      input([EXEC], { packages: ['evil-pkg', 'six', 'requests'] }),
      policy({ name: 'mine', packages: { allow: [], deny: ['six', 'requests', 'absent'] } }),
    );
    expect(judged).toEqual({
      verdict: 'fail',
      findings: [
        { ...EXEC, action: 'warn', failing: false },
        {
          rule: 'policy.package-denied',
          severity: 'high',
          package: 'six',
          message: 'six is denied by policy mine',
          evidence: { package: 'six' },
          action: 'fail',
          failing: true,
        },
        {
          rule: 'policy.package-denied',
          severity: 'high',
          package: 'requests',
          message: 'requests is denied by policy mine',
          evidence: { package: 'requests' },
          action: 'fail',
          failing: true,
        },
      ],
    });
  });

  it('keeps a package denied when it is also on the allow list, and when the rules do not name policy.*', () => {
    const judged = evaluate(input([], { packages: ['six'] }), policy({ rules: {}, packages: { allow: ['six'], deny: ['six'] } }));
    expect(judged.verdict).toBe('fail');
    expect(judged.findings.map((f) => [f.rule, f.action, f.failing])).toEqual([['policy.package-denied', 'fail', true]]);
  });

  it('fails a denied package even when the install failed', () => {
    expect(evaluate(input([], { packages: ['six'], installSucceeded: false }), policy({ packages: { allow: [], deny: ['six'] } })).verdict).toBe('fail');
  });
});

describe('evaluate: what is never relaxed', () => {
  it('fails monitor.tampered under a policy whose monitor.* is warn', () => {
    expect(evaluate(input([TAMPERED]), policy({ rules: { 'monitor.*': 'warn' } }))).toEqual({
      verdict: 'fail',
      findings: [{ ...TAMPERED, action: 'fail', failing: true }],
    });
    expect(evaluate(input([TAMPERED]), policy({ rules: { 'monitor.*': 'ignore' } })).findings).toEqual([{ ...TAMPERED, action: 'fail', failing: true }]);
    expect(evaluate(input([TAMPERED]), policy({ rules: {} })).verdict).toBe('fail');
  });

  it('does not apply a severity override to it, by exact id or by family', () => {
    const severitiesCases: Array<Policy['severities']> = [{ 'monitor.tampered': 'info' }, { 'monitor.*': 'low' }];
    for (const severities of severitiesCases) {
      expect(evaluate(input([TAMPERED]), policy({ severities })).findings).toEqual([{ ...TAMPERED, action: 'fail', failing: true }]);
    }
  });

  it('does not let packages.allow accept it', () => {
    expect(evaluate(input([TAMPERED]), policy({ packages: { allow: ['evil-pkg'], deny: [] } })).findings).toEqual([
      { ...TAMPERED, action: 'fail', failing: true },
    ]);
  });

  it('does not let a suppression accept it, even one that got past the schema', () => {
    const suppression: Suppression = { rule: 'monitor.tampered', package: 'evil-pkg', evidence: {}, reason: 'no', expires: '2999-01-01' };
    expect(evaluate(input([TAMPERED]), policy({ suppressions: [suppression] })).findings).toEqual([{ ...TAMPERED, action: 'fail', failing: true }]);
  });

  it('keeps code that runs outside its own import failing for an allowed package, under warn rules', () => {
    const rules = [
      'static.startup-hook',
      'static.pth-exec',
      'static.pth-path',
      'static.unrecorded-file',
      'static.import-shadowing',
      'static.stdlib-shadowing',
      'fs.target-tamper',
      'integrity.installed-mismatch',
    ] as const;
    const judged = evaluate(
      input(rules.map((rule) => finding(rule, 'high', rule, {}, 'victim'))),
      policy({ rules: { 'static.*': 'warn', 'fs.*': 'warn', 'integrity.*': 'warn' }, packages: { allow: ['victim'], deny: [] } }),
    );
    expect(judged.findings.map((f) => [f.rule, f.action, f.failing])).toEqual(rules.map((rule) => [rule, 'fail', true]));
    // What the package does in its own build is still the allow list's to accept.
    const own = evaluate(
      input([finding('fs.write-outside-target', 'high', 'x', {}, 'victim'), finding('static.pth-exec', 'high', 'x', {}, 'victim')]),
      policy({ rules: { 'fs.*': 'fail', 'static.*': 'fail', 'static.pth-exec': 'fail' }, packages: { allow: ['victim'], deny: [] } }),
    );
    expect(own.findings.map((f) => [f.rule, f.action, f.failing])).toEqual([
      ['fs.write-outside-target', 'warn', false],
      ['static.pth-exec', 'fail', true],
    ]);
  });

  it('keeps a leaked canary failing for an allowed package, under a warn or ignore action, with a suppression', () => {
    const leak = finding('network.canary-exfil', 'critical', 'a canary left', { canary: 'GITHUB_TOKEN' }, 'victim');
    const suppression: Suppression = { rule: 'network.canary-exfil', package: 'victim', evidence: {}, reason: 'no', expires: '2999-01-01' };
    for (const relaxed of [
      policy({ packages: { allow: ['victim'], deny: [] } }),
      policy({ rules: { 'network.*': 'warn' } }),
      policy({ rules: { 'network.canary-exfil': 'ignore' } }),
      policy({ suppressions: [suppression] }),
    ]) {
      expect(evaluate(input([leak]), relaxed).findings.map((f) => [f.rule, f.action, f.failing])).toEqual([['network.canary-exfil', 'fail', true]]);
    }
  });

  it('keeps attacks on the tool failing for an allowed package', () => {
    const timeout = finding('resource.timeout', 'high', 'ran past --timeout', { timeoutSeconds: 5 }, 'evil-pkg');
    const smuggle = finding('integrity.unlocked-request', 'high', 'refused GET', { path: '/simple/x/' }, 'evil-pkg');
    const unsafe = finding('export.unsafe-entry', 'high', '../x', { name: '../x' }, 'evil-pkg');
    const judged = evaluate(
      input([DNS, TAMPERED, timeout, smuggle, unsafe]),
      policy({ rules: { 'network.*': 'fail' }, packages: { allow: ['evil-pkg'], deny: [] } }),
    );
    expect(judged.findings.map((f) => [f.rule, f.action, f.failing])).toEqual([
      ['network.dns', 'warn', false],
      ['monitor.tampered', 'fail', true],
      ['resource.timeout', 'fail', true],
      ['integrity.unlocked-request', 'fail', true],
      ['export.unsafe-entry', 'fail', true],
    ]);
    expect(judged.verdict).toBe('fail');
  });
});

describe('evaluate: suppressions', () => {
  const suppression = (overrides: Partial<Suppression> = {}): Suppression => ({
    rule: 'network.dns',
    package: 'evil-pkg',
    evidence: { name: 'x.test' },
    reason: 'the test suite resolves x.test on purpose',
    expires: '2999-12-31',
    ...overrides,
  });

  it('ignores a finding whose rule, package and given evidence keys match, and says why', () => {
    const judged = evaluate(input([DNS]), policy({ suppressions: [suppression()] }));
    expect(judged).toEqual({
      verdict: 'pass',
      findings: [{ ...DNS, action: 'ignore', failing: false, suppressed: { reason: 'the test suite resolves x.test on purpose', expires: '2999-12-31' } }],
    });
  });

  it('matches numbers and booleans, every key given; no evidence matches any; no expiry is null', () => {
    const evidenceCases: Array<Suppression['evidence']> = [{ name: 'x.test', pid: 11, cached: false }, {}];
    for (const evidence of evidenceCases) {
      const { expires: _expires, ...forever } = suppression({ evidence });
      expect(evaluate(input([DNS]), policy({ suppressions: [forever] })).findings).toEqual([
        { ...DNS, action: 'ignore', failing: false, suppressed: { reason: 'the test suite resolves x.test on purpose', expires: null } },
      ]);
    }
  });

  it.each([
    ['another evidence value', suppression({ evidence: { name: 'y.test' } })],
    ['a value of another type', suppression({ evidence: { pid: '11' } })],
    ['an evidence key the finding lacks', suppression({ evidence: { name: 'x.test', port: 53 } })],
    ['another package', suppression({ package: 'six' })],
    ['no package (unattributed findings only)', suppression({ package: null })],
    ['another rule', suppression({ rule: 'network.connect' })],
  ])('does not apply with %s', (_what, s) => {
    expect(evaluate(input([DNS]), policy({ suppressions: [s] }))).toEqual({ verdict: 'fail', findings: [{ ...DNS, action: 'fail', failing: true }] });
  });

  it('suppresses an unattributed finding with a null package', () => {
    const nobody = { ...DNS, package: null };
    const judged = evaluate(input([nobody]), policy({ suppressions: [suppression({ package: null })] }));
    expect(judged.findings.map((f) => [f.package, f.action, f.failing, f.suppressed?.reason])).toEqual([
      [null, 'ignore', false, 'the test suite resolves x.test on purpose'],
    ]);
  });

  it('keeps the severity override on a suppressed finding', () => {
    const judged = evaluate(input([DNS]), policy({ severities: { 'network.*': 'critical' }, suppressions: [suppression()] }));
    expect(judged.findings.map((f) => [f.severity, f.action, f.failing])).toEqual([['critical', 'ignore', false]]);
  });

  it('does not apply an expired one, and reports it once as policy.suppression-expired, a warning under the default preset', async () => {
    const expired = suppression({ expires: '2024-01-31', reason: 'known telemetry' });
    const judged = evaluate(input([DNS]), { ...(await loadPolicy('default')), expiredSuppressions: [expired] });
    expect(judged).toEqual({
      verdict: 'fail',
      findings: [
        { ...DNS, action: 'fail', failing: true },
        {
          rule: 'policy.suppression-expired',
          severity: 'low',
          package: null,
          message: 'the suppression of network.dns for evil-pkg expired on 2024-01-31; what it suppressed counts again',
          evidence: { rule: 'network.dns', suppressedPackage: 'evil-pkg', expires: '2024-01-31', reason: 'known telemetry' },
          action: 'warn',
          failing: false,
        },
      ],
    });
  });

  it('names an expired suppression of unattributed findings as such', () => {
    const judged = evaluate(input([]), policy({ rules: {}, expiredSuppressions: [suppression({ package: null, expires: '2024-01-31' })] }));
    expect(judged.verdict).toBe('pass');
    expect(judged.findings.map((f) => [f.rule, f.message, f.evidence.suppressedPackage, f.action])).toEqual([
      [
        'policy.suppression-expired',
        'the suppression of network.dns for unattributed findings expired on 2024-01-31; what it suppressed counts again',
        null,
        'warn',
      ],
    ]);
  });
});

describe('evaluate: properties', () => {
  const arbFinding = fc.record({
    rule: fc.constantFrom(...RULE_IDS),
    severity: fc.constantFrom(...Severity.options),
    package: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null }),
    message: fc.string(),
    evidence: fc.constant({}),
  });
  // Written out rather than imported, so that the property does not share the code it checks.
  const neverRelaxed = (rule: string) =>
    /^(monitor|resource|integrity|export)\./.test(rule) ||
    [
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
      'network.canary-exfil',
      'process.forbidden-syscall',
      'fs.build-meddling',
    ].includes(rule);

  it('fails exactly when some non-info finding is never relaxed, or fails by the rules and is not from an allowed package', () => {
    fc.assert(
      fc.property(fc.array(arbFinding, { maxLength: 8 }), fc.subarray(['a', 'b', 'c']), fc.boolean(), (findings, allow, ok) => {
        const p = policy({ rules: { 'network.*': 'fail', 'static.*': 'fail', 'process.exec': 'fail', 'fs.*': 'ignore' }, packages: { allow, deny: [] } });
        const judged = evaluate({ findings, packages: [], installSucceeded: ok }, p);
        const failsByRules = (rule: string) => rule.startsWith('network.') || rule.startsWith('static.') || rule === 'process.exec';
        const shouldFail = findings.some(
          (f) => f.severity !== 'info' && (neverRelaxed(f.rule) || (failsByRules(f.rule) && !(f.package !== null && allow.includes(f.package)))),
        );
        expect(judged.verdict).toBe(shouldFail ? 'fail' : ok ? 'pass' : 'error');
        expect(judged.findings.map(({ failing: _failing, action: _action, ...f }) => f)).toEqual(findings);
      }),
    );
  });
});
