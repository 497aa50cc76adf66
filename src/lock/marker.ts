/*
 * PEP 508 environment markers, read by recursive descent into a small tree:
 *
 *   marker  = and ('or' and)*
 *   and     = atom ('and' atom)*
 *   atom    = '(' marker ')' | value op value
 *   value   = VARIABLE | 'string' | "string"
 *   op      = < <= != == >= > ~= === | in | not in
 *
 * The requirements parsers use the tree to check a marker and to compare two (canonicalMarker);
 * the pylock reader walks it to decide PEP 751's extras and dependency groups (marker-select.ts).
 * Evaluating the rest of a marker is pip's job.
 *
 * A marker is one line of printable text: pip reads the requirements file it is written into line
 * by line, splitting at every line break Python knows (`str.splitlines`: \n, \r, \v, \f, \x1c-\x1e,
 * \x85, U+2028, U+2029), so a marker that held one would end its requirement early and make the
 * rest a line of its own (an option such as `--index-url`). Control characters and those line
 * breaks are refused anywhere in a marker; a tab only separates tokens. What is written where pip
 * reads it is the canonical rendering of the tree (renderMarker), never the text as given.
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

/** One side of a comparison: a marker variable, or a quoted string (`value` is its text without the quotes). */
export type MarkerValue = { kind: 'variable'; name: string } | { kind: 'string'; value: string };

/** `value op value`. `start` and `end` are its span in the marker text, `text` what the span holds. */
export interface MarkerCompare {
  kind: 'compare';
  left: MarkerValue;
  /** `<`, `==`, …, `in` or `not in`. */
  op: string;
  right: MarkerValue;
  start: number;
  end: number;
  text: string;
}

export type MarkerNode =
  | MarkerCompare
  /** `( marker )`, kept so that the canonical form keeps the author's parentheses. */
  | { kind: 'group'; item: MarkerNode }
  /** Two or more items, in the order they are written. */
  | { kind: 'and' | 'or'; items: MarkerNode[] };

interface Token {
  kind: 'string' | 'word' | 'op' | 'paren';
  /** A string's text without its quotes; otherwise the token as written. */
  value: string;
  start: number;
  end: number;
}

// Sticky (`y`) patterns match exactly at `lastIndex`, so the tokenizer never copies the rest of the text.
const OPERATOR = /===|==|!=|<=|>=|~=|<|>/y;
const WORD = /[A-Za-z_][A-Za-z0-9_.]*/y;

function matchAt(pattern: RegExp, text: string, index: number): string | undefined {
  pattern.lastIndex = index;
  return pattern.exec(text)?.[0];
}

/** C0 controls but tab, DEL, C1 controls, and the Unicode line and paragraph separators. */
const NOT_ONE_LINE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/u;

/** `text` is the whole marker (a tab may separate tokens) or a quoted string's text (nothing may be in it). */
function refuseControl(marker: string, text: string, quoted: boolean): void {
  const found = NOT_ONE_LINE.exec(text) ?? (quoted ? /\t/.exec(text) : null);
  if (!found) return;
  const what = /[\n\r\v\f\u001c-\u001e\u0085\u2028\u2029]/u.test(found[0]) ? 'line break' : 'control character';
  invalid(
    `${what} ${show(found[0])}${quoted ? ' in a quoted string' : ''} in the environment marker '${show(marker)}'; a marker is one line of printable text`,
  );
}

