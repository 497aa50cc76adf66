import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cutHead, cutTail, headUnits, tailUnits } from './cut.js';

const LONE_SURROGATE = /\p{Cs}/u;

describe('cutHead and cutTail', () => {
  it('leave text that fits alone', () => {
    expect(cutHead('abc', 3)).toBe('abc');
    expect(cutTail('abc', 3)).toBe('abc');
  });

  it('keep the head, or the tail, and say how many code units went', () => {
    expect(cutHead('a'.repeat(100), 40)).toBe(`${'a'.repeat(27)}…[+73 chars]`);
    expect(cutTail(`${'x'.repeat(60)}ERROR: boom`, 40)).toBe(`…[+43 chars]${'x'.repeat(17)}ERROR: boom`);
  });

  it('never split a surrogate pair', () => {
    const emoji = '\u{1f600}';
    // 27 units fit before a 13-unit marker; the 27th is the first half of a pair, so 26 stay.
    expect(cutHead(`${'a'.repeat(26)}${emoji}${'b'.repeat(80)}`, 40)).toBe(`${'a'.repeat(26)}…[+82 chars]`);
    expect(headUnits(`a${emoji}`, 2)).toBe('a');
    expect(tailUnits(`${emoji}a`, 2)).toBe('a');
  });

  it('stay within max, keep a prefix or suffix, and make no lone surrogate from well-formed text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 200 }), fc.integer({ min: 24, max: 120 }), (text, max) => {
        for (const [cut, keeps] of [
          [cutHead, (out: string) => text.startsWith(out.replace(/…\[\+\d+ chars\]$/, ''))],
          [cutTail, (out: string) => text.endsWith(out.replace(/^…\[\+\d+ chars\]/, ''))],
        ] as const) {
          const out = cut(text, max);
          expect(out.length).toBeLessThanOrEqual(max);
          expect(keeps(out)).toBe(true);
          expect(LONE_SURROGATE.test(out)).toBe(false);
          const dropped = /…\[\+(\d+) chars\]/.exec(out)?.[1];
          if (text.length <= max) expect(out).toBe(text);
          else expect(Number(dropped)).toBe(text.length - (out.length - `…[+${dropped} chars]`.length));
        }
      }),
    );
  });
});
