import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeControl } from './escape.js';

describe('escapeControl', () => {
  it('escapes ANSI, OSC and bidi sequences', () => {
    expect(escapeControl('evil\x1b[2J\x1b]8;;http://x.invalid\x07pkg')).toBe('evil\\x1b[2J\\x1b]8;;http://x.invalid\\x07pkg');
    expect(escapeControl('a\u202eb\r\n')).toBe('a\\u202eb\\x0d\\x0a');
    expect(escapeControl('plain-name_1.0')).toBe('plain-name_1.0');
  });

  it('escapes every format, line-separator and paragraph-separator character', () => {
    expect(escapeControl('a\u061cb\u200bc\u2060d\ufeffe\u2028f\u2029g')).toBe('a\\u061cb\\u200bc\\u2060d\\ufeffe\\u2028f\\u2029g');
    expect(escapeControl('tag\u{e0041}')).toBe('tag\\u{e0041}');
    expect(escapeControl('naïve-é')).toBe('naïve-é');
  });

  it('never lets a control character through', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(escapeControl(text)).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u);
      }),
    );
  });
});
