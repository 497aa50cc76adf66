import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { REDACT } from './logger.js';

describe('logger redaction', () => {
  it('drops credentials from every upstream or index URL field, whatever the caller passed', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
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
    const text = lines.join('');
    for (const secret of ['s3cret', 'hunter2', 'pa55', 'pw0rd', 'plain', 'alice', 'bob']) expect(text).not.toContain(secret);
    expect(JSON.parse(text)).toMatchObject({
      upstreams: { indexUrl: 'https://pypi.test/simple/', extraIndexUrls: ['https://extra.test/simple/'] },
      url: 'https://files.test/x.whl',
      indexUrl: 'https://idx.test/',
      upstream: { password: '[Redacted]' },
    });
  });
});
