import { describe, expect, it } from 'vitest';

import { layoutOf, packageLines, topLevelKeyLine } from './toml-lines.js';

describe('layoutOf', () => {
  it('lists the lines that start outside strings, with the bracket depth at their start', () => {
    const text = ['a = [', '  1, # ]', `  """`, '[x]', `""",`, ']', "b = '''", "'''", '[t]'].join('\n');
    expect(layoutOf(text)).toEqual([
      { line: 1, text: 'a = [', depth: 0 },
      { line: 2, text: '  1, # ]', depth: 1 },
      { line: 3, text: '  """', depth: 1 },
      { line: 6, text: ']', depth: 1 },
      { line: 7, text: "b = '''", depth: 0 },
      { line: 9, text: '[t]', depth: 0 },
    ]);
  });
});

describe('topLevelKeyLine', () => {
  const layout = layoutOf(['# head', `"lock-version" = "1.0"`, 'env = [', '  { packages = 1 },', ']', 'packages = []', '[tool]', 'later = 1'].join('\n'));

  it('finds a bare or quoted key of the top-level table, not one nested in a value', () => {
    expect(topLevelKeyLine(layout, 'lock-version')).toBe(2);
    expect(topLevelKeyLine(layout, 'packages')).toBe(6);
  });

  it('stops at the first table header, and takes the key literally', () => {
    expect(topLevelKeyLine(layout, 'later')).toBeNull();
    expect(topLevelKeyLine(layout, 'lock.version')).toBeNull();
  });
});

describe('packageLines', () => {
  it('gives each [[packages]] header, or the packages key for every entry when the headers do not match the count', () => {
    const layout = layoutOf(['lock-version = "1.0"', '[[packages]]', 'name = "a"', "[['packages']]", 'name = "b"'].join('\n'));
    expect(packageLines(layout, 2)).toEqual([2, 4]);
    expect(packageLines(layoutOf('x = 1\npackages = [{ name = "a" }, { name = "b" }]\n'), 2)).toEqual([2, 2]);
    expect(packageLines(layoutOf('x = 1\n'), 1)).toEqual([1]);
  });
});
