import { endianness } from 'node:os';

/**
 * Package-controlled text (names, paths, DNS names, argv) must not reach a terminal raw: an ANSI or
 * OSC sequence in it could rewrite what the user sees, and an invisible or reordering character
 * could make one name look like another. Control characters (Cc) become `\xNN` (guarddog's form);
 * every Unicode format character (Cf: the bidi overrides and isolates, U+061C, zero-width spaces
 * and joiners, U+2060, U+FEFF, tag characters) and the line and paragraph separators (Zl, Zp)
 * become `\uNNNN` or `\u{NNNNN}`.
 */
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

export function escapeControl(text: string): string {
  return text.replace(UNSAFE, (ch) => {
    const code = ch.codePointAt(0) ?? 0;
    if (code <= 0xff) return `\\x${code.toString(16).padStart(2, '0')}`;
    return code <= 0xffff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/**
 * UNSAFE, one character at a time, as tables: escapeJson runs over a whole report (up to 64 MiB).
 * On 71 MB of escaped JSON made of escape bytes, a regex with a callback per match took 6.3 s; a
 * table lookup per code unit takes 2.2 s to build the text and 0.3 s only to measure it.
 */
const UNSAFE_CHAR = /^[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]$/u;
let bmpTable: Uint8Array | undefined;

/** 1 for every BMP code unit UNSAFE matches; 0 for the surrogates, which are halves. Built on first use (~10 ms). */
function bmpUnsafe(): Uint8Array {
  if (!bmpTable) {
    bmpTable = new Uint8Array(0x10000);
    for (let code = 0; code < 0x10000; code += 1) {
      if ((code < 0xd800 || code > 0xdfff) && UNSAFE_CHAR.test(String.fromCharCode(code))) bmpTable[code] = 1;
    }
  }
  return bmpTable;
}

const astralSeen = new Map<number, boolean>();
function astralUnsafe(high: number, low: number): boolean {
  const key = high * 0x10000 + low;
  let unsafe = astralSeen.get(key);
  if (unsafe === undefined) {
    unsafe = UNSAFE_CHAR.test(String.fromCharCode(high, low));
    if (astralSeen.size < 4096) astralSeen.set(key, unsafe);
  }
  return unsafe;
}

const BIG_ENDIAN = endianness() === 'BE';
const HEX = Array.from('0123456789abcdef', (digit) => digit.charCodeAt(0));
const isHigh = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLow = (code: number) => code >= 0xdc00 && code <= 0xdfff;

/**
 * Code units of JSON text that escapeJson escapes, and the UTF-8 bytes they take raw. Below U+007F
 * only the newline can be raw in JSON.stringify's output, and it is layout, so the scan starts there.
 */
function unsafeIn(json: string): { units: number; bytes: number } {
  const bmp = bmpUnsafe();
  let units = 0;
  let bytes = 0;
  for (let i = 0; i < json.length; i += 1) {
    const code = json.charCodeAt(i);
    if (code < 0x7f) continue;
    if (bmp[code] === 1) {
      units += 1;
      bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : 3;
    } else if (isHigh(code) && isLow(json.charCodeAt(i + 1))) {
      if (astralUnsafe(code, json.charCodeAt(i + 1))) {
        units += 2;
        bytes += 4;
      }
      i += 1;
    }
  }
  return { units, bytes };
}

/**
 * JSON text that is safe to print. JSON.stringify escapes only U+0000 to U+001F, so a report on a
 * terminal could still carry DEL, C1 controls (U+009B is a one-byte CSI to some terminals), bidi
 * overrides and the rest of UNSAFE. Outside strings JSON text holds none of them, and inside a
 * string `\uXXXX` (a pair of them for an astral character) is the same character, so the parsed
 * report is unchanged. `json` must be JSON.stringify's output.
 */
export function escapeJson(json: string): string {
  const { units } = unsafeIn(json);
  if (units === 0) return json;
  const bmp = bmpUnsafe();
  const out = new Uint16Array(json.length + 5 * units);
  let o = 0;
  const escape = (code: number) => {
    out[o] = 0x5c; // backslash
    out[o + 1] = 0x75; // u
    out[o + 2] = HEX[code >> 12]!;
    out[o + 3] = HEX[(code >> 8) & 15]!;
    out[o + 4] = HEX[(code >> 4) & 15]!;
    out[o + 5] = HEX[code & 15]!;
    o += 6;
  };
  for (let i = 0; i < json.length; i += 1) {
    const code = json.charCodeAt(i);
    if (code < 0x7f) out[o++] = code;
    else if (bmp[code] === 1) escape(code);
    else if (isHigh(code) && isLow(json.charCodeAt(i + 1))) {
      const low = json.charCodeAt(++i);
      if (astralUnsafe(code, low)) {
        escape(code);
        escape(low);
      } else {
        out[o++] = code;
        out[o++] = low;
      }
    } else out[o++] = code;
  }
  const bytes = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  if (BIG_ENDIAN) bytes.swap16();
  return bytes.toString('utf16le');
}

/** The UTF-8 bytes of escapeJson(json), without building it. */
export function escapedJsonBytes(json: string): number {
  const { units, bytes } = unsafeIn(json);
  return Buffer.byteLength(json) + 6 * units - bytes;
}
