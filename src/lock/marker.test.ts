import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { canonicalMarker, parseMarker, type MarkerNode } from './marker.js';
import { LineProblem } from './problem.js';

function problemOf(marker: string): { code: string; message: string } {
  try {
    parseMarker(marker);
  } catch (error: unknown) {
    if (error instanceof LineProblem) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected parseMarker to throw');
}

/** Every comparison in the tree, left to right. */
function compares(node: MarkerNode): Array<Extract<MarkerNode, { kind: 'compare' }>> {
  if (node.kind === 'compare') return [node];
  if (node.kind === 'group') return compares(node.item);
  return node.items.flatMap(compares);
}

describe('parseMarker', () => {
  it('reads a comparison with its operands, operator and source span', () => {
    expect(parseMarker(`  python_version<'3.12'  `)).toEqual({
      kind: 'compare',
      left: { kind: 'variable', name: 'python_version' },
      op: '<',
      right: { kind: 'string', value: '3.12' },
      start: 2,
      end: 23,
      text: `python_version<'3.12'`,
    });
  });

  it('binds and tighter than or, keeps parentheses as groups, and reads in and not in', () => {
    const marker = `os_name == "nt" or ("dev" in dependency_groups or platform_machine not in 'arm64') and extra == "x"`;
    const tree = parseMarker(marker);
    const compare = (text: string): MarkerNode => {
      const node = compares(tree).find((c) => c.text === text);
      if (!node) throw new Error(`no comparison ${text}`);
      return node;
    };
    expect(tree).toEqual({
      kind: 'or',
      items: [
        compare('os_name == "nt"'),
        {
          kind: 'and',
          items: [
            { kind: 'group', item: { kind: 'or', items: [compare('"dev" in dependency_groups'), compare(`platform_machine not in 'arm64'`)] } },
            compare('extra == "x"'),
          ],
        },
      ],
    });
    expect(compares(tree).map(({ op, start, end }) => [op, start, end])).toEqual([
      ['==', 0, 15],
      ['in', 20, 46],
      ['not in', 50, 81],
      ['==', 87, 99],
    ]);
    expect(compares(tree).every((c) => marker.slice(c.start, c.end) === c.text)).toBe(true);
  });

  it('keeps a chain of one keyword as one list, and a comparison alone as itself', () => {
    const tree = parseMarker('os_name == "a" and os_name == "b" and os_name == "c"');
    expect(tree.kind).toBe('and');
    expect(tree.kind === 'and' && tree.items.map((item) => item.kind)).toEqual(['compare', 'compare', 'compare']);
    const inner = parseMarker('os.name == "posix"');
    expect(parseMarker('((os.name == "posix"))')).toEqual({ kind: 'group', item: { kind: 'group', item: { ...inner, start: 2, end: 20 } } });
  });

  it.each([
    ['python_version <', "invalid environment marker 'python_version <': it ends too early"],
    ['python_verison < "3"', `invalid environment marker 'python_verison < "3"': unknown marker variable 'python_verison'`],
    ['os_name == "nt', `unterminated string in the environment marker 'os_name == "nt'`],
    ['(os_name == "nt"', `invalid environment marker '(os_name == "nt"': missing ')'`],
    ['os_name == "nt")', `invalid environment marker 'os_name == "nt")': unexpected ')'`],
    ['os_name not "nt"', `invalid environment marker 'os_name not "nt"': expected 'in' after 'not'`],
    ['os_name os_name', `invalid environment marker 'os_name os_name': expected a comparison, found 'os_name'`],
    ['== "nt"', `invalid environment marker '== "nt"': expected a variable or a quoted string, found '=='`],
    ['os_name\u202e == "x"', `unexpected '\\u{202e}' in the environment marker 'os_name\\u{202e} == "x"'`],
    // One line of printable text: pip splits the file it is written into at every line break.
    [
      'os_name == "posix"\nand os_name == "nt"',
      `line break \\x0a in the environment marker 'os_name == "posix"\\x0aand os_name == "nt"'; a marker is one line of printable text`,
    ],
    ['os_name == "a\nb"', `line break \\x0a in the environment marker 'os_name == "a\\x0ab"'; a marker is one line of printable text`],
    ['os_name == "a\u2029b"', `line break \\u{2029} in the environment marker 'os_name == "a\\u{2029}b"'; a marker is one line of printable text`],
    ['os_name == "\u001b[31mx"', `control character \\x1b in the environment marker 'os_name == "\\x1b[31mx"'; a marker is one line of printable text`],
    ['os_name == "\u0000"', `control character \\x00 in the environment marker 'os_name == "\\x00"'; a marker is one line of printable text`],
    [
      'os_name == "a\tb"',
      `control character \\x09 in a quoted string in the environment marker 'os_name == "a\\x09b"'; a marker is one line of printable text`,
    ],
  ])('refuses %j with the requirements parser message', (marker, message) => {
    expect(problemOf(marker)).toEqual({ code: 'lock.invalid', message });
  });

  it('reports an unterminated string before a syntax error earlier in the marker', () => {
    expect(problemOf(`os_name ( == "x`).message).toBe(`unterminated string in the environment marker 'os_name ( == "x'`);
  });

  it('accepts 32 levels of parentheses and refuses 33', () => {
    const nested = (depth: number): string => `${'('.repeat(depth)}os_name == "nt"${')'.repeat(depth)}`;
    let node = parseMarker(nested(32));
    for (let depth = 0; depth < 32; depth += 1) {
      expect(node.kind).toBe('group');
      if (node.kind === 'group') node = node.item;
    }
    expect(node).toMatchObject({ kind: 'compare', text: 'os_name == "nt"' });
    expect(problemOf(nested(33)).message).toBe(`invalid environment marker '${nested(33)}': too deeply nested`);
    // A hostile depth is refused by the limit, not by the stack.
    expect(problemOf(nested(100_000)).message).toMatch(/: too deeply nested$/);
  });
});

describe('canonicalMarker', () => {
  it('is every token of the tree with single spaces, double quotes where the string allows', () => {
    expect(canonicalMarker(`python_version<'3.12'and(os_name=='posix'or platform_machine not   in "arm64")`)).toBe(
      `python_version < "3.12" and ( os_name == "posix" or platform_machine not in "arm64" )`,
    );
    expect(canonicalMarker(`os_name == 'a"b'`)).toBe(`os_name == 'a"b'`);
  });

  it('renders a marker spelled with odd spacing, tabs and single quotes in one form, which parses to the same tree', () => {
    const odd = `  python_version\t<'3.12'   and(os_name=='posix'or\tplatform_machine not   in "arm64")  `;
    const canonical = `python_version < "3.12" and ( os_name == "posix" or platform_machine not in "arm64" )`;
    expect(canonicalMarker(odd)).toBe(canonical);
    const strip = (node: MarkerNode): unknown =>
      node.kind === 'compare' ? [node.left, node.op, node.right] : node.kind === 'group' ? ['group', strip(node.item)] : [node.kind, node.items.map(strip)];
    expect(strip(parseMarker(canonical))).toEqual(strip(parseMarker(odd)));
  });

  it('tells apart spellings that differ in parentheses, as pip compares them', () => {
    expect(canonicalMarker('(os_name == "nt")')).toBe('( os_name == "nt" )');
    expect(canonicalMarker('os_name == "nt"')).toBe('os_name == "nt"');
    expect(canonicalMarker('os_name == "a" and (os_name == "b" and os_name == "c")')).toBe('os_name == "a" and ( os_name == "b" and os_name == "c" )');
  });

  it('is a fixed point, and every comparison span holds its text, on markers built from parts', () => {
    const value = fc.constantFrom('os_name', 'extras', 'python_version', '"dev"', "'3.9'", `'a"b'`);
    const op = fc.constantFrom('==', '<', 'in', 'not in', '~=');
    const gap = fc.constantFrom('', ' ', '\t ');
    const compare = fc.tuple(value, gap, op, gap, value).map(([a, g1, o, g2, b]) => `${a}${g1 || ' '}${o}${g2 || ' '}${b}`);
    const { marker } = fc.letrec<{ marker: string }>((tie) => ({
      marker: fc.oneof(
        { depthSize: 'small' },
        compare,
        tie('marker').map((m) => `(${m})`),
        fc.tuple(tie('marker'), fc.constantFrom(' and ', ' or ', '  or\t'), tie('marker')).map(([a, k, b]) => `${a}${k}${b}`),
      ),
    }));
    fc.assert(
      fc.property(marker, (text) => {
        const canonical = canonicalMarker(text);
        expect(canonicalMarker(canonical)).toBe(canonical);
        for (const c of compares(parseMarker(text))) expect(text.slice(c.start, c.end)).toBe(c.text);
      }),
      { numRuns: 500 },
    );
  });
});
