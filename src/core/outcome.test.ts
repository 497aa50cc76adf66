import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorText, MONITOR_CAPTURE, readMonitorLine, SupervisorStatus } from './outcome.js';

// Lines as images/monitor.py printed them in real runs (hostile fixtures on the real engine).
const REAL_MONITOR_LINES = [
  '{"type": "ready", "relayPort": 3141, "dns": "127.0.0.53", "ports": [80, 443, 8080, 8443, 8000, 8888, 4444, 1337, 21, 22, 25, 3306, 5432, 6379]}',
  '{"type": "dns-map", "name": "fastopen.exfil.invalid", "address": "127.1.0.1", "time": 1796226200.887}',
  '{"type": "dns", "name": "fastopen.exfil.invalid", "qtype": 1, "answer": "127.1.0.1", "src": "127.0.0.1:37145", "bytes": 40, "payload": "jqMBAAABAAAAAAAACGZhc3RvcGVuBWV4ZmlsB2ludmFsaWQAAAEAAQ==", "cut": false, "time": 1796226200.8873162}',
  '{"dst": "127.1.0.1:4444", "src": "127.0.0.1:52118", "port": 4444, "bytes": 2, "payload": "f38=", "cut": false, "type": "tcp", "firstBytes": "\\u007f\\u007f", "time": 1796226200.9}',
  '{"type": "dns-malformed", "src": "127.0.0.1:43461", "bytes": 6, "payload": "U0VDUkVU", "cut": false, "time": 1796226263.4066708}',
  '{"dst": "127.1.0.1:80", "src": "127.0.0.1:40000", "port": 80, "bytes": 57, "payload": "R0VUIC9wP2Q9U0VDUkVUIEhUVFAvMS4xDQpIb3N0OiBjb2xsZWN0LmV4ZmlsLmludmFsaWQNCg0K", "cut": false, "type": "http", "method": "GET", "path": "/p?d=SECRET", "host": "collect.exfil.invalid", "time": 1.5}',
  '{"dst": "127.1.0.2:443", "src": "127.0.0.1:40001", "port": 443, "bytes": 0, "payload": "", "cut": false, "type": "tls", "sni": null, "time": 1.6}',
  '{"type": "udp", "dst": "127.77.0.1:123", "src": "127.0.0.1:5001", "port": 123, "firstBytes": "SECRET", "bytes": 6, "payload": "U0VDUkVU", "cut": false, "time": 1.7}',
  '{"type": "truncated", "limit": 20000, "time": 2}',
  '{"type": "relay-error", "error": "[Errno 2] No such file or directory", "time": 3}',
];

describe('monitor events at the Python boundary', () => {
  it('reads every kind of line the monitor prints', () => {
    const events = REAL_MONITOR_LINES.map(readMonitorLine);
    expect(events.map((e) => e.type)).toEqual(['ready', 'dns-map', 'dns', 'tcp', 'dns-malformed', 'http', 'tls', 'udp', 'truncated', 'relay-error']);
    expect(events[2]).toMatchObject({ name: 'fastopen.exfil.invalid', qtype: 1, answer: '127.1.0.1' });
  });

  it('turns anything else into a monitor-error, never a silent drop', () => {
    const udp = (payload: string) =>
      JSON.stringify({ type: 'udp', dst: '127.1.0.1:53', src: '127.0.0.1:1', port: 53, firstBytes: '', bytes: 1, payload, cut: false, time: 1 });
    expect(readMonitorLine(udp('QQ=='))).toMatchObject({ type: 'udp', payload: 'QQ==' });
    for (const line of [
      'not json',
      '[]',
      '{"type": "dns", "name": 5}',
      '{"type": "made-up"}',
      '{"type": "http", "dst": "x"}',
      // A payload that is not base64, or longer than any datagram, is not what the monitor prints.
      udp('not base64!'),
      udp('A'.repeat(4 * Math.ceil(MONITOR_CAPTURE.datagramBytes / 3) + 4)),
      // Nor is a capture without its bytes: what was not shown was not searched.
      '{"type": "tcp", "dst": "127.1.0.1:1", "src": "127.0.0.1:2", "port": 1, "firstBytes": "", "time": 1}',
    ]) {
      expect(readMonitorLine(line)).toMatchObject({ type: 'monitor-error', error: expect.stringContaining('not an event') });
    }
  });
});

describe("the monitor's capture caps", () => {
  it('are the ones images/monitor.py keeps to', () => {
    const monitor = readFileSync(new URL('../../images/monitor.py', import.meta.url), 'utf8');
    const constant = (name: string) => {
      const m = new RegExp(`^${name} = (\\d+)(?: << (\\d+))?$`, 'm').exec(monitor);
      return m ? Number(m[1]) * 2 ** Number(m[2] ?? 0) : null;
    };
    expect({ streamBytes: constant('STREAM_CAP'), datagramBytes: constant('DATAGRAM_CAP'), runBytes: constant('RUN_CAP') }).toEqual(MONITOR_CAPTURE);
  });
});

describe("the supervisor's status at the Python boundary", () => {
  const real = {
    tracerPid: 7,
    rootPid: 12,
    started: 1.0,
    pipEnded: 2.0,
    detached: [],
    lingering: [{ pid: 40, ppid: 1, argv: ['sleep', '600'] }],
    tracerExit: 0,
    execAliases: { '/usr/bin/nc.openbsd': 'nc' },
    pip: { how: 'exited', value: 0 },
    tracerIntact: true,
    ended: 3.0,
  };

  it('reads what the supervisor writes', () => {
    expect(SupervisorStatus.parse(real)).toMatchObject({ rootPid: 12, pip: { how: 'exited', value: 0 }, execAliases: { '/usr/bin/nc.openbsd': 'nc' } });
  });

  it('refuses a status of another shape', () => {
    expect(SupervisorStatus.safeParse({ ...real, tracerIntact: 'yes' }).success).toBe(false);
    expect(SupervisorStatus.safeParse({ ...real, lingering: [{ pid: 'x' }] }).success).toBe(false);
    expect(SupervisorStatus.safeParse({ ...real, pip: { how: 'vanished', value: 0 } }).success).toBe(false);
  });
});

describe('errorText', () => {
  it('keeps a short message whole', () => {
    expect(errorText(new Error('(HTTP code 500) server error - boom'))).toBe('(HTTP code 500) server error - boom');
  });

  it('bounds a message quoting a 4,030-byte path, keeping what the engine did and why it failed', () => {
    const message = `(HTTP code 500) server error - lstat /var/lib/docker/overlay2/x/merged/tmp/${'d'.repeat(4030)}: file name too long`;
    const text = errorText(new Error(message));
    expect(text.length).toBe(511);
    expect(text.startsWith('(HTTP code 500) server error - lstat /var/lib/docker/overlay2/')).toBe(true);
    expect(text.endsWith(': file name too long')).toBe(true);
    expect(text).toContain('…');
  });

  it('reads what is not an Error as text', () => {
    expect(errorText('gone')).toBe('gone');
  });
});
