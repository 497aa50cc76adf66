/**
 * Encodings written independently of the canary matcher's, for its tests to encode secrets the way
 * a package would (canary.test.ts, fuzz.test.ts). Kept out of the build (tsconfig.build.json).
 */

/** RFC 4648 base32 with padding, as Python's base64.b32encode writes it. */
export function base32(bytes: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const byte of bytes) bits += byte.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
  return out.padEnd(Math.ceil(out.length / 8) * 8, '=');
}

export const rot13 = (text: string): string =>
  text.replace(/[A-Za-z]/g, (ch) => String.fromCharCode(((ch.charCodeAt(0) - (ch <= 'Z' ? 65 : 97) + 13) % 26) + (ch <= 'Z' ? 65 : 97)));
