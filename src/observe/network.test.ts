import { describe, expect, it } from 'vitest';
import type { Finding } from '../core/finding.js';
import { networkFindings, type NetworkContext } from './network.js';
import { parseTrace } from './trace.js';

// Every trace is a few strace lines in the format the tracer writes (`-f -ttt`): pid, epoch
// seconds, the call. pid 11 is pip, pid 20 a build hook of evil-pkg, pid 30 one of other-pkg.
const DNS = 'connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0';
const inet = (address: string, port: number, result = '0') =>
  `connect(3, {sa_family=AF_INET, sin_port=htons(${port}), sin_addr=inet_addr("${address}")}, 16) = ${result}`;
const unix = (path: string, result = '-1 ENOENT (No such file or directory)') => `connect(4, {sa_family=AF_UNIX, sun_path="${path}"}, 110) = ${result}`;

const PACKAGES: Record<number, string> = { 20: 'evil-pkg', 30: 'other-pkg' };
const ARGV: Record<number, string[]> = {
  11: ['python3', '-m', 'pip', 'install'],
  20: ['/opt/target/bin/python', '_in_process.py', 'build_wheel', '/tmp/tmpabc'],
  30: ['/opt/target/bin/python', '_in_process.py', 'prepare_metadata_for_build_wheel'],
};

function context(lines: string[], monitorEvents: Array<Record<string, unknown>>): NetworkContext {
  return {
    trace: parseTrace(lines.join('\n')),
    monitorEvents,
    packageOf: (pid) => PACKAGES[pid] ?? null,
    argvOf: (pid) => ARGV[pid] ?? [],
    relay: { address: '127.0.0.1', port: 3141 },
    dnsServer: { address: '127.0.0.53', port: 53 },
    pipPids: new Set([11]),
  };
}

const rules = (findings: Finding[]) => findings.map((f) => f.rule);

describe('networkFindings: DNS queries', () => {
  it('attributes a query to the process that last connected to the resolver before it', () => {
    const ctx = context(
      ['11 1795820980.000000 ' + DNS, '30 1795820985.000000 ' + DNS, '20 1795820988.520324 ' + DNS],
      [{ type: 'dns', name: 'collect.x.invalid', qtype: 1, answer: '127.1.0.1', src: '127.0.0.1:40000', time: 1795820988.5204 }],
    );
    const { findings } = networkFindings(ctx);
    expect(findings).toEqual([
      {
        rule: 'network.dns',
        severity: 'high',
        package: 'evil-pkg',
        message: 'DNS query for collect.x.invalid',
        evidence: { name: 'collect.x.invalid', qtype: 1, pid: 20, argv: '/opt/target/bin/python _in_process.py build_wheel /tmp/tmpabc' },
      },
    ]);
  });

  it('accepts a resolver connect up to 50 ms after the query time, but not later', () => {
    const early = networkFindings(context(['20 100.040000 ' + DNS], [{ type: 'dns', name: 'a.test', qtype: 1, time: 100 }]));
    expect(early.findings[0]).toMatchObject({ package: 'evil-pkg', evidence: { pid: 20 } });

    const late = networkFindings(context(['20 100.060000 ' + DNS], [{ type: 'dns', name: 'a.test', qtype: 1, time: 100 }]));
    expect(late.findings[0]).toMatchObject({ package: null, evidence: { name: 'a.test', pid: null, argv: null } });
  });

  it('leaves a query unattributed when the last resolver connect is more than 10 s older', () => {
    const { findings } = networkFindings(context(['20 100.000000 ' + DNS], [{ type: 'dns', name: 'stale.test', qtype: 28, time: 110.5 }]));
    expect(findings).toEqual([
      {
        rule: 'network.dns',
        severity: 'high',
        package: null,
        message: 'DNS query for stale.test',
        evidence: { name: 'stale.test', qtype: 28, pid: null, argv: null },
      },
    ]);
  });

  it('reports one finding per package and name, counting repeats', () => {
    const { findings } = networkFindings(
      context(
        ['20 100.000000 ' + DNS, '20 101.000000 ' + DNS, '30 102.000000 ' + DNS],
        [
          { type: 'dns', name: 'x.test', qtype: 1, time: 100.01 },
          { type: 'dns', name: 'x.test', qtype: 1, time: 101.01 },
          { type: 'dns', name: 'x.test', qtype: 1, time: 102.01 },
          { type: 'dns', name: 'y.test', qtype: 1, time: 102.02 },
        ],
      ),
    );
    expect(findings.map((f) => [f.rule, f.package, f.evidence.name, f.evidence.count])).toEqual([
      ['network.dns', 'evil-pkg', 'x.test', 2],
      ['network.dns', 'other-pkg', 'x.test', undefined],
      ['network.dns', 'other-pkg', 'y.test', undefined],
    ]);
  });

  it('raises no network.connect for the resolver itself', () => {
    const { findings } = networkFindings(context(['20 100.000000 ' + DNS], []));
    expect(findings).toEqual([]);
  });
});

