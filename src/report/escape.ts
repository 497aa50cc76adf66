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
