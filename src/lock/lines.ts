/*
 * Physical lines → logical lines, the way pip's req_file.preprocess() does it: split lines, join
 * backslash continuations, drop comments and blank lines. Following pip closely matters: if we read
 * the file differently from pip, the lock we vet is not the lock pip installs.
 */

export interface LogicalLine {
  /** 1-based line on which the logical line starts. */
  line: number;
  /** Content with comments removed and whitespace trimmed; never empty unless `unterminated`. */
  text: string;
  /** The file ended while this line was still continued with a trailing backslash. */
  unterminated: boolean;
  /**
   * A continued physical line that also had an inline comment: pip would let the comment swallow
   * the next line(s), which is never what the author meant.
   */
  commentedContinuation: boolean;
}

/** Every line break Python's str.splitlines() knows, which is what pip splits on. */
const LINE_BREAK = /\r\n|[\n\r\v\f\u001c\u001d\u001e\u0085\u2028\u2029]/;

/**
 * pip's COMMENT_RE is `(^|\s+)#.*$`: a `#` at the start or after whitespace opens a comment. One
 * whitespace character is enough here, since the result is trimmed, and unlike `\s+` it cannot
 * backtrack quadratically over a long run of spaces.
 */
const COMMENT = /(?:^|\s)#.*$/s;

/** A physical line that is only a comment (pip's COMMENT_RE.match, anchored at the start). */
const COMMENT_LINE = /^\s*#/;

function physicalLines(text: string): string[] {
  const lines = text.replace(/^\uFEFF/, '').split(LINE_BREAK);
  // A final line break ends the last line; it does not start an empty one (as in splitlines()).
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

export function stripComment(text: string): string {
  return text.replace(COMMENT, '').trim();
}

interface Pending {
  line: number;
  parts: string[];
  commentedContinuation: boolean;
}

function finish(pending: Pending, unterminated: boolean): LogicalLine {
  return {
    line: pending.line,
    text: stripComment(pending.parts.join('')),
    unterminated,
    commentedContinuation: pending.commentedContinuation,
  };
}

export function logicalLines(text: string): LogicalLine[] {
  const result: LogicalLine[] = [];
  const keep = (logical: LogicalLine): void => {
    if (logical.text !== '' || logical.commentedContinuation) result.push(logical);
  };
  let pending: Pending | null = null;

  for (const [index, raw] of physicalLines(text).entries()) {
    const line = index + 1;
    if (raw.endsWith('\\') && !COMMENT_LINE.test(raw)) {
      const part = raw.slice(0, -1);
      pending ??= { line, parts: [], commentedContinuation: false };
      pending.parts.push(part);
      if (COMMENT.test(part)) pending.commentedContinuation = true;
      continue;
    }
    // A comment line ends a continuation but adds nothing to it (pip does the same).
    const part = COMMENT_LINE.test(raw) ? '' : raw;
    if (pending) {
      pending.parts.push(part);
      keep(finish(pending, false));
      pending = null;
    } else {
      keep(finish({ line, parts: [part], commentedContinuation: false }, false));
    }
  }

  if (pending) result.push(finish(pending, true));
  return result;
}
