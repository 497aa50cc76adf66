import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger, escapeLogLine, REDACT } from './logger.js';

function collector(): { sink: Writable; text: () => string } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { sink, text: () => lines.join('') };
}

describe('logger redaction', () => {
  it('drops credentials from every upstream or index URL field, whatever the caller passed', () => {
    const { sink, text: collected } = collector();
    const log = pino({ base: undefined, redact: REDACT }, sink);
    log.info(
      {
        upstreams: { indexUrl: 'https://alice:s3cret@pypi.test/simple/', extraIndexUrls: ['https://bob:hunter2@extra.test/simple/'] },
        url: 'https://carol:pa55@files.test/x.whl',
        indexUrl: 'https://dave:pw0rd@idx.test/',
        upstream: { password: 'plain' },
      },
      'installing',
    );
    const text = collected();
    for (const secret of ['s3cret', 'hunter2', 'pa55', 'pw0rd', 'plain', 'alice', 'bob']) expect(text).not.toContain(secret);
    expect(JSON.parse(text)).toMatchObject({
      upstreams: { indexUrl: 'https://pypi.test/simple/', extraIndexUrls: ['https://extra.test/simple/'] },
      url: 'https://files.test/x.whl',
      indexUrl: 'https://idx.test/',
      upstream: { password: '[Redacted]' },
    });
  });
});

describe('logger escaping', () => {
  // A C1 CSI (U+009B), a bidi override (U+202E) and an ESC sequence that clears the screen.
  const HOSTILE = 'pkg-\u009b31m-\u202e-\x1b[2J';
  const RAW = ['\u009b', '\u202e', '\x1b'];

  function logHostile(log: pino.Logger): void {
    log
      .child({ run: 'r1', phase: HOSTILE })
      .warn({ filename: HOSTILE, nested: { deeper: [HOSTILE, { [HOSTILE]: 1 }] }, where: `https://x.test/${HOSTILE}` }, `got ${HOSTILE}`);
  }

  it('prints no raw control or bidi character on a terminal, in the message or any nested field', async () => {
    const { sink, text } = collector();
    logHostile(createLogger('normal', false, { isTTY: true, stream: sink }));
    await sleep(50);
    const out = text();
    for (const raw of RAW) expect(out).not.toContain(raw);
    expect(out).toContain('WARN');
    expect(out).toContain(': got pkg-\\x9b31m-\\u202e-\\x1b[2J\n');
    expect(out).toContain('filename: "pkg-\\x9b31m-\\u202e-\\x1b[2J"');
    expect(out).toContain('phase: "pkg-\\x9b31m-\\u202e-\\x1b[2J"');
    expect(out).toContain('"pkg-\\x9b31m-\\u202e-\\x1b[2J"'); // inside nested.deeper
    expect(out).toContain('"pkg-\\x9b31m-\\u202e-\\x1b[2J": 1');
  });

  it('writes JSON logs whose bytes hold none of them and whose parsed values are unchanged', () => {
    const { sink, text } = collector();
    logHostile(createLogger('normal', false, { isTTY: false, stream: sink }));
    const out = text();
    for (const raw of RAW) expect(out).not.toContain(raw);
    expect(JSON.parse(out)).toMatchObject({
      level: 40,
      run: 'r1',
      phase: HOSTILE,
      msg: `got ${HOSTILE}`,
      filename: HOSTILE,
      nested: { deeper: [HOSTILE, { [HOSTILE]: 1 }] },
      where: `https://x.test/${HOSTILE}`,
    });
  });

  it('keeps redaction in front of the escaping', () => {
    const { sink, text } = collector();
    createLogger('normal', false, { isTTY: false, stream: sink }).info({ url: 'https://u:s3cret@idx.test/\u202e' }, 'x');
    expect(JSON.parse(text())).toMatchObject({ url: 'https://idx.test/%E2%80%AE' });
    expect(text()).not.toContain('s3cret');
  });

  it('escapes a line pretty printing could not parse, and leaves a plain line alone', () => {
    expect(escapeLogLine('not json \u009b\n', true)).toBe('not json \\x9b\n');
    const plain = '{"level":30,"msg":"hello"}\n';
    expect(escapeLogLine(plain, true)).toBe(plain);
    expect(escapeLogLine(plain, false)).toBe(plain);
  });
});
