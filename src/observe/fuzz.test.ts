/*
 * Hostile tracer records and monitor lines (issue 10, item 8). The package controls every argv
 * element, path, socket path and DNS name strace prints, and every name the monitor logs. parseTrace
 * never throws and stays within its caps whatever the lines; lines the package cannot forge (its own
 * calls, as strace escapes them) are read exactly even with garbage around them. readMonitorLine
 * turns anything that is not an event into a `monitor-error`, never an exception.
 */
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { MonitorEvent, readMonitorLine } from '../core/outcome.js';
import { MAX_ARG_CHARS, MAX_ARGV_ENTRIES, MAX_EVENTS, parseTrace, type Trace } from './trace.js';

// A bound for hangs, not a benchmark: the hangs fuzzing found took minutes; a loaded CI machine must not fail it.
const PER_RUN_MS = 10_000;
const BUDGET = { interruptAfterTimeLimit: 2500 } as const;

/** Runs `fn` and fails when it took longer than PER_RUN_MS (a synchronous parser cannot be raced). */
function quickly<T>(fn: () => T): T {
  const started = performance.now();
  const result = fn();
  expect(performance.now() - started).toBeLessThan(PER_RUN_MS);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Strings as strace prints them

const NAMED_ESCAPES: Record<number, string> = { 9: '\\t', 10: '\\n', 13: '\\r', 11: '\\v', 12: '\\f', 34: '\\"', 92: '\\\\' };

/** `bytes` inside strace's double quotes: printable ASCII as is, the rest as a named, hex or octal escape. */
function straceQuoted(bytes: Uint8Array, style: number): string {
  const body = [...bytes]
    .map((b, i) => {
      if (b >= 0x20 && b < 0x7f && b !== 34 && b !== 92) return String.fromCharCode(b);
      const pick = (style + i) % 3;
      if (pick === 0 && NAMED_ESCAPES[b]) return NAMED_ESCAPES[b];
      return pick === 1 ? `\\x${b.toString(16).padStart(2, '0')}` : `\\${b.toString(8).padStart(3, '0')}`;
    })
    .join('');
  return `"${body}"`;
}

/** Bytes a package would choose: strace syntax, quotes, escapes, newlines, invalid UTF-8. */
const hostileBytes = fc.oneof(
  fc.uint8Array({ maxLength: 48 }),
  fc
    .array(
      fc.constantFrom(
        '"',
        '\\',
        ') = 0',
        ' <unfinished ...>',
        '\n10 1.0 execve("/bin/sh", ["sh"], 0x0) = 0\n',
        '"}',
        ', ',
        '[',
        ']',
        '{',
        '}',
        '/* */',
        '...',
        'sun_path=',
      ),
      { maxLength: 8 },
    )
    .map((parts) => new Uint8Array(Buffer.from(parts.join('')))),
  fc.string({ unit: 'grapheme', maxLength: 12 }).map((s) => new Uint8Array(Buffer.from(s))),
);
/** A path segment: any bytes but `/` and NUL, and not `.` or `..`, so the path is already normal. */
const segment = hostileBytes
  .map((b) => b.filter((x) => x !== 0x2f && x !== 0))
  .filter((b) => b.length > 0 && !(b.length === 1 && b[0] === 0x2e) && !(b.length === 2 && b[0] === 0x2e && b[1] === 0x2e));
/** An absolute path as bytes, and as the parser should read it back: UTF-8, U+FFFD for invalid sequences. */
const absolutePath = fc.array(segment, { minLength: 1, maxLength: 4 }).map((segments) => {
  const bytes = Buffer.concat(segments.flatMap((s) => [Buffer.from('/'), Buffer.from(s)]));
  return { bytes: new Uint8Array(bytes), text: bytes.toString('utf8') };
});
const quoted = (path: { bytes: Uint8Array }, style: number): string => straceQuoted(path.bytes, style);
/** Mostly a few arguments, sometimes more than MAX_ARGV_ENTRIES. */
const argvOf = fc.oneof(fc.array(hostileBytes, { minLength: 1, maxLength: 8 }), fc.array(hostileBytes, { minLength: 60, maxLength: 80 }));

// ---------------------------------------------------------------------------------------------
// Whole lines in the shapes strace prints (see trace.test.ts and testdata/strace-sample.txt)

const pid = fc.integer({ min: 10, max: 14 });
const errno = fc.constantFrom(' = 0', ' = 3', ' = -1 ENOENT (No such file or directory)', ' = -1 EPERM (Operation not permitted)', ' = ?', '');
const line = fc.oneof(
  fc
    .tuple(pid, absolutePath, argvOf, fc.nat(), errno)
    .map(([p, path, argv, s, e]) => `${p} 1.000001 execve(${quoted(path, s)}, [${argv.map((a) => straceQuoted(a, s)).join(', ')}], 0x7ffd /* 5 vars */)${e}`),
  fc
    .tuple(pid, absolutePath, fc.nat(), errno)
    .map(([p, path, s, e]) => `${p} 1.000002 openat(AT_FDCWD, ${quoted(path, s)}, O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666)${e}`),
  fc.tuple(pid, absolutePath, fc.nat(), errno).map(([p, path, s, e]) => `${p} 1.000003 connect(3, {sa_family=AF_UNIX, sun_path=${quoted(path, s)}}, 110)${e}`),
  fc
    .tuple(pid, fc.nat({ max: 70_000 }), fc.constantFrom('127.0.0.53', '10.0.0.1', '999.1.1.1', '', '"'), errno)
    .map(([p, port, addr, e]) => `${p} 1.000004 connect(3, {sa_family=AF_INET, sin_port=htons(${port}), sin_addr=inet_addr("${addr}")}, 16)${e}`),
  fc
    .tuple(pid, hostileBytes, fc.nat(), errno)
    .map(
      ([p, payload, s, e]) =>
        `${p} 1.000005 sendto(3<socket:[77]>, ${straceQuoted(payload, s)}, ${payload.length}, MSG_NOSIGNAL, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16)${e}`,
    ),
  fc.tuple(pid, absolutePath, absolutePath, fc.nat(), errno).map(([p, a, b, s, e]) => `${p} 1.000006 rename(${quoted(a, s)}, ${quoted(b, s + 1)})${e}`),
  fc.tuple(pid, absolutePath, fc.nat(), errno).map(([p, a, s, e]) => `${p} 1.000007 unlink(${quoted(a, s)})${e}`),
  fc
    .tuple(pid, absolutePath, absolutePath, fc.nat(), errno)
    .map(([p, a, b, s, e]) => `${p} 1.000008 symlinkat(${quoted(a, s)}, AT_FDCWD, ${quoted(b, s)})${e}`),
  fc.tuple(pid, absolutePath, fc.nat(), errno).map(([p, a, s, e]) => `${p} 1.000009 chdir(${quoted(a, s)})${e}`),
  fc.tuple(pid, fc.integer({ min: -1, max: 20 }), errno).map(([p, target, e]) => `${p} 1.000010 kill(${target}, SIGKILL)${e}`),
  fc.tuple(pid, fc.constantFrom('vfork', 'clone', 'clone3', 'fork', 'execve')).map(([p, call]) => `${p} 1.000011 ${call}( <unfinished ...>`),
  fc
    .tuple(pid, fc.constantFrom('vfork', 'clone', 'clone3', 'fork', 'execve'), pid)
    .map(([p, call, child]) => `${p} 1.000012 <... ${call} resumed>) = ${child}`),
  fc
    .tuple(pid, pid)
    .map(([p, child]) => `${p} 1.000013 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = ${child}`),
  fc.tuple(pid, fc.integer({ min: -1, max: 300 })).map(([p, code]) => `${p} 1.000014 +++ exited with ${code} +++`),
  pid.map((p) => `${p} 1.000015 +++ killed by SIGKILL (core dumped) +++`),
  fc.tuple(pid, pid).map(([p, child]) => `${p} 1.000016 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=${child}, si_uid=1000, si_status=0} ---`),
);

/** Lines cut short, doubled or glued together, as a broken or flooded record would hold them. */
const brokenLine = fc.oneof(
  fc.tuple(line, fc.nat()).map(([l, at]) => l.slice(0, at % (l.length + 1))),
  fc.tuple(line, line).map(([a, b]) => `${a}${b}`),
  fc.tuple(line, fc.string({ unit: 'binary', maxLength: 30 }), fc.nat()).map(([l, junk, at]) => {
    const i = at % (l.length + 1);
    return l.slice(0, i) + junk + l.slice(i);
  }),
  // Nesting and repetition far beyond any real call.
  fc.nat({ max: 100_000 }).map((n) => `10 1.0 execve("/x", ${'['.repeat(n)}"a"${']'.repeat(n)}, 0x0) = 0`),
  fc.nat({ max: 100_000 }).map((n) => `10 1.0 connect(3, ${'{sa_family=AF_UNIX, '.repeat(n / 20)}sun_path="/x"}, 1) = 0`),
  fc.nat({ max: 100_000 }).map((n) => `10 1.0 openat(AT_FDCWD, "${'\\'.repeat(n)}", O_RDONLY) = 3`),
  fc.nat({ max: 20_000 }).map((n) => `10 1.0 execve("/x", [${'"a", '.repeat(n)}"b"], 0x0) = 0`),
  fc.nat({ max: 20_000 }).map((n) => `${'9'.repeat(n)} ${'1'.repeat(n)}.0 vfork() = ${'7'.repeat(n)}`),
);

const record = fc
  .array(fc.oneof({ weight: 4, arbitrary: line }, { weight: 1, arbitrary: brokenLine }), { maxLength: 40, size: 'medium' })
  .map((lines) => lines.join('\n'));

function expectWithinCaps(trace: Trace): void {
  expect(trace.events.length).toBeLessThanOrEqual(MAX_EVENTS);
  for (const n of [trace.unparsed, trace.oversized, trace.dropped]) expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
  expect(trace.heads.length).toBeLessThanOrEqual(8);
  if (trace.rootPid !== null) expect(trace.processes.has(trace.rootPid)).toBe(true);
  for (const event of trace.events) {
    expect(Number.isFinite(event.time)).toBe(true);
    if (event.kind !== 'exec') continue;
    expect(event.argv.length).toBeLessThanOrEqual(MAX_ARGV_ENTRIES);
    for (const arg of event.argv) expect(arg.length).toBeLessThanOrEqual(MAX_ARG_CHARS);
  }
  for (const info of trace.processes.values()) expect(info.argv.length).toBeLessThanOrEqual(MAX_ARGV_ENTRIES);
}

describe('parseTrace on hostile records', () => {
  it('never throws, and stays within its caps, on records of real-shaped, broken and hostile lines', () => {
    fc.assert(
      fc.property(record, (text) => expectWithinCaps(quickly(() => parseTrace(text)))),
      { numRuns: 300, ...BUDGET },
    );
  });

  it("reads a process's own calls exactly, whatever they hold and whatever garbage other processes print around them", () => {
    const call = fc.oneof(
      fc.record({ kind: fc.constant('exec' as const), path: absolutePath, argv: argvOf, style: fc.nat() }),
      fc.record({ kind: fc.constant('open' as const), path: absolutePath, style: fc.nat() }),
      fc.record({ kind: fc.constant('unix' as const), path: absolutePath, style: fc.nat() }),
      fc.record({ kind: fc.constant('send' as const), payload: hostileBytes.filter((b) => b.length > 0), style: fc.nat() }),
    );
    // Another process's lines, whole or broken: they must not change what pid 10's lines say.
    const noise = fc
      .oneof(
        line,
        brokenLine.filter((l) => l.length < 5000),
      )
      .map((l) => `99 ${l.replace(/^\d+ /, '')}`.replace(/\n/g, ' '));
    const script = fc.array(fc.oneof({ weight: 2, arbitrary: call }, { weight: 1, arbitrary: noise }), { maxLength: 30, size: 'medium' });

    fc.assert(
      fc.property(script, (items) => {
        const lines = ['10 1.000000 execve("/usr/bin/python3", ["python3"], 0x7ffd /* 5 vars */) = 0'];
        const expected: unknown[] = [{ kind: 'exec', path: '/usr/bin/python3', argv: ['python3'] }];
        for (const item of items) {
          if (typeof item === 'string') {
            lines.push(item);
          } else if (item.kind === 'exec') {
            lines.push(
              `10 1.5 execve(${quoted(item.path, item.style)}, [${item.argv.map((a) => straceQuoted(a, item.style)).join(', ')}], 0x7ffd /* 5 vars */) = 0`,
            );
            const argv = item.argv.slice(0, MAX_ARGV_ENTRIES).map((a) => Buffer.from(a).toString('utf8'));
            expected.push({ kind: 'exec', path: item.path.text, argv });
          } else if (item.kind === 'open') {
            lines.push(`10 1.5 openat(AT_FDCWD, ${quoted(item.path, item.style)}, O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)`);
            expected.push({ kind: 'open', path: item.path.text });
          } else if (item.kind === 'send') {
            // A send's buffer is read back as the bytes it was, one character each, not as UTF-8.
            lines.push(
              `10 1.5 sendto(3<socket:[5]>, ${straceQuoted(item.payload, item.style)}, ${item.payload.length}, MSG_NOSIGNAL, NULL, 0) = ${item.payload.length}`,
            );
            expected.push({ kind: 'send', payload: Buffer.from(item.payload).toString('latin1') });
          } else {
            lines.push(`10 1.5 connect(3, {sa_family=AF_UNIX, sun_path=${quoted(item.path, item.style)}}, 110) = 0`);
            expected.push({ kind: 'connect', address: item.path.text });
          }
        }
        const trace = quickly(() => parseTrace(lines.join('\n')));
        const mine = trace.events
          .filter((e) => e.pid === 10)
          .map((e) =>
            e.kind === 'exec'
              ? { kind: e.kind, path: e.path, argv: e.argv }
              : e.kind === 'open'
                ? { kind: e.kind, path: e.path }
                : e.kind === 'connect'
                  ? { kind: e.kind, address: e.address }
                  : e.kind === 'send'
                    ? { kind: e.kind, payload: e.payload }
                    : { kind: e.kind },
          );
        expect(mine).toEqual(expected);
        expect(trace.rootPid).toBe(10);
      }),
      { numRuns: 200, ...BUDGET },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Monitor lines

const NOT_AN_EVENT = 'the monitor printed a line that is not an event: ';

/** Objects shaped like each monitor event, with right or wrong values and extra keys. */
const hostileName = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('exfil.invalid', '\u0000', '\u202egpj.exe', '"}\n{"type":"ready"', 'a'.repeat(300)),
);
const anyValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), hostileName, fc.integer(), fc.constant(null));
const eventLike = fc
  .record(
    {
      type: fc.oneof(
        fc.constantFrom('ready', 'dns', 'dns-map', 'dns-malformed', 'http', 'tls', 'tcp', 'udp', 'truncated', 'monitor-error', 'relay-error'),
        fc.string({ maxLength: 6 }),
      ),
      name: fc.oneof(hostileName, anyValue),
      qtype: fc.oneof(fc.nat({ max: 300 }), anyValue),
      answer: fc.oneof(fc.constant(null), hostileName, anyValue),
      address: fc.oneof(hostileName, anyValue),
      src: fc.oneof(hostileName, anyValue),
      dst: fc.oneof(hostileName, anyValue),
      port: fc.oneof(fc.nat({ max: 70_000 }), anyValue),
      method: fc.oneof(hostileName, anyValue),
      path: fc.oneof(hostileName, anyValue),
      host: fc.oneof(fc.constant(null), hostileName, anyValue),
      sni: fc.oneof(fc.constant(null), hostileName, anyValue),
      firstBytes: fc.oneof(hostileName, anyValue),
      bytes: fc.oneof(fc.nat(), anyValue),
      limit: fc.oneof(fc.nat(), anyValue),
      error: fc.oneof(hostileName, anyValue),
      relayPort: fc.oneof(fc.nat({ max: 70_000 }), anyValue),
      dns: fc.oneof(hostileName, anyValue),
      ports: fc.oneof(fc.array(fc.nat({ max: 70_000 }), { maxLength: 4 }), anyValue),
      time: fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), anyValue),
      extra: anyValue,
    },
    { requiredKeys: ['type'] },
  )
  .map((o) => JSON.stringify(o));

const monitorLine = fc.oneof(
  { weight: 4, arbitrary: eventLike },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
  { weight: 1, arbitrary: fc.json({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.tuple(eventLike, fc.nat()).map(([l, at]) => l.slice(0, at % (l.length + 1))) },
  // Deep enough to matter, shallow enough for toEqual below (deeper lines: the explicit test after).
  { weight: 1, arbitrary: fc.nat({ max: 1_000 }).map((n) => `{"type":"truncated","limit":1,"time":1,"x":${'['.repeat(n)}${']'.repeat(n)}}`) },
  { weight: 1, arbitrary: fc.nat({ max: 100_000 }).map((n) => `${'['.repeat(n)}`) },
);

describe('readMonitorLine on hostile lines', () => {
  it('returns the event a well-formed line holds, and a monitor-error quoting at most 200 characters for anything else', () => {
    fc.assert(
      fc.property(monitorLine, (text) => {
        const event = quickly(() => readMonitorLine(text));
        let raw: unknown;
        try {
          raw = JSON.parse(text);
        } catch {
          raw = undefined;
        }
        if (MonitorEvent.safeParse(raw).success) {
          // JSON.stringify never writes an own `__proto__` key here, so the event is the line, key for key.
          expect(event).toEqual(raw);
        } else {
          expect(event).toEqual({ type: 'monitor-error', error: NOT_AN_EVENT + text.slice(0, 200), time: expect.any(Number) });
        }
      }),
      { numRuns: 500, ...BUDGET },
    );
  });

  it('reads an event with an extra key nested 100,000 deep, and refuses an unclosed one, quickly', () => {
    const deep = `{"type":"truncated","limit":1,"time":1,"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(quickly(() => readMonitorLine(deep))).toMatchObject({ type: 'truncated', limit: 1, time: 1 });
    const unclosed = `{"type":"truncated","limit":1,"time":1,"x":${'['.repeat(100_000)}`;
    expect(quickly(() => readMonitorLine(unclosed))).toEqual({ type: 'monitor-error', error: NOT_AN_EVENT + unclosed.slice(0, 200), time: expect.any(Number) });
  });

  it('keeps a `__proto__` key from reaching any prototype', () => {
    const event = readMonitorLine('{"type":"truncated","limit":1,"time":1,"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}');
    expect(event.type).toBe('truncated');
    expect(Object.getPrototypeOf(event)).toBe(Object.prototype);
    expect((event as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
