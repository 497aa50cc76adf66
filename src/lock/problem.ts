export type LockErrorCode = 'lock.unhashed' | 'lock.unpinned' | 'lock.invalid';

/**
 * What is wrong with one logical line of a lockfile. The line parsers do not know the file or the
 * line number; `parseLock` catches this and rethrows it as an `InputError` prefixed `file:line:`.
 */
export class LineProblem extends Error {
  readonly code: LockErrorCode;

  constructor(code: LockErrorCode, message: string) {
    super(message);
    this.name = 'LineProblem';
    this.code = code;
  }
}

export function invalid(message: string): never {
  throw new LineProblem('lock.invalid', message);
}

/** C0 and C1 controls, DEL, zero-width and bidirectional formatting characters, the line and paragraph separators, BOM. */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/gu;

/**
 * Lockfile text made safe to print inside a message: unprintable characters become `\xNN` or
 * `\u{NNNN}` escapes and anything longer than `max` characters is cut with `…`.
 */
export function show(text: string, max = 100): string {
  const chars = Array.from(text);
  const cut = chars.length > max ? `${chars.slice(0, max).join('')}…` : text;
  return cut.replace(UNPRINTABLE, (ch) => {
    const code = ch.codePointAt(0) ?? 0;
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}
