import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { boundReport, REPORT_LIMITS, serializeReport, type ReportLimits } from './bound.js';
import { emptyReport, Report } from './schema.js';

type JudgedFinding = Report['findings'][number];

function report(overrides: Partial<Report> = {}): Report {
  return {
    ...emptyReport({ version: '0.1.0', lockfile: 'requirements.lock', policy: 'default', image: null, timings: { total: 1200 } }),
    verdict: 'fail',
    ...overrides,
  };
}

const judged = (
  rule: JudgedFinding['rule'],
  pkg: string | null,
  message: string,
  evidence: Record<string, unknown>,
  extra: Partial<JudgedFinding> = {},
): JudgedFinding => ({ rule, severity: 'high', package: pkg, message, evidence, action: 'fail', failing: true, ...extra });

/** Small limits, so a hand-built report crosses every one of them. */
const SMALL: Partial<ReportLimits> = {
  stringChars: 40,
  nameChars: 30,
  outputChars: 40,
  recordChars: 100,
  recordNodes: 20,
  arrayEntries: 4,
  objectKeys: 3,
  depth: 2,
  findings: 2,
  events: 2,
  packages: 1,
  files: 1,
};

/** 4 KB of what a terminal obeys: ESC, BEL, NUL, C1 CSI, DEL, bidi overrides and isolates, a tag character. */
const HOSTILE = ['\x1b[2J', '\x07', '\x00', '\u009b', '\x7f', '\u202e', '\u2066', '\u200b', '\u{e0041}', 'a', '.'];
function hostileText(length: number, seed = 1): string {
  let state = seed;
  let text = '';
  while (text.length < length) {
    // xorshift32: an LCG's low bits repeat, and repeats would make "distinct" names identical.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    text += HOSTILE[(state >>> 0) % HOSTILE.length];
  }
  return text.slice(0, length);
}

/** What a terminal would obey, raw: the summary and the JSON text must hold none. */
const RAW_CONTROL = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff\u{e0000}-\u{e007f}]/u;