describe('networkFindings: what reached the fake services', () => {
  it('reports an HTTP request, naming the host from its Host header and the process that connected', () => {
    const ctx = context(
      ['20 1795820988.520324 ' + DNS, '20 1795820988.521870 ' + inet('127.1.0.1', 80, '-1 EINPROGRESS (Operation now in progress)')],
      [
        { type: 'dns-map', name: 'collect.x.invalid', address: '127.1.0.1', time: 1795820988.5203 },
        { type: 'dns', name: 'collect.x.invalid', qtype: 1, answer: '127.1.0.1', src: '127.0.0.1:41000', time: 1795820988.5204 },
        { type: 'http', dst: '127.1.0.1:80', src: '127.0.0.1:52000', port: 80, method: 'GET', path: '/x?d=1', host: 'collect.x.invalid', time: 1795820988.523 },
      ],
    );
    const { findings } = networkFindings(ctx);
    const argv = '/opt/target/bin/python _in_process.py build_wheel /tmp/tmpabc';
    expect(findings).toEqual([
      expect.objectContaining({ rule: 'network.dns', package: 'evil-pkg' }),
      {
        rule: 'network.http',
        severity: 'high',
        package: 'evil-pkg',
        message: 'a request reached the fake service: GET http://collect.x.invalid/x?d=1',
        evidence: { method: 'GET', host: 'collect.x.invalid', path: '/x?d=1', dst: '127.1.0.1:80', pid: 20, argv },
      },
      {
        rule: 'network.connect',
        severity: 'high',
        package: 'evil-pkg',
        message: 'connect to collect.x.invalid (127.1.0.1):80',
        evidence: { address: '127.1.0.1', port: 80, host: 'collect.x.invalid', syscall: 'connect', ok: false, errno: 'EINPROGRESS', pid: 20, argv },
      },
    ]);
  });

  it('names the host from the sinkhole map when the request has no Host header', () => {
    const { findings } = networkFindings(
      context(
        ['30 100.000000 ' + inet('127.1.0.7', 8080)],
        [
          { type: 'dns-map', name: 'exfil.test', address: '127.1.0.7' },
          { type: 'http', dst: '127.1.0.7:8080', method: 'POST', path: '/up', host: null, time: 100.2 },
        ],
      ),
    );
    const http = findings.find((f) => f.rule === 'network.http');
    expect(http).toMatchObject({
      package: 'other-pkg',
      message: 'a request reached the fake service: POST http://exfil.test/up',
      evidence: { method: 'POST', host: 'exfil.test', path: '/up', dst: '127.1.0.7:8080', pid: 30 },
    });
  });

  it('blames the last process that connected to that address and port before the request, not a later one', () => {
    const { findings } = networkFindings(
      context(
        ['30 100.000000 ' + inet('127.1.0.1', 80), '20 100.500000 ' + inet('127.1.0.1', 80), '30 200.000000 ' + inet('127.1.0.1', 80)],
        [{ type: 'http', dst: '127.1.0.1:80', method: 'GET', path: '/', host: 'a.test', time: 100.6 }],
      ),
    );
    expect(findings.filter((f) => f.rule === 'network.http').map((f) => [f.package, f.evidence.pid])).toEqual([['evil-pkg', 20]]);
  });

  it('reports a TLS handshake by its SNI', () => {
    const { findings } = networkFindings(
      context(
        ['20 100.000000 ' + inet('127.1.0.2', 443, '-1 EINPROGRESS (Operation now in progress)')],
        [{ type: 'tls', sni: 'api.evil.test', dst: '127.1.0.2:443', src: '127.0.0.1:50000', port: 443, time: 100.1 }],
      ),
    );
    expect(findings.find((f) => f.rule === 'network.http')).toEqual({
      rule: 'network.http',
      severity: 'high',
      package: 'evil-pkg',
      message: 'a request reached the fake service: TLS to api.evil.test',
      evidence: {
        sni: 'api.evil.test',
        host: 'api.evil.test',
        dst: '127.1.0.2:443',
        pid: 20,
        argv: '/opt/target/bin/python _in_process.py build_wheel /tmp/tmpabc',
      },
    });
  });

  it('leaves raw TCP to the tracer: no network.http, one network.connect', () => {
    const { findings, events } = networkFindings(
      context(
        ['20 100.000000 ' + inet('127.1.0.3', 25)],
        [
          { type: 'dns-map', name: 'mail.test', address: '127.1.0.3' },
          { type: 'tcp', firstBytes: 'EHLO x', dst: '127.1.0.3:25', time: 100.1 },
        ],
      ),
    );
    expect(rules(findings)).toEqual(['network.connect']);
    expect(findings[0]).toMatchObject({ package: 'evil-pkg', message: 'connect to mail.test (127.1.0.3):25' });
    expect(events.find((e) => e.type === 'tcp')).toMatchObject({
      source: 'monitor',
      firstBytes: 'EHLO x',
      resolvedHost: 'mail.test',
      pid: 20,
      package: 'evil-pkg',
    });
  });

  it('counts repeated identical requests from one package once', () => {
    const { findings } = networkFindings(
      context(
        ['20 100.000000 ' + inet('127.1.0.1', 80), '20 101.000000 ' + inet('127.1.0.1', 80), '20 102.000000 ' + inet('127.1.0.1', 80)],
        [1, 2, 3].map((i) => ({ type: 'http', dst: '127.1.0.1:80', method: 'GET', path: '/', host: 'a.test', time: 99 + i + 0.1 })),
      ),
    );
    expect(findings.map((f) => [f.rule, f.package, f.evidence.count])).toEqual([
      ['network.http', 'evil-pkg', 3],
      ['network.connect', 'evil-pkg', 3],
    ]);
  });
});