function tokenize(marker: string): Token[] {
  refuseControl(marker, marker, false);
  const tokens: Token[] = [];
  let i = 0;
  while (i < marker.length) {
    const ch = marker.charAt(i);
    if (ch === ' ' || ch === '\t') {
      i += 1;
    } else if (ch === '(' || ch === ')') {
      tokens.push({ kind: 'paren', value: ch, start: i, end: i + 1 });
      i += 1;
    } else if (ch === '"' || ch === "'") {
      const end = marker.indexOf(ch, i + 1);
      if (end < 0) invalid(`unterminated string in the environment marker '${show(marker)}'`);
      // A string is written out as it is: not even a tab in it.
      refuseControl(marker, marker.slice(i + 1, end), true);
      tokens.push({ kind: 'string', value: marker.slice(i + 1, end), start: i, end: end + 1 });
      i = end + 1;
    } else {
      const operator = matchAt(OPERATOR, marker, i);
      const word = matchAt(WORD, marker, i);
      const text = operator ?? word ?? invalid(`unexpected '${show(ch)}' in the environment marker '${show(marker)}'`);
      tokens.push({ kind: operator ? 'op' : 'word', value: text, start: i, end: i + text.length });
      i += text.length;
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

  parse(): MarkerNode {
    const node = this.parseOr(0);
    const extra = this.tokens[this.pos];
    if (extra) this.fail(`unexpected '${show(extra.value)}'`);
    return node;
  }

  private parseOr(depth: number): MarkerNode {
    return this.list('or', () => this.parseAnd(depth));
  }

  private parseAnd(depth: number): MarkerNode {
    return this.list('and', () => this.parseAtom(depth));
  }

  /** `item (keyword item)*`: the one item itself, or a node that lists them all. */
  private list(keyword: 'and' | 'or', item: () => MarkerNode): MarkerNode {
    const first = item();
    const items = [first];
    while (this.takeWord(keyword)) items.push(item());
    return items.length === 1 ? first : { kind: keyword, items };
  }

  private parseAtom(depth: number): MarkerNode {
    const token = this.tokens[this.pos];
    if (token?.kind === 'paren' && token.value === '(') {
      if (depth >= MAX_DEPTH) this.fail('too deeply nested');
      this.pos += 1;
      const item = this.parseOr(depth + 1);
      const close = this.tokens[this.pos];
      if (close?.kind !== 'paren' || close.value !== ')') this.fail("missing ')'");
      this.pos += 1;
      return { kind: 'group', item };
    }
    const left = this.parseValue();
    const op = this.parseOperator();
    const right = this.parseValue();
    return {
      kind: 'compare',
      left: valueOf(left),
      op,
      right: valueOf(right),
      start: left.start,
      end: right.end,
      text: this.marker.slice(left.start, right.end),
    };
  }

  private parseValue(): Token {
    const token = this.tokens[this.pos];
    if (token?.kind === 'string' || (token?.kind === 'word' && VARIABLES.has(token.value))) {
      this.pos += 1;
      return token;
    }
    if (token?.kind === 'word') this.fail(`unknown marker variable '${show(token.value)}'`);
    this.fail(token ? `expected a variable or a quoted string, found '${show(token.value)}'` : 'it ends too early');
  }

  private parseOperator(): string {
    const token = this.tokens[this.pos];
    if (token?.kind === 'op') {
      this.pos += 1;
      return token.value;
    }
    if (this.takeWord('in')) return 'in';
    if (this.takeWord('not')) {
      if (!this.takeWord('in')) this.fail("expected 'in' after 'not'");
      return 'not in';
    }
    this.fail(token ? `expected a comparison, found '${show(token.value)}'` : 'it ends too early');
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

/** Only called on a token parseValue accepted: a string or a known variable. */
function valueOf(token: Token): MarkerValue {
  return token.kind === 'string' ? { kind: 'string', value: token.value } : { kind: 'variable', name: token.value };
}

/** Reads a PEP 508 marker into its tree; a marker that is not one is a `lock.invalid` LineProblem. */
export function parseMarker(marker: string): MarkerNode {
  return new MarkerParser(tokenize(marker), marker).parse();
}

/**
 * Checks a PEP 508 marker and returns a canonical form of it (single spaces, double quotes where
 * possible) so that two spellings of the same marker compare equal. This is also the only form in
 * which a marker is written where pip reads it: it is rendered from the tree, so nothing but the
 * tokens the parser accepted (and no control character: see above) can reach the file.
 */
export function canonicalMarker(marker: string): string {
  return renderMarker(parseMarker(marker));
}

/** Every token of the marker as written, a space between two; parentheses are kept, so `(a)` and `a` stay apart. */
export function renderMarker(node: MarkerNode): string {
  switch (node.kind) {
    case 'compare':
      return renderCompare(node);
    case 'group':
      return `( ${renderMarker(node.item)} )`;
    default:
      return node.items.map(renderMarker).join(` ${node.kind} `);
  }
}

/** One comparison, canonical: `left op right`, single spaces. */
export function renderCompare(node: Pick<MarkerCompare, 'left' | 'op' | 'right'>): string {
  return `${canonicalValue(node.left)} ${node.op} ${canonicalValue(node.right)}`;
}

function canonicalValue(value: MarkerValue): string {
  if (value.kind === 'variable') return value.name;
  return value.value.includes('"') ? `'${value.value}'` : `"${value.value}"`;
}
