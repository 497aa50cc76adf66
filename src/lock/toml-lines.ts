/*
 * Line numbers for the pylock.toml reader's messages: the line of each `[[packages]]` entry and of
 * a top-level key. The TOML parser gives none, so the text is scanned for where each line starts:
 * outside or inside a string, and at which bracket depth. Only text the parser accepted is scanned.
 */

export interface CodeLine {
  line: number;
  text: string;
  /** `[`/`{` nesting at the start of the line: 0 for a table header or a key of a table. */
  depth: number;
}

/** Lines that start outside every string, so a `[[packages]]` inside a multi-line string is not taken for a header. */
export function layoutOf(text: string): CodeLine[] {
  const lines: CodeLine[] = [];
  let line = 1;
  let depth = 0;
  let lineStart = true;
  for (let i = 0; i < text.length;) {
    if (lineStart) {
      const end = text.indexOf('\n', i);
      lines.push({ line, text: text.slice(i, end < 0 ? text.length : end), depth });
      lineStart = false;
    }
    const ch = text.charAt(i);
    if (ch === '\n') {
      line += 1;
      lineStart = true;
      i += 1;
    } else if (ch === '#') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? text.length : end;
    } else if (ch === '"' || ch === "'") {
      const end = stringEnd(text, i);
      for (let j = text.indexOf('\n', i); j >= 0 && j < end; j = text.indexOf('\n', j + 1)) line += 1;
      i = end;
    } else {
      if (ch === '[' || ch === '{') depth += 1;
      else if (ch === ']' || ch === '}') depth -= 1;
      i += 1;
    }
  }
  return lines;
}

/** The index just past the string that starts at `start`: basic or literal, one line or multi-line. */
function stringEnd(text: string, start: number): number {
  const quote = text.charAt(start);
  const multi = text.startsWith(quote.repeat(3), start);
  const escapes = quote === '"';
  for (let i = start + (multi ? 3 : 1); i < text.length;) {
    const ch = text.charAt(i);
    if (escapes && ch === '\\') {
      i += 2;
    } else if (!multi && ch === quote) {
      return i + 1;
    } else if (multi && text.startsWith(quote.repeat(3), i)) {
      // Up to two more quotes right before the closing three belong to the string.
      let end = i + 3;
      while (end < text.length && end < i + 5 && text.charAt(end) === quote) end += 1;
      return end;
    } else {
      i += 1;
    }
  }
  return text.length;
}

const PACKAGES_HEADER = /^\s*\[\[\s*(?:packages|"packages"|'packages')\s*\]\]\s*(?:#.*)?$/;

function isTableHeader(code: CodeLine): boolean {
  return code.depth === 0 && /^\s*\[/.test(code.text);
}

/** The line of each `[[packages]]` header, one per entry. */
export function packageLines(layout: CodeLine[], count: number): number[] {
  const headers = layout.filter((code) => isTableHeader(code) && PACKAGES_HEADER.test(code.text)).map((code) => code.line);
  if (headers.length === count) return headers;
  // `packages = [{ … }, …]`, an inline array: TOML allows it, no locker writes it. Every entry points at the key.
  const key = topLevelKeyLine(layout, 'packages') ?? 1;
  return Array.from({ length: count }, () => key);
}

/** The line of a key of the top-level table (before the first table header), or null. */
export function topLevelKeyLine(layout: CodeLine[], key: string): number | null {
  const escaped = key.replace(/[.*+?^${}()|[\]\\-]/g, '\\$&');
  const pattern = new RegExp(`^\\s*(?:${escaped}|"${escaped}"|'${escaped}')\\s*=`);
  for (const code of layout) {
    if (isTableHeader(code)) return null;
    if (code.depth === 0 && pattern.test(code.text)) return code.line;
  }
  return null;
}