describe('networkFindings: what the tracer saw', () => {
  it('reports raw connects to addresses the sinkhole never handed out, by address', () => {
    const { findings } = networkFindings(context(['20 100.000000 ' + inet('10.255.255.1', 4444, '-1 ENETUNREACH (Network is unreachable)')], []));
    expect(findings).toEqual([
      {
        rule: 'network.connect',
        severity: 'high',
        package: 'evil-pkg',
        message: 'connect to 10.255.255.1:4444',
        evidence: {
          address: '10.255.255.1',
          port: 4444,
          host: null,
          syscall: 'connect',
          ok: false,
          errno: 'ENETUNREACH',
          pid: 20,
          argv: '/opt/target/bin/python _in_process.py build_wheel /tmp/tmpabc',
        },
      },
    ]);
  });

  it('reports an IPv6 connect and a UDP sendto with an address', () => {
    const { findings } = networkFindings(
      context(
        [
          '30 100.000000 connect(3, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 ENETUNREACH (Network is unreachable)',
          '30 100.100000 sendto(3, "x", 1, 0, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("8.8.8.8")}, 16) = 1',
        ],
        [],
      ),
    );
    expect(findings.map((f) => [f.rule, f.package, f.message])).toEqual([
      ['network.connect', 'other-pkg', 'connect to 2001:db8::1:443'],
      ['network.connect', 'other-pkg', 'sendto to 8.8.8.8:53'],
    ]);
  });

  it('ignores the relay and the resolver, which are how pip and name lookups are meant to work', () => {
    const { findings, events } = networkFindings(context(['11 100.000000 ' + inet('127.0.0.1', 3141), '20 100.100000 ' + DNS], []));
    expect(findings).toEqual([]);
    expect(events.map((e) => [e.source, e.pid, e.address, e.port, e.package])).toEqual([
      ['tracer', 11, '127.0.0.1', 3141, null],
      ['tracer', 20, '127.0.0.53', 53, 'evil-pkg'],
    ]);
  });

  it('reports the relay port on another address, and another port on the relay address', () => {
    const { findings } = networkFindings(context(['20 100.000000 ' + inet('127.0.0.2', 3141), '20 100.100000 ' + inet('127.0.0.1', 22)], []));
    expect(findings.map((f) => f.message)).toEqual(['connect to 127.0.0.2:3141', 'connect to 127.0.0.1:22']);
  });

  it('reports unix sockets except the nscd probe glibc makes on every lookup', () => {
    const { findings } = networkFindings(
      context(
        ['20 100.000000 ' + unix('/var/run/nscd/socket'), '20 100.000100 ' + unix('/run/nscd/socket'), '20 100.100000 ' + unix('/var/run/docker.sock')],
        [],
      ),
    );
    expect(findings).toEqual([
      {
        rule: 'network.unix-socket',
        severity: 'high',
        package: 'evil-pkg',
        message: 'connect to unix socket /var/run/docker.sock',
        evidence: { path: '/var/run/docker.sock', ok: false, errno: 'ENOENT', pid: 20, argv: '/opt/target/bin/python _in_process.py build_wheel /tmp/tmpabc' },
      },
    ]);
  });

  it('dedupes unix sockets per package, and keeps packages apart', () => {
    const { findings } = networkFindings(
      context(
        ['20 100.000000 ' + unix('/var/run/docker.sock'), '20 100.100000 ' + unix('/var/run/docker.sock'), '30 100.200000 ' + unix('/var/run/docker.sock')],
        [],
      ),
    );
    expect(findings.map((f) => [f.rule, f.package, f.evidence.count])).toEqual([
      ['network.unix-socket', 'evil-pkg', 2],
      ['network.unix-socket', 'other-pkg', undefined],
    ]);
  });

  it('keeps argv evidence to its first 8 elements', () => {
    const ctx = context(['20 100.000000 ' + inet('10.0.0.1', 80)], []);
    ctx.argvOf = () => Array.from({ length: 12 }, (_, i) => `a${i}`);
    expect(networkFindings(ctx).findings[0]?.evidence.argv).toBe('a0 a1 a2 a3 a4 a5 a6 a7');
  });
});

