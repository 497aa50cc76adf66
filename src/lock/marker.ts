/*
 * A small recursive-descent check of PEP 508 environment markers:
 *
 *   marker  = and ('or' and)*
 *   and     = atom ('and' atom)*
 *   atom    = '(' marker ')' | value op value
 *   value   = VARIABLE | 'string' | "string"
 *   op      = < <= != == >= > ~= === | in | not in
 *
 * It only checks syntax; evaluating the marker is pip's job.
 */
import { invalid, show } from './problem.js';

const VARIABLES = new Set([
  'python_version',
  'python_full_version',
  'os_name',
  'sys_platform',
  'platform_release',
  'platform_system',
  'platform_version',
  'platform_machine',
  'platform_python_implementation',
  'implementation_name',
  'implementation_version',
  'extra',
  // PEP 751
  'extras',
  'dependency_groups',
  // Legacy dotted spellings that packaging still accepts.
  'os.name',
  'sys.platform',
  'platform.version',
  'platform.machine',
  'platform.python_implementation',
  'python_implementation',
]);

/** Deeper nesting than this is not a real marker; the limit keeps hostile input off the stack. */
const MAX_DEPTH = 32;

type Token = { kind: 'string'; value: string } | { kind: 'word'; value: string } | { kind: 'op'; value: string } | { kind: 'paren'; value: '(' | ')' };

// Sticky (`y`) patterns match exactly at `lastIndex`, so the tokenizer never copies the rest of the text.
const OPERATOR = /===|==|!=|<=|>=|~=|<|>/y;
const WORD = /[A-Za-z_][A-Za-z0-9_.]*/y;

function matchAt(pattern: RegExp, text: string, index: number): string | undefined {
  pattern.lastIndex = index;
  return pattern.exec(text)?.[0];
}

function tokenize(marker: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < marker.length) {
    const ch = marker.charAt(i);
    if (/\s/.test(ch)) {
      i += 1;
    } else if (ch === '(' || ch === ')') {
      tokens.push({ kind: 'paren', value: ch });
      i += 1;
    } else if (ch === '"' || ch === "'") {
      const end = marker.indexOf(ch, i + 1);
      if (end < 0) invalid(`unterminated string in the environment marker '${show(marker)}'`);
      tokens.push({ kind: 'string', value: marker.slice(i + 1, end) });
      i = end + 1;
    } else {
      const operator = matchAt(OPERATOR, marker, i);
      const word = matchAt(WORD, marker, i);
      if (operator) tokens.push({ kind: 'op', value: operator });
      else if (word) tokens.push({ kind: 'word', value: word });
      else invalid(`unexpected '${show(ch)}' in the environment marker '${show(marker)}'`);
      i += (operator ?? word ?? '').length;
    }
  }
  return tokens;
}

class MarkerParser {
  private pos = 0;

  constructor(
    private readonly tokens: Token[],
    private readonly marker: string,
  ) {}

  parse(): void {
    this.parseOr(0);
    const extra = this.tokens[this.pos];
    if (extra) this.fail(`unexpected '${show(extra.value)}'`);
  }

  private parseOr(depth: number): void {
    this.parseAnd(depth);
    while (this.takeWord('or')) this.parseAnd(depth);
  }

  private parseAnd(depth: number): void {
    this.parseAtom(depth);
    while (this.takeWord('and')) this.parseAtom(depth);
  }

  private parseAtom(depth: number): void {
    const token = this.tokens[this.pos];
    if (token?.kind === 'paren' && token.value === '(') {
      if (depth >= MAX_DEPTH) this.fail('too deeply nested');
      this.pos += 1;
      this.parseOr(depth + 1);
      const close = this.tokens[this.pos];
      if (close?.kind !== 'paren' || close.value !== ')') this.fail("missing ')'");
      this.pos += 1;
      return;
    }
    this.parseValue();
    this.parseOperator();
    this.parseValue();
  }

  private parseValue(): void {
    const token = this.tokens[this.pos];
    if (token?.kind === 'string') {
      this.pos += 1;
    } else if (token?.kind === 'word' && VARIABLES.has(token.value)) {
      this.pos += 1;
    } else if (token?.kind === 'word') {
      this.fail(`unknown marker variable '${show(token.value)}'`);
    } else {
      this.fail(token ? `expected a variable or a quoted string, found '${show(token.value)}'` : 'it ends too early');
    }
  }

  private parseOperator(): void {
    const token = this.tokens[this.pos];
    if (token?.kind === 'op') {
      this.pos += 1;
    } else if (this.takeWord('in')) {
      return;
    } else if (this.takeWord('not')) {
      if (!this.takeWord('in')) this.fail("expected 'in' after 'not'");
    } else {
      this.fail(token ? `expected a comparison, found '${show(token.value)}'` : 'it ends too early');
    }
  }

  private takeWord(word: string): boolean {
    const token = this.tokens[this.pos];
    if (token?.kind !== 'word' || token.value !== word) return false;
    this.pos += 1;
    return true;
  }

  private fail(what: string): never {
    invalid(`invalid environment marker '${show(this.marker)}': ${what}`);
  }
}

/**
 * Checks a PEP 508 marker and returns a canonical form of it (single spaces, double quotes where
 * possible) so that two spellings of the same marker compare equal.
 */
export function canonicalMarker(marker: string): string {
  const tokens = tokenize(marker);
  new MarkerParser(tokens, marker).parse();
  return tokens
    .map((token) => {
      if (token.kind !== 'string') return token.value;
      return token.value.includes('"') ? `'${token.value}'` : `"${token.value}"`;
    })
    .join(' ');
}
