import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { finding, Severity, type Finding } from '../core/finding.js';
import { RULE_IDS } from '../core/rules.js';
import { evaluate, type EvaluationInput } from './evaluate.js';
import type { Policy } from './schema.js';

/** A resolved policy as loadPolicy returns it; each case changes what it is about. */
function policy(overrides: Partial<Policy> = {}): Policy {
  return {
    name: 'test',
    failOn: ['network.*', 'fs.write-outside-target', 'policy.*', 'monitor.*'],
    warnOnly: [],
    build: { allow: [] },
    onlyBinary: false,
    allowLockIndexUrl: false,
    knownGoodPth: [],
    severities: {},
    packages: { allow: [], deny: [] },
    process: { execWatch: ['sh'] },
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

const DNS = finding('network.dns', 'high', 'DNS query for x.test', { name: 'x.test' }, 'evil-pkg');
const EXEC = finding('process.exec', 'high', 'ran sh: sh -c id', { argv: 'sh -c id' }, 'evil-pkg');

describe('evaluate: verdict', () => {
  it('passes a successful install with no findings', () => {
    expect(evaluate(input([]), policy())).toEqual({ verdict: 'pass', findings: [] });
  });

  it('fails on a finding whose rule matches failOn by family wildcard, and marks it failing', () => {
    expect(evaluate(input([DNS]), policy())).toEqual({ verdict: 'fail', findings: [{ ...DNS, failing: true }] });
  });

  it('fails on an exact failOn rule', () => {
    const write = finding('fs.write-outside-target', 'high', 'added /etc/x', { path: '/etc/x' }, null);
    expect(evaluate(input([write]), policy()).findings).toEqual([{ ...write, failing: true }]);
  });

  it('passes with findings whose rules failOn does not name', () => {
    const read = finding('fs.sensitive-read', 'high', 'tried to open ~/.ssh/id_rsa', { path: '/home/sandbox/.ssh/id_rsa' }, 'evil-pkg');
    expect(evaluate(input([EXEC, read]), policy())).toEqual({
      verdict: 'pass',
      findings: [
        { ...EXEC, failing: false },
        { ...read, failing: false },
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
    const tampered = finding('monitor.tampered', 'critical', 'x', {}, null);
    expect(evaluate(input([tampered]), policy({ failOn: ['mon.*'] })).verdict).toBe('pass');
    expect(evaluate(input([tampered]), policy({ failOn: ['monitor.*'] })).verdict).toBe('fail');
  });
});

describe('evaluate: severities', () => {
  it('overrides a rule by family wildcard and by exact id', () => {
    const connect = finding('network.connect', 'high', 'connect to 10.0.0.1:80', {}, 'six');
    const { findings } = evaluate(input([DNS, connect, EXEC]), policy({ severities: { 'network.*': 'low', 'process.exec': 'critical' } }));
    expect(findings.map((f) => [f.rule, f.severity, f.failing])).toEqual([
      ['network.dns', 'low', true],
      ['network.connect', 'low', true],
      ['process.exec', 'critical', false],
    ]);
  });

  it('never fails on a finding turned into info, whatever failOn says', () => {
    const judged = evaluate(input([DNS]), policy({ severities: { 'network.dns': 'info' } }));
    expect(judged).toEqual({ verdict: 'pass', findings: [{ ...DNS, severity: 'info', failing: false }] });
  });

  it('never fails on a finding raised as info', () => {
    const info = finding('network.connect', 'info', 'noted', {}, null);
    expect(evaluate(input([info]), policy())).toEqual({ verdict: 'pass', findings: [{ ...info, failing: false }] });
  });

  it('can raise an info finding so that it fails', () => {
    const info = finding('network.connect', 'info', 'noted', {}, null);
    expect(evaluate(input([info]), policy({ severities: { 'network.connect': 'medium' } })).findings).toEqual([{ ...info, severity: 'medium', failing: true }]);
  });

  it('does not change the findings it was given', () => {
    const original = structuredClone(DNS);
    evaluate(input([DNS]), policy({ severities: { 'network.*': 'info' } }));
    expect(DNS).toEqual(original);
  });
});

describe('evaluate: packages', () => {
  it('accepts every finding of an allowed package, but not those of others or unattributed ones', () => {
    const other = finding('network.dns', 'high', 'DNS query for y.test', { name: 'y.test' }, 'six');
    const nobody = finding('network.dns', 'high', 'DNS query for z.test', { name: 'z.test' }, null);
    const judged = evaluate(input([DNS, other, nobody]), policy({ packages: { allow: ['evil-pkg'], deny: [] } }));
    expect(judged.verdict).toBe('fail');
    expect(judged.findings.map((f) => [f.package, f.failing])).toEqual([
      ['evil-pkg', false],
      ['six', true],
      [null, true],
    ]);
    expect(evaluate(input([DNS]), policy({ packages: { allow: ['evil-pkg'], deny: [] } })).verdict).toBe('pass');
  });

  it('adds policy.package-denied for each locked package on the deny list, after the given findings', () => {
    const judged = evaluate(
      input([EXEC], { packages: ['evil-pkg', 'six', 'requests'] }),
      policy({ name: 'mine', packages: { allow: [], deny: ['six', 'requests', 'absent'] } }),
    );
    expect(judged).toEqual({
      verdict: 'fail',
      findings: [
        { ...EXEC, failing: false },
        {
          rule: 'policy.package-denied',
          severity: 'high',
          package: 'six',
          message: 'six is denied by policy mine',
          evidence: { package: 'six' },
          failing: true,
        },
        {
          rule: 'policy.package-denied',
          severity: 'high',
          package: 'requests',
          message: 'requests is denied by policy mine',
          evidence: { package: 'requests' },
          failing: true,
        },
      ],
    });
  });

  it('keeps a package denied when it is also on the allow list', () => {
    const judged = evaluate(input([], { packages: ['six'] }), policy({ packages: { allow: ['six'], deny: ['six'] } }));
    expect(judged.verdict).toBe('fail');
    expect(judged.findings.map((f) => [f.rule, f.failing])).toEqual([['policy.package-denied', true]]);
  });

  it('lets an exact severity override win over a family wildcard listed before it', () => {
    const judged = evaluate(input([DNS]), policy({ severities: { 'network.*': 'low', 'network.dns': 'info' } }));
    expect(judged.findings.map((f) => [f.severity, f.failing])).toEqual([['info', false]]);
    expect(judged.verdict).toBe('pass');
  });

  it('fails a denied package even when the install failed', () => {
    expect(evaluate(input([], { packages: ['six'], installSucceeded: false }), policy({ packages: { allow: [], deny: ['six'] } })).verdict).toBe('fail');
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

  it('fails exactly when some non-info finding of a non-allowed package matches failOn', () => {
    fc.assert(
      fc.property(fc.array(arbFinding, { maxLength: 8 }), fc.subarray(['a', 'b', 'c']), fc.boolean(), (findings, allow, ok) => {
        const p = policy({ failOn: ['network.*', 'static.*', 'process.exec'], packages: { allow, deny: [] } });
        const judged = evaluate({ findings, packages: [], installSucceeded: ok }, p);
        // Code that runs outside its own package's import cannot be accepted by packages.allow.
        const unacceptable = ['static.startup-hook', 'static.pth-exec', 'static.pth-path', 'static.unrecorded-file', 'static.import-shadowing'];
        const shouldFail = findings.some(
          (f) =>
            f.severity !== 'info' &&
            (unacceptable.includes(f.rule) || !(f.package !== null && allow.includes(f.package))) &&
            (f.rule.startsWith('network.') || f.rule.startsWith('static.') || f.rule === 'process.exec'),
        );
        expect(judged.verdict).toBe(shouldFail ? 'fail' : ok ? 'pass' : 'error');
        expect(judged.findings.map(({ failing: _failing, ...f }) => f)).toEqual(findings);
      }),
    );
  });
});

describe('evaluate: warnOnly', () => {
  it('reports a warn-only rule without failing, even when failOn names its family', () => {
    const plugin = finding('static.autoload-entry-point', 'low', 'pytest11 entry point', { group: 'pytest11' }, 'pytest-x');
    const judged = evaluate(input([plugin]), policy({ failOn: ['static.*'], warnOnly: ['static.autoload-entry-point'] }));
    expect(judged.findings.map((f) => [f.rule, f.severity, f.failing])).toEqual([['static.autoload-entry-point', 'low', false]]);
    expect(judged.verdict).toBe('pass');
    expect(evaluate(input([plugin]), policy({ failOn: ['static.*'] })).verdict).toBe('fail');
  });
});

describe('evaluate: what packages.allow cannot accept', () => {
  it('keeps code that runs outside its own import failing for an allowed package', () => {
    const rules = [
      'static.startup-hook',
      'static.pth-exec',
      'static.pth-path',
      'static.unrecorded-file',
      'static.import-shadowing',
      'fs.target-tamper',
      'integrity.installed-mismatch',
    ] as const;
    const judged = evaluate(
      input(rules.map((rule) => finding(rule, 'high', rule, {}, 'victim'))),
      policy({ failOn: ['static.*', 'fs.*', 'integrity.*'], packages: { allow: ['victim'], deny: [] } }),
    );
    expect(judged.findings.map((f) => [f.rule, f.failing])).toEqual(rules.map((rule) => [rule, true]));
    // What the package does in its own build is still the allow list's to accept.
    const own = evaluate(
      input([finding('fs.write-outside-target', 'high', 'x', {}, 'victim')]),
      policy({ failOn: ['fs.*'], packages: { allow: ['victim'], deny: [] } }),
    );
    expect(own.verdict).toBe('pass');
  });

  it('keeps attacks on the tool failing for an allowed package', () => {
    const tampered = finding('monitor.tampered', 'critical', 'kill(1, SIGKILL)', { target: 1 }, 'evil-pkg');
    const timeout = finding('resource.timeout', 'high', 'ran past --timeout', { timeoutSeconds: 5 }, 'evil-pkg');
    const smuggle = finding('integrity.unlocked-request', 'high', 'refused GET', { path: '/simple/x/' }, 'evil-pkg');
    const judged = evaluate(
      input([DNS, tampered, timeout, smuggle]),
      policy({ failOn: ['network.*', 'monitor.*', 'resource.*', 'integrity.*'], packages: { allow: ['evil-pkg'], deny: [] } }),
    );
    expect(judged.findings.map((f) => [f.rule, f.failing])).toEqual([
      ['network.dns', false],
      ['monitor.tampered', true],
      ['resource.timeout', true],
      ['integrity.unlocked-request', true],
    ]);
    expect(judged.verdict).toBe('fail');
  });
});
