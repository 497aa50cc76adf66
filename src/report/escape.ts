/**
 * Package-controlled text (names, paths, DNS names, argv) must not reach a terminal raw: an ANSI or
 * OSC sequence in it could rewrite what the user sees. Control characters become `\xNN` (guarddog's
 * form), and so do the C1 controls and the Unicode bidi overrides.
 */
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function escapeControl(text: string): string {
  return text.replace(UNSAFE, (ch) => {
    const code = ch.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
