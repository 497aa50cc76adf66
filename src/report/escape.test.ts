import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeControl } from './escape.js';

describe('escapeControl', () => {
  it('escapes ANSI, OSC and bidi sequences', () => {
    expect(escapeControl('evil\x1b[2J\x1b]8;;http://x.invalid\x07pkg')).toBe('evil\\x1b[2J\\x1b]8;;http://x.invalid\\x07pkg');
    expect(escapeControl('a\u202eb\r\n')).toBe('a\\u202eb\\x0d\\x0a');
    expect(escapeControl('plain-name_1.0')).toBe('plain-name_1.0');
  });

  it('never lets a control character through', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(escapeControl(text)).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
      }),
    );
  });
});