describe('networkFindings: events for the report', () => {
  it('keeps monitor diagnostics, drops events of unknown types, and lists tracer connects last', () => {
    const { events } = networkFindings(
      context(
        ['20 100.000000 ' + inet('10.0.0.1', 80)],
        [
          { type: 'relay-error', error: 'boom', time: 1 },
          { type: 'truncated', limit: 20000, time: 2 },
          { type: 'dns-malformed', bytes: 3, src: '127.0.0.1:1', time: 3 },
          { type: 'dns-map', name: 'a.test', address: '127.1.0.1' },
          { type: 'something-else', time: 4 },
        ],
      ),
    );
    expect(events).toEqual([
      { source: 'monitor', type: 'relay-error', error: 'boom', time: 1 },
      { source: 'monitor', type: 'truncated', limit: 20000, time: 2 },
      { source: 'monitor', type: 'dns-malformed', bytes: 3, src: '127.0.0.1:1', time: 3, pid: null, argv: null, package: null },
      {
        source: 'tracer',
        kind: 'connect',
        pid: 20,
        time: 100,
        ok: true,
        errno: null,
        syscall: 'connect',
        family: 'inet',
        address: '10.0.0.1',
        port: 80,
        package: 'evil-pkg',
      },
    ]);
  });

  it('annotates a DNS event with who asked', () => {
    const { events } = networkFindings(context(['20 100.000000 ' + DNS], [{ type: 'dns', name: 'a.test', qtype: 1, time: 100.01 }]));
    expect(events[0]).toEqual({
      source: 'monitor',
      type: 'dns',
      name: 'a.test',
      qtype: 1,
      time: 100.01,
      pid: 20,
      argv: '/opt/target/bin/python _in_process.py build_wheel /tmp/tmpabc',
      package: 'evil-pkg',
    });
  });
});