describe('boundReport', () => {
  it('leaves a report within its limits as it was, with no cut', () => {
    const small = report({
      packages: [
        { name: 'six', version: '1.16.0', marker: null, files: [{ filename: 'six-1.16.0-py2.py3-none-any.whl', sha256: 'ab'.repeat(32), size: 11_053 }] },
      ],
      findings: [judged('network.dns', 'six', 'DNS query for a.test', { name: 'a.test', qtype: 1, count: 3 })],
      processes: [{ pid: 7, argv: ['python', '-c', 'print(1)'], cwd: '/tmp', exitCode: 0, signal: null, package: 'six' }],
      proxy: [{ time: '2024-01-01T00:00:00Z', method: 'GET', path: '/simple/six/', status: 200, bytes: 100, ms: 3 }],
      install: { pipExitCode: 0, timedOut: false, output: 'Successfully installed six', traceBytes: 10 },
    });
    expect(boundReport(small)).toEqual(small);
    expect(serializeReport(small)).toBe(JSON.stringify(small, null, 2) + '\n');
  });

  it('counts exactly what it cut, merges identical findings and events, and still parses', () => {
    const input = report({
      packages: [
        {
          name: 'evil',
          version: '1.0',
          marker: null,
          files: [
            { filename: 'a.whl', sha256: 'x', size: 1 },
            { filename: 'b.whl', sha256: 'y', size: 2 },
          ],
        },
        { name: 'six', version: '1.16.0', marker: null, files: [] },
      ],
      findings: [
        judged('network.dns', 'evil', 'DNS query for a.test', { name: 'a.test' }, { severity: 'low', failing: false }),
        judged('network.dns', 'evil', 'DNS query for b.test', { name: 'b.test' }, { severity: 'info', failing: false }),
        judged('network.dns', 'evil', 'DNS query for a.test', { name: 'a.test', count: 3 }, { severity: 'medium', failing: false }),
        judged('process.exec', 'evil', 'ran sh', { argv: 'sh' }, { severity: 'critical' }),
        judged('network.dns', 'evil', 'DNS query for a.test', { name: 'a.test' }, { severity: 'low', failing: true }),
      ],
      processes: [
        { pid: 1, argv: ['a', 'b', 'c', 'd', 'e', 'f'] },
        { pid: 2, argv: ['x'.repeat(100)] },
        { pid: 1, argv: ['a', 'b', 'c', 'd', 'e', 'f'] },
        { pid: 3 },
      ],
      network: [{ name: 'n', deep: { a: { b: { c: 1 } } } }],
      filesystem: [{ k1: 1, k2: 2, k3: 3, k4: 4, k5: undefined }],
      install: { pipExitCode: 1, timedOut: false, output: `${'o'.repeat(80)}ERROR: no`, traceBytes: null },
    });
    const bounded = boundReport(input, SMALL);
    expect(bounded.cut).toEqual({
      strings: 2, // the 100-char argv entry, and install.output
      arrayEntries: 4, // three of pid 1's argv, one of evil's files
      objectKeys: 1, // k4 (k5 is undefined, which JSON leaves out anyway)
      nested: 1, // deep.a.b
      findingsMerged: 2, // the 2nd and 3rd `DNS query for a.test`
      findings: 1, // the info one, the least severe of three
      eventsMerged: 1, // pid 1's second exec
      events: 1, // pid 3, past two events
      packages: 1, // six
    });
    expect(bounded.findings).toEqual([
      // Merged: the first one's evidence, the counts added up (1 + 3 + 1), the worst severity, failing if any was.
      judged('network.dns', 'evil', 'DNS query for a.test', { name: 'a.test', count: 5 }, { severity: 'medium', failing: true }),
      judged('process.exec', 'evil', 'ran sh', { argv: 'sh' }, { severity: 'critical' }),
    ]);
    expect(bounded.processes).toEqual([
      { pid: 1, argv: ['a', 'b', 'c', '…[+3 entries]'], count: 2 },
      { pid: 2, argv: [`${'x'.repeat(27)}…[+73 chars]`] },
    ]);
    expect(bounded.network).toEqual([{ name: 'n', deep: { a: { b: '…[nested]' } } }]);
    expect(bounded.filesystem).toEqual([{ k1: 1, k2: 2, k3: 3 }]);
    expect(bounded.packages).toEqual([{ name: 'evil', version: '1.0', marker: null, files: [{ filename: 'a.whl', sha256: 'x', size: 1 }] }]);
    expect(bounded.install?.output).toBe(`…[+61 chars]${'o'.repeat(19)}ERROR: no`);
    expect(Report.parse(bounded)).toEqual(bounded);
    expect(bounded.schemaVersion).toBe(1);
    // The input is not touched.
    expect(input.processes[0]).toEqual({ pid: 1, argv: ['a', 'b', 'c', 'd', 'e', 'f'] });
    expect(input.findings[2]?.evidence).toEqual({ name: 'a.test', count: 3 });
  });

  it('is idempotent: bounding again cuts nothing more and keeps the counts', () => {
    const input = report({
      findings: [judged('network.dns', 'evil', 'a', { name: 'a' }), judged('network.dns', 'evil', 'a', { name: 'a' })],
      processes: [
        { pid: 1, argv: ['x'.repeat(100)] },
        { pid: 1, argv: ['x'.repeat(100)] },
      ],
    });
    const once = boundReport(input, SMALL);
    expect(once.cut).toMatchObject({ strings: 1, findingsMerged: 1, eventsMerged: 1 });
    expect(boundReport(once, SMALL)).toEqual(once);
  });

  it("stops an argv at the first entry that no longer fits the record's budget, and says how many went", () => {
    // 100 units: `argv` takes 4, two 40-unit entries 80; 16 are left, too few for a cut worth reading.
    const bounded = boundReport(report({ processes: [{ argv: ['a'.repeat(40), 'b'.repeat(40), 'c'.repeat(40), 'd'] }] }), SMALL);
    expect(bounded.processes).toEqual([{ argv: ['a'.repeat(40), 'b'.repeat(40), '…[+2 entries]'] }]);
    expect(bounded.cut).toMatchObject({ arrayEntries: 2, strings: 0 });
  });

  it('keeps failing findings first, then the most severe, in their original order', () => {
    const severities = ['info', 'critical', 'low', 'high', 'medium', 'critical'] as const;
    const findings = severities.map((severity, i) => judged('process.exec', 'p', `m${i}`, {}, { severity, failing: false }));
    findings.push(judged('process.exec', 'p', 'failing low', {}, { severity: 'low', failing: true }));
    const bounded = boundReport(report({ findings }), { findings: 4 });
    expect(bounded.findings.map((f) => f.message)).toEqual(['m1', 'm3', 'm5', 'failing low']);
    expect(bounded.cut?.findings).toBe(3);
  });

  it('writes the counts of what it cut into a new `cut`, adding to one already there', () => {
    const bounded = boundReport(
      report({
        cut: { strings: 5, arrayEntries: 0, objectKeys: 0, nested: 0, findingsMerged: 0, findings: 1, eventsMerged: 0, events: 0, packages: 0 },
        lockfile: 'l'.repeat(5000),
      }),
    );
    expect(bounded.cut).toMatchObject({ strings: 6, findings: 1 });
    expect(bounded.lockfile.length).toBeLessThanOrEqual(REPORT_LIMITS.pathChars);
    expect(bounded.lockfile).toMatch(/^l+…\[\+\d+ chars\]$/);
  });

  it('copies odd values inside records the way JSON.stringify would, without throwing', () => {
    const proto = JSON.parse('{"__proto__": {"polluted": true}, "big": 1}') as Record<string, unknown>;
    const bounded = boundReport(
      report({ error: { at: new Date(0), n: 10n, f: () => 1, s: Symbol('x'), u: undefined, proto, map: new Map([[1, 2]]), buf: Buffer.from('hi') } }),
    );
    expect(bounded.error).toEqual({ at: '1970-01-01T00:00:00.000Z', n: '10', proto, map: {}, buf: { type: 'Buffer', data: [104, 105] } });
    expect(Object.getPrototypeOf((bounded.error as { proto: object }).proto)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    expect(() => serializeReport(report({ network: [cyclic] }))).not.toThrow();
  });
});

describe('serializeReport', () => {
  it('escapes what a terminal obeys, and parses back to the bounded report', () => {
    const evil = `pkg\x1b[31m\u009b2J\x7f\u202e\u2066\u2028\u{e0041}`;
    const input = report({ findings: [judged('network.dns', evil, evil, { name: evil })], network: [{ name: evil }] });
    const out = serializeReport(input);
    expect(out).not.toMatch(RAW_CONTROL);
    expect(out).toContain('\\u202e');
    expect(out).toContain('\\udb40\\udc41');
    expect(JSON.parse(out)).toEqual(boundReport(input));
  });

  it('survives 2,000 processes with 1,000-entry argv of 4 KB strings', () => {
    // Mostly plain, like a real argv, with an escape every 256 units.
    const big = Array.from({ length: 16 }, (_, i) => `${'A'.repeat(250)}\x1b[3${i % 10}m\u202e`).join('');
    expect(big).toHaveLength(4096);
    const argv = new Array<string>(1000).fill(big); // one array and one string, shared: cheap to build
    const processes = Array.from({ length: 2000 }, (_, pid) => ({ pid, ppid: 1, argv, cwd: big, exitCode: null, signal: null, package: 'evil' }));
    const input = report({ processes });
    // What this report would have been, unbounded: far past V8's 512 Mi code-unit limit.
    expect(2000 * 1000 * 4096).toBeGreaterThan(2 ** 29);

    const out = serializeReport(input);
    const bytes = Buffer.byteLength(out);
    // Per record: 4,096 units of strings and keys, at most 6 bytes each, plus layout; about 4.4 KB here.
    expect(bytes).toBeLessThan(2000 * 4600);
    const parsed = Report.parse(JSON.parse(out));
    expect(parsed.processes).toHaveLength(2000);
    // The scalars come first, whatever their place (pid, ppid, cwd cut to 1,024, exitCode, signal,
    // package: 1,059 units with the keys); argv gets the 3,037 units left: two whole entries, a third cut.
    const first = parsed.processes[0]!;
    expect(Object.keys(first)).toEqual(['pid', 'ppid', 'argv', 'cwd', 'exitCode', 'signal', 'package']);
    expect(first).toMatchObject({ pid: 0, ppid: 1, exitCode: null, signal: null, package: 'evil' });
    expect(first.argv).toEqual([expect.any(String), expect.any(String), expect.stringMatching(/…\[\+\d+ chars\]$/), '…[+997 entries]']);
    expect(parsed.cut).toEqual({
      strings: 4 * 2000,
      arrayEntries: 997 * 2000,
      objectKeys: 0,
      nested: 0,
      findingsMerged: 0,
      findings: 0,
      eventsMerged: 0,
      events: 0,
      packages: 0,
    });
    expect(out).not.toMatch(RAW_CONTROL);
  });

  it('keeps the report under maxBytes by halving the event arrays, with exact counts', () => {
    const big = hostileText(4096);
    const argv = new Array<string>(1000).fill(big);
    const processes = Array.from({ length: 2000 }, (_, pid) => ({ pid, argv }));
    const network = Array.from({ length: 100 }, (_, i) => ({ name: `n${i}.test` }));
    const maxBytes = 2 * 1024 * 1024;
    const out = serializeReport(report({ processes, network }), { maxBytes });
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(maxBytes);
    const parsed = Report.parse(JSON.parse(out));
    // The biggest array went first, the earliest entries stayed; the small one is whole.
    expect(parsed.network).toHaveLength(100);
    expect(parsed.processes.length).toBeGreaterThan(0);
    expect(parsed.processes.map((p) => p.pid)).toEqual(Array.from({ length: parsed.processes.length }, (_, i) => i));
    expect(parsed.cut?.events).toBe(2000 - parsed.processes.length);
    // Strings and argv entries are counted for what the report still holds.
    expect(parsed.processes).toHaveLength(62); // 2,000 halved five times
    expect(parsed.cut?.strings).toBe(4 * parsed.processes.length);
    expect(parsed.cut?.arrayEntries).toBe(996 * parsed.processes.length);
  });

  it('fits any report into maxBytes, and writes exactly the bounded report', () => {
    const text = fc.string({ unit: 'binary', maxLength: 3000 });
    const record = fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(text, fc.integer(), fc.array(text, { maxLength: 80 }), fc.constant(null)), {
      maxKeys: 6,
    });
    fc.assert(
      fc.property(
        fc.array(record, { maxLength: 60 }),
        fc.array(record, { maxLength: 30 }),
        fc.array(fc.tuple(text, fc.constantFrom('info', 'low', 'high', 'critical'), fc.boolean(), record), { maxLength: 40 }),
        fc.integer({ min: 4 * 1024, max: 256 * 1024 }),
        (network, processes, raw, maxBytes) => {
          const findings = raw.map(([message, severity, failing, evidence]) => judged('network.dns', 'p', message, evidence, { severity, failing }));
          const input = report({ network, processes, findings });
          const out = serializeReport(input, { maxBytes });
          expect(Buffer.byteLength(out)).toBeLessThanOrEqual(maxBytes);
          const parsed = Report.parse(JSON.parse(out));
          expect(parsed).toEqual(boundReport(input, { maxBytes }));
          expect(parsed.findings.length + (parsed.cut?.findings ?? 0) + (parsed.cut?.findingsMerged ?? 0)).toBe(findings.length);
          const events = parsed.network.length + parsed.processes.length + (parsed.cut?.events ?? 0) + (parsed.cut?.eventsMerged ?? 0);
          expect(events).toBe(network.length + processes.length);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('survives 50,000 distinct 4 KB DNS names made of escape bytes, keeping the most severe', () => {
    // Each name is a slice of one long string: distinct, 4 KB, and no copy.
    const long = hostileText(50_000 + 4096, 7);
    const findings = Array.from({ length: 50_000 }, (_, i) => {
      const name = long.slice(i, i + 4096);
      const severe = i % 1000 === 999;
      return judged('network.dns', 'evil', name, { name, qtype: 1, pid: i }, severe ? { severity: 'critical' } : { severity: 'low', failing: false });
    });
    const input = report({ findings });

    const out = serializeReport(input);
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(REPORT_LIMITS.maxBytes);
    expect(out).not.toMatch(RAW_CONTROL);
    const parsed = Report.parse(JSON.parse(out));
    expect(parsed.findings).toHaveLength(REPORT_LIMITS.findings);
    expect(parsed.findings.filter((f) => f.severity === 'critical')).toHaveLength(50);
    expect(parsed.cut).toMatchObject({ findings: 48_000, findingsMerged: 0 });
    for (const f of parsed.findings) expect(f.message.length).toBeLessThanOrEqual(REPORT_LIMITS.stringChars);
  });
});
