import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCsv, parseRecord, recordHashToHex } from './record.js';

const sha = (text: string): { hex: string; record: string } => {
  const digest = createHash('sha256').update(text).digest();
  return { hex: digest.toString('hex'), record: `sha256=${digest.toString('base64url')}` };
};

/** Python's csv.writer (excel dialect, QUOTE_MINIMAL), as pip and wheel write RECORD. */
function writeCsv(rows: string[][]): string {
  const field = (f: string, alone: boolean): string => (/[",\r\n]/.test(f) || (alone && f === '') ? `"${f.replaceAll('"', '""')}"` : f);
  return rows.map((row) => `${row.map((f) => field(f, row.length === 1)).join(',')}\r\n`).join('');
}

describe('parseRecord', () => {
  it('reads path, sha256 as hex and size, with RECORD listing itself unhashed', () => {
    const init = sha('print("hi")\n');
    const text = [
      `pkg/__init__.py,${init.record},12`,
      'pkg-1.0.dist-info/RECORD,,',
      '../../bin/pkg-cli,sha256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,0',
      '',
    ].join('\n');

    expect(parseRecord(text)).toEqual([
      { path: 'pkg/__init__.py', sha256: init.hex, size: 12 },
      { path: 'pkg-1.0.dist-info/RECORD', sha256: null, size: null },
      { path: '../../bin/pkg-cli', sha256: '0'.repeat(64), size: 0 },
    ]);
  });

  it('unquotes paths holding commas, quotes and newlines, with any line ending', () => {
    const h = sha('x');
    const text = `"a,b.py",${h.record},1\r\n"say ""hi"".txt",,\r"multi\nline.txt",,3\n\n`;

    expect(parseRecord(text)).toEqual([
      { path: 'a,b.py', sha256: h.hex, size: 1 },
      { path: 'say "hi".txt', sha256: null, size: null },
      { path: 'multi\nline.txt', sha256: null, size: 3 },
    ]);
  });

  it('turns anything but a plain non-negative size into null and drops rows without a path', () => {
    const text = ['a,,-1', 'b,,1e3', 'c,, 7', 'd,,0x10', 'e', ',,5', '""', 'f,,123456789'].join('\n');

    expect(parseRecord(text)).toEqual([
      { path: 'a', sha256: null, size: null },
      { path: 'b', sha256: null, size: null },
      { path: 'c', sha256: null, size: null },
      { path: 'd', sha256: null, size: null },
      { path: 'e', sha256: null, size: null },
      { path: 'f', sha256: null, size: 123456789 },
    ]);
  });

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        for (const entry of parseRecord(text)) {
          expect(entry.path).not.toBe('');
          expect(entry.sha256 === null || /^[0-9a-f]{64}$/.test(entry.sha256)).toBe(true);
        }
      }),
    );
  });
});

describe('recordHashToHex', () => {
  it('decodes the urlsafe, unpadded base64 of a sha256', () => {
    const h = sha('hello');
    expect(recordHashToHex(h.record)).toBe(h.hex);
    // Some writers pad; accept it.
    expect(recordHashToHex(`${h.record}=`)).toBe(h.hex);
  });

  it.each([
    ['empty', ''],
    ['no algorithm', 'LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ'],
    ['another algorithm', 'sha384=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ'],
    ['upper-case algorithm', 'SHA256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ'],
    ['standard base64 alphabet', 'sha256=LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ'],
    ['too short', 'sha256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmC'],
    ['too long', 'sha256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQA'],
    ['stray low bits in the last character', 'sha256=LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCR'],
    ['surrounding space', 'sha256= LPJNul-wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ'],
  ])('returns null for %s', (_label, field) => {
    expect(recordHashToHex(field)).toBeNull();
  });

  it('round-trips every digest', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        const digest = Buffer.from(bytes);
        expect(recordHashToHex(`sha256=${digest.toString('base64url')}`)).toBe(digest.toString('hex'));
      }),
    );
  });
});

describe('parseCsv', () => {
  it('follows Python csv.reader on malformed quoting', () => {
    // Expected values are what Python 3.11's csv.reader returns for the same input.
    expect(parseCsv('"a"b,c')).toEqual([['ab', 'c']]);
    expect(parseCsv('a"b,c')).toEqual([['a"b', 'c']]);
    expect(parseCsv('"unterminated,x\ny')).toEqual([['unterminated,x\ny']]);
    expect(parseCsv('"",x')).toEqual([['', 'x']]);
    expect(parseCsv('""x"')).toEqual([['x"']]);
    expect(parseCsv('a,\n,b')).toEqual([
      ['a', ''],
      ['', 'b'],
    ]);
  });

  it('reads back whatever Python csv.writer would write', () => {
    const row = fc.array(fc.string({ unit: fc.constantFrom('a', 'é', ',', '"', '\r', '\n', ' ') }), {
      minLength: 1,
      maxLength: 4,
    });
    fc.assert(
      fc.property(fc.array(row, { maxLength: 6 }), (rows) => {
        expect(parseCsv(writeCsv(rows))).toEqual(rows);
      }),
    );
  });
});
