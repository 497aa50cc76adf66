import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeControl, escapedJsonBytes, escapeJson } from './escape.js';

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

describe('escapeJson', () => {
  it('escapes DEL, C1, format and separator characters in JSON text, and keeps its newlines', () => {
    const json = JSON.stringify({ name: 'a\x7fb\u009bc\u202ed\u2028e\u{e0041}f\u00e9\u{1f600}\x1b' }, null, 2);
    expect(escapeJson(json)).toBe('{\n  "name": "a\\u007fb\\u009bc\\u202ed\\u2028e\\udb40\\udc41f\u00e9\u{1f600}\\u001b"\n}');
    expect(escapeJson('{"plain": "ascii"}')).toBe('{"plain": "ascii"}');
  });

  it('changes no parsed value, leaves nothing a terminal obeys, and knows its size in advance', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'binary' }), { maxLength: 5 }), (strings) => {
        const json = JSON.stringify({ strings }, null, 2);
        const escaped = escapeJson(json);
        expect(JSON.parse(escaped)).toEqual({ strings });
        expect(escaped).not.toMatch(/(?!\n)[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u);
        expect(escapedJsonBytes(json)).toBe(Buffer.byteLength(escaped));
      }),
    );
  });
});
