import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyReport, type Report } from './schema.js';
import { evidenceLine, renderCoverage, renderSummary, SUMMARY_LIMITS } from './summary.js';

type JudgedFinding = Report['findings'][number];

const ESC = '\u001b';

function report(overrides: Partial<Report> = {}): Report {
  return {
    ...emptyReport({ version: '0.1.0', lockfile: 'requirements.lock', policy: 'default', image: null, timings: { total: 1200 } }),
    verdict: 'fail',
    packages: [
      { name: 'evil-pkg', version: '1.0', marker: null, files: [] },
      { name: 'six', version: '1.16.0', marker: null, files: [] },
    ],
    ...overrides,
  };
}

const judged = (
  rule: JudgedFinding['rule'],
  pkg: string | null,
  message: string,
  evidence: Record<string, unknown>,
  extra: Partial<JudgedFinding> = {},
): JudgedFinding => ({
  rule,
  severity: 'high',
  package: pkg,
  message,
  evidence,
  action: 'fail',
  failing: true,
  ...extra,
});

describe('renderSummary without colour', () => {
  it('prints the verdict line, then findings grouped by package in first-seen order', () => {
    const text = renderSummary(
      report({
        findings: [
          judged('network.dns', 'evil-pkg', 'DNS query for collect.x.invalid', { name: 'collect.x.invalid', qtype: 1, pid: 18 }),
          judged('monitor.tampered', null, 'the tracer ended before pip did', { tracerExit: null, statusMissing: true }, { severity: 'critical' }),
          judged(
            'fs.sensitive-read',
            'evil-pkg',
            'tried to open /home/sandbox/.ssh/id_rsa (ENOENT)',
            { path: '/home/sandbox/.ssh/id_rsa', ok: false },
            { failing: false },
          ),
        ],
      }),
      false,
    );
    expect(text).toBe(
      [
        'sandbox-install FAIL  requirements.lock  2 packages, 3 findings, policy default',
        '  evil-pkg',
        '    ✗ network.dns [high] DNS query for collect.x.invalid  name=collect.x.invalid qtype=1 pid=18',
        '    · fs.sensitive-read [high] tried to open /home/sandbox/.ssh/id_rsa (ENOENT)  path=/home/sandbox/.ssh/id_rsa ok=false',
        '  (unattributed)',
        '    ✗ monitor.tampered [critical] the tracer ended before pip did  statusMissing=true',
        '  nothing exported',
        '',
      ].join('\n'),
    );
    expect(text).not.toContain(ESC);
  });

  it('hides info findings unless they fail, and does not count them', () => {
    const text = renderSummary(
      report({
        verdict: 'pass',
        exported: '/out/site-packages',
        findings: [
          judged('network.dns', 'six', 'DNS query for pypi.org', { name: 'pypi.org' }, { severity: 'info', failing: false }),
          judged('network.connect', 'six', 'connect to 10.0.0.1:80', { address: '10.0.0.1' }, { severity: 'info', failing: true }),
        ],
      }),
      false,
    );
    expect(text).toBe(
      [
        'sandbox-install PASS  requirements.lock  2 packages, 1 findings, policy default',
        '  six',
        '    ✗ network.connect [info] connect to 10.0.0.1:80  address=10.0.0.1',
        '  exported /out/site-packages',
        '',
      ].join('\n'),
    );
  });

  it('says nothing about export for a pass that exported nothing, and shows an error message', () => {
    expect(renderSummary(report({ verdict: 'pass' }), false)).toBe('sandbox-install PASS  requirements.lock  2 packages, 0 findings, policy default\n');
    expect(renderSummary(report({ verdict: 'error', error: { code: 'install.failed', message: 'pip exited with 1' } }), false)).toBe(
      ['sandbox-install ERROR  requirements.lock  2 packages, 0 findings, policy default', '  nothing exported', '  pip exited with 1', ''].join('\n'),
    );
  });
});