describe('networkFindings: a monitor that could not record everything', () => {
  it('fails closed when the monitor truncated its events or a listener failed, once per kind', () => {
    const { findings } = networkFindings(
      context(
        [],
        [
          { type: 'truncated', limit: 20000, time: 1 },
          { type: 'monitor-error', port: 80, error: "error('can't start new thread')", time: 2 },
          { type: 'monitor-error', port: 443, error: "error('can't start new thread')", time: 3 },
        ],
      ),
    );
    expect(findings.map((f) => [f.rule, f.severity, f.evidence.event])).toEqual([
      ['monitor.tampered', 'critical', 'truncated'],
      ['monitor.tampered', 'critical', 'monitor-error'],
    ]);
  });

  it('reports malformed packets sent to the sinkhole as DNS traffic, from the process that sent them', () => {
    const { findings } = networkFindings(context([], [{ type: 'dns-malformed', bytes: 3, src: '127.0.0.1:5000', time: 1 }]));
    expect(findings).toEqual([
      expect.objectContaining({ rule: 'network.dns', package: null, evidence: { malformed: true, bytes: 3, src: '127.0.0.1:5000', pid: null, argv: null } }),
    ]);
    const sent = networkFindings(context(['20 0.900000 ' + DNS], [{ type: 'dns-malformed', bytes: 3, src: '127.0.0.1:5000', time: 1 }]));
    expect(sent.findings).toEqual([
      expect.objectContaining({ rule: 'network.dns', package: 'evil-pkg', evidence: expect.objectContaining({ malformed: true, pid: 20 }) }),
    ]);
  });
});

describe('networkFindings: what only one witness saw', () => {
  const relay = 'connect(5, {sa_family=AF_INET, sin_port=htons(3141), sin_addr=inet_addr("127.0.0.1")}, 16) = 0';

  it('reports a build hook that talks to the index relay, and not pip', () => {
    const { findings } = networkFindings(context(['11 1.000000 ' + relay, '20 2.000000 ' + relay], []));
    expect(findings).toEqual([
      expect.objectContaining({
        rule: 'network.connect',
        package: 'evil-pkg',
        evidence: expect.objectContaining({ host: 'index relay', port: 3141, pid: 20, argv: ARGV[20]!.join(' ') }),
      }),
    ]);
  });

  it('reports a connection or datagram the monitor saw and the tracer did not', () => {
    const { findings } = networkFindings(
      context(
        ['20 1.000000 ' + inet('127.1.0.2', 80)],
        [
          { type: 'dns-map', name: 'fastopen.exfil.invalid', address: '127.1.0.1', time: 0.5 },
          { type: 'tcp', dst: '127.1.0.1:4444', src: '127.0.0.1:5000', port: 4444, firstBytes: 'SECRET', time: 1.5 },
          { type: 'udp', dst: '127.1.0.3:123', src: '127.0.0.1:5001', port: 123, firstBytes: 'x', time: 1.6 },
          // Seen by both: the tracer's connect reports it, once.
          { type: 'tcp', dst: '127.1.0.2:80', src: '127.0.0.1:5002', port: 80, firstBytes: '', time: 1.1 },
        ],
      ),
    );
    expect(findings.map((f) => [f.rule, f.package, f.evidence.address, f.evidence.port, f.evidence.witness ?? 'tracer'])).toEqual([
      ['network.connect', null, '127.1.0.1', 4444, 'monitor'],
      ['network.connect', null, '127.1.0.3', 123, 'monitor'],
      ['network.connect', 'evil-pkg', '127.1.0.2', 80, 'tracer'],
    ]);
    expect(findings[0]?.evidence).toMatchObject({ host: 'fastopen.exfil.invalid', protocol: 'tcp', firstBytes: 'SECRET' });
  });
});