describe('renderSummary escapes package-controlled text', () => {
  it('turns an ANSI escape in a package name, message, evidence, lockfile, export path or error into \\x1b', () => {
    const evil = `evil${ESC}[2J${ESC}]0;owned${'\u0007'}`;
    const text = renderSummary(
      report({
        verdict: 'error',
        lockfile: `req${ESC}[31m.lock`,
        findings: [judged('process.exec', evil, `ran sh: sh -c ${ESC}[1Aecho`, { argv: `sh -c ${ESC}[1A`, path: 'a\nb\rc\u202ed' })],
        error: { message: `boom${ESC}[0m` },
      }),
      false,
    );
    expect(text).not.toContain(ESC);
    expect(text).not.toContain('\u0007');
    expect(text).not.toContain('\u202e');
    expect(text.split('\n')).toEqual([
      'sandbox-install ERROR  req\\x1b[31m.lock  2 packages, 1 findings, policy default',
      '  evil\\x1b[2J\\x1b]0;owned\\x07',
      '    ✗ process.exec [high] ran sh: sh -c \\x1b[1Aecho  argv=sh -c \\x1b[1A path=a\\x0ab\\x0dc\\u202ed',
      '  nothing exported',
      '  boom\\x1b[0m',
      '',
    ]);
  });

  it('escapes the export path', () => {
    const text = renderSummary(report({ verdict: 'pass', exported: `/out/${ESC}[8m` }), false);
    expect(text).toContain('  exported /out/\\x1b[8m\n');
    expect(text).not.toContain(ESC);
  });

  it('escapes even when colour is on, so the only escapes are its own', () => {
    const text = renderSummary(report({ findings: [judged('network.dns', `p${ESC}[31m`, `m${ESC}`, { name: `n${ESC}` })] }), true);
    expect(text).toContain('p\\x1b[31m');
    expect(text).toContain('m\\x1b');
    expect(text).toContain('name=n\\x1b');
    // Every raw ESC starts one of the summary's own SGR codes.
    expect(text.match(/\u001b/g)?.length).toBe(text.match(/\u001b\[(?:0|1|2|31|32|33)m/g)?.length);
  });
});

describe('renderSummary with colour', () => {
  it('paints the verdict, package names, marks and evidence', () => {
    const text = renderSummary(
      report({
        findings: [
          judged('network.dns', 'evil-pkg', 'DNS query for a.test', { name: 'a.test' }),
          judged('process.exec', 'evil-pkg', 'ran sh', { argv: 'sh' }, { failing: false }),
        ],
      }),
      true,
    );
    expect(text.split('\n')).toEqual([
      `${ESC}[1msandbox-install${ESC}[0m ${ESC}[31mFAIL${ESC}[0m  requirements.lock  2 packages, 2 findings, policy default`,
      `  ${ESC}[1mevil-pkg${ESC}[0m`,
      `    ${ESC}[31m✗${ESC}[0m network.dns [high] DNS query for a.test  ${ESC}[2mname=a.test${ESC}[0m`,
      `    ${ESC}[2m·${ESC}[0m process.exec [high] ran sh  ${ESC}[2margv=sh${ESC}[0m`,
      '  nothing exported',
      '',
    ]);
  });

  it('paints pass green and error yellow, and the error message yellow', () => {
    expect(renderSummary(report({ verdict: 'pass' }), true)).toContain(`${ESC}[32mPASS${ESC}[0m`);
    const error = renderSummary(report({ verdict: 'error', error: { message: 'pip exited with 1' } }), true);
    expect(error).toContain(`${ESC}[33mERROR${ESC}[0m`);
    expect(error).toContain(`  ${ESC}[33mpip exited with 1${ESC}[0m\n`);
  });
});

describe('evidenceLine', () => {
  it('keeps scalar fields, at most six, each escaped and cut to 200 characters with a visible …', () => {
    expect(evidenceLine({ a: 1, b: null, c: undefined, d: { x: 1 }, e: ['x'], f: true, g: 'x'.repeat(300), h: 'h', i: 'i', j: 'j', k: 'k' })).toBe(
      `a=1 f=true g=${'x'.repeat(200)}… h=h i=i j=j`,
    );
    expect(evidenceLine({ g: 'x'.repeat(200) })).toBe(`g=${'x'.repeat(200)}`);
  });

  it('escapes before cutting, so a cut never leaves half an escape raw', () => {
    const line = evidenceLine({ p: `${'y'.repeat(198)}${ESC}[31m` });
    expect(line).toBe(`p=${'y'.repeat(198)}\\x…`);
    expect(line).not.toContain(ESC);
  });
});

/** Listed findings, and the findings the `… N more` lines stand for. */
function tally(text: string): { listed: number; more: number } {
  const lines = text.split('\n');
  return {
    listed: lines.filter((line) => /^ {4}[✗·] /.test(line)).length,
    more: lines.reduce((sum, line) => sum + Number(/… (\d+) more findings? \(see the JSON report\)$/.exec(line)?.[1] ?? 0), 0),
  };
}

describe('renderSummary stays short', () => {
  it('lists at most 20 findings per package, the failing and most severe, and counts the rest', () => {
    const findings = [
      ...Array.from({ length: 25 }, (_, i) => judged('network.dns', 'evil-pkg', `low ${i}`, {}, { severity: 'medium', failing: false })),
      ...Array.from({ length: 5 }, (_, i) => judged('process.exec', 'evil-pkg', `failing ${i}`, {})),
    ];
    const lines = renderSummary(report({ findings }), false).split('\n');
    expect(lines.slice(1, 3)).toEqual(['  evil-pkg', '    · network.dns [medium] low 0  ']);
    expect(lines.filter((line) => line.includes('low '))).toHaveLength(15);
    expect(lines.filter((line) => line.includes('failing '))).toHaveLength(5);
    expect(lines.slice(-4)).toEqual(['    ✗ process.exec [high] failing 4  ', '    … 10 more findings (see the JSON report)', '  nothing exported', '']);
  });

  it('collapses low findings that do not fail into one line with their count, by rule and package; a failing low one is listed', () => {
    const warn = { severity: 'low', action: 'warn', failing: false } as const;
    const findings = [
      judged('process.exec', 'evil-pkg', 'ran sh', {}),
      ...['anyio', 'hypothesis', 'faker', 'pytest-cov'].map((pkg) =>
        judged('static.autoload-entry-point', pkg, `${pkg} registers a plugin in pytest11`, { group: 'pytest11' }, warn),
      ),
      judged('static.inert-source', 'aenum', 'aenum/_py2.py does not compile', { path: 'aenum/_py2.py' }, warn),
      judged('network.dns', 'evil-pkg', 'a low one that fails', {}, { severity: 'low' }),
    ];
    const lines = renderSummary(report({ findings }), false).split('\n');
    expect(lines[0]).toBe('sandbox-install FAIL  requirements.lock  2 packages, 7 findings (5 warnings), policy default');
    expect(lines.slice(1)).toEqual([
      '  evil-pkg',
      '    ✗ process.exec [high] ran sh  ',
      '    ✗ network.dns [low] a low one that fails  ',
      '  ! 5 low findings, not failing: static.autoload-entry-point ×4 (anyio, hypothesis, faker, 1 more); static.inert-source ×1 (aenum)  (see the JSON report)',
      '  nothing exported',
      '',
    ]);
  });

  it('never passes its line limit, and accounts for every finding', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 40 }), { maxLength: 30 }),
        fc.integer({ min: 1, max: 25 }),
        fc.integer({ min: 8, max: 60 }),
        fc.boolean(),
        (perPackage, findingsPerPackage, maxLines, failed) => {
          const findings = perPackage.flatMap((n, p) => Array.from({ length: n }, (_, i) => judged('network.dns', `pkg-${p}`, `m${i}`, { i })));
          const text = renderSummary(report({ findings, ...(failed ? { verdict: 'error', error: { message: 'boom' } } : {}) }), false, {
            ...SUMMARY_LIMITS,
            findingsPerPackage,
            lines: maxLines,
          });
          expect(text.split('\n').length - 1).toBeLessThanOrEqual(maxLines);
          const { listed, more } = tally(text);
          expect(listed + more).toBe(findings.length);
        },
      ),
    );
  });

  it('renders 50,000 hostile findings over 500 packages in 200 lines, with nothing a terminal would obey', () => {
    const hostile = '\x1b]0;owned\x07\u202e\u2066\u009b2J\u2028\u{e0041}'.repeat(400);
    const packages = Array.from({ length: 500 }, (_, p) => `evil-${p}${hostile}`);
    const findings = Array.from({ length: 50_000 }, (_, i) =>
      judged('network.dns', packages[i % 500]!, `DNS query for ${i}${hostile}`, { name: hostile, pid: i }, { failing: i % 7 === 0 }),
    );
    const text = renderSummary(report({ verdict: 'error', error: { message: hostile }, findings }), true);
    const lines = text.split('\n');
    expect(lines.length - 1).toBeLessThanOrEqual(SUMMARY_LIMITS.lines);
    expect(lines.at(-4)).toMatch(/^ {2}\u001b\[2m… \d+ more findings \(see the JSON report\)\u001b\[0m$/);
    const plain = text.replace(/\u001b\[\d+m/g, '');
    const { listed, more } = tally(plain);
    expect(listed + more).toBe(50_000);
    // The only raw ESCs are the summary's own colours; nothing else a terminal obeys is raw.
    expect(text.match(/\u001b/g)?.length).toBe(text.match(/\u001b\[(?:0|1|2|31|32|33)m/g)?.length);
    expect(plain).not.toMatch(/(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u);
    // Each line is cut: a message or name at 300, six evidence fields at 200.
    for (const line of lines) expect(line.length).toBeLessThan(2000);
  });
});

describe('renderCoverage (investigate)', () => {
  const coverage = {
    planned: 213,
    imported: 199,
    failed: 13,
    timedOut: 1,
    topLevel: 12,
    processes: 13,
    boundHit: false,
    maxModules: 2000,
    lingerSeconds: 2,
    clockSkewSeconds: 0,
    clockSkewUnavailable: false,
    failedModules: Array.from({ length: 13 }, (_, i) => `pkg.m${i}`),
    timedOutModules: [`pkg.hang${ESC}[31m`],
  };

  it('a pass says no behaviour observed, never clean; the counts and the modules that did not import follow', () => {
    const text = renderCoverage(report({ verdict: 'pass', importCoverage: coverage }), false);
    expect(text).toContain('no behaviour observed');
    expect(text).not.toMatch(/clean/i);
    expect(text).toContain('import coverage: 199 of 213 modules imported, 13 failed, 1 timed out (12 top-level, 13 processes, linger 2s)');
    expect(text).toContain('failed: pkg.m0, pkg.m1, pkg.m2, pkg.m3, pkg.m4, pkg.m5, pkg.m6, pkg.m7, pkg.m8, pkg.m9 … 3 more (see the JSON report)');
    // Module names are the package's: escaped.
    expect(text).not.toContain(ESC);
    expect(text).toContain('timed out: pkg.hang\\x1b[31m');
    expect(text).not.toContain('bound hit');
  });

  it('a fail says nothing of "no behaviour"; the bound and the clock are shown; an unknown coverage says so', () => {
    const text = renderCoverage(report({ verdict: 'fail', importCoverage: { ...coverage, boundHit: true, clockSkewSeconds: 2_592_000 } }), false);
    expect(text).not.toContain('no behaviour observed');
    expect(text).toContain('clock +2592000s');
    expect(text).toContain('bound hit: more than --max-modules 2000 modules; the rest were not imported');
    expect(renderCoverage(report({ verdict: 'fail', importCoverage: null }), false)).toContain('import coverage: unknown');
    expect(renderCoverage(report({ verdict: 'fail', importCoverage: { ...coverage, clockSkewUnavailable: true } }), false)).toContain('clock skew unavailable');
    expect(renderCoverage(report({ verdict: 'fail' }), false)).toBe('');
  });
});
