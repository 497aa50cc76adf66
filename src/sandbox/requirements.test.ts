import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { parseLock } from '../lock/parse.js';
import { combineFormatControl, pipOptionsOf, type FormatControlStep } from '../lock/pip-options.js';
import type { PipOptionLine } from '../lock/types.js';
import { conflictsWithOnlyBinaryPolicy, pipArgsFor, renderRequirements } from './requirements.js';

const hashA = 'a'.repeat(64);
const hashB = 'b'.repeat(64);

const optionsOf = (text: string) => parseLock(text, 'lock.txt').pipOptions;

/** Reads pip arguments back the way pip's option parser would, for the options pipArgsFor writes. */
function readArgs(args: string[]): { pre: boolean; preferBinary: boolean; steps: FormatControlStep[] } {
  const read = { pre: false, preferBinary: false, steps: [] as FormatControlStep[] };
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i];
    if (arg === '--pre') read.pre = true;
    else if (arg === '--prefer-binary') read.preferBinary = true;
    else if (arg === '--only-binary' || arg === '--no-binary') {
      i += 1;
      const value = args[i];
      if (value === undefined || value.startsWith('-')) throw new Error(`${arg} without a value in ${args.join(' ')}`);
      read.steps.push({ option: arg === '--only-binary' ? 'only-binary' : 'no-binary', value });
    } else throw new Error(`unexpected argument ${String(arg)}`);
  }
  return read;
}

describe('renderRequirements', () => {
  it('keeps extras, markers and every hash, and drops index options', () => {
    const plan = parseLock(
      [
        '--index-url https://example.invalid/simple',
        `Foo_Bar[socks,security]==1.0 ; python_version >= "3.8" --hash=sha256:${hashA} --hash=sha256:${hashB}`,
        '',
      ].join('\n'),
      'lock.txt',
    );
    const text = renderRequirements(plan);
    expect(text).not.toContain('index-url');
    expect(text).toBe(`foo-bar[socks,security]==1.0 ; python_version >= "3.8" \\\n    --hash=sha256:${hashA} \\\n    --hash=sha256:${hashB}\n`);
    // What we render must parse back to the same requirements.
    expect(parseLock(text, 'rendered').requirements.map((r) => [r.name, r.version, r.marker, r.sha256])).toEqual(
      plan.requirements.map((r) => [r.name, r.version, r.marker, r.sha256]),
    );
  });

  it('writes each marker as rendered from its parse: odd spacing made canonical, a line break or control character refused', () => {
    const plan = parseLock(`foo==1.0 ;python_version>='3.8'\tand  os_name=="posix" --hash=sha256:${hashA}\n`, 'lock.txt');
    expect(renderRequirements(plan)).toBe(`foo==1.0 ; python_version >= "3.8" and os_name == "posix" \\\n    --hash=sha256:${hashA}\n`);
    // A plan built by hand, not by a parser: its marker is still parsed again, never copied.
    const req = { ...plan.requirements[0]!, marker: `os_name == "posix"\n--index-url http://evil.invalid/simple\nor os_name == "nt"` };
    expect(() => renderRequirements({ ...plan, requirements: [req] })).toThrow(/line break \\x0a in the environment marker/);
    expect(() => renderRequirements({ ...plan, requirements: [{ ...req, marker: 'os_name == "\u001b]0;x\u0007"' }] })).toThrow(/control character \\x1b/);
  });

  it('leaves the pip options out: they go to pip as arguments, once', () => {
    const requirement = `foo==1.0 --hash=sha256:${hashA}`;
    const plan = parseLock(['--pre --prefer-binary', '--only-binary=:all:', requirement, '--no-binary foo', '--require-hashes', ''].join('\n'), 'lock.txt');
    expect(plan.pipOptions).toMatchObject({ pre: true, preferBinary: true, onlyBinary: [':all:'], noBinary: ['foo'] });
    expect(renderRequirements(plan)).toBe(`foo==1.0 \\\n    --hash=sha256:${hashA}\n`);
    expect(parseLock(renderRequirements(plan), 'rendered').pipOptions).toEqual(parseLock(requirement, 'lock.txt').pipOptions);
  });
});

describe('pipArgsFor', () => {
  it.each<[string, string, string[]]>([
    ['no options', `foo==1.0 --hash=sha256:${hashA}`, []],
    ['the flags', '--prefer-binary\n--pre\n--pre', ['--pre', '--prefer-binary']],
    ['a comma list, normalised', '--only-binary Foo_Bar,baz', ['--only-binary', 'baz,foo-bar']],
    ['--only-binary :all: with an exception', '--only-binary :all:\n--no-binary foo', ['--only-binary', ':all:', '--no-binary', 'foo']],
    ['--no-binary :all: with an exception, :all: first', '--no-binary :all:\n--only-binary foo', ['--no-binary', ':all:', '--only-binary', 'foo']],
    ['names in both sets', '--no-binary a,b\n--only-binary b,c', ['--only-binary', 'b,c', '--no-binary', 'a']],
    ['options that cancel out', '--only-binary :all:\n--only-binary :none:\n--no-binary x\n--only-binary x\n--only-binary :none:', []],
  ])('renders %s', (_what, text, args) => {
    expect(pipArgsFor(optionsOf(text))).toEqual(args);
  });

  const item = fc.constantFrom(':all:', ':none:', 'foo', 'Foo_Bar', 'baz', 'qux');
  const given = fc.array(
    fc.oneof(
      fc.record({ option: fc.constantFrom('pre' as const, 'prefer-binary' as const), line: fc.nat() }),
      fc.record({
        option: fc.constantFrom('only-binary' as const, 'no-binary' as const),
        value: fc.array(item, { minLength: 1, maxLength: 4 }).map((items) => items.join(',')),
        line: fc.nat(),
      }),
    ),
    { maxLength: 8 },
  ) satisfies fc.Arbitrary<PipOptionLine[]>;

  it('gives pip, from its empty defaults, exactly the options of the plan', () => {
    fc.assert(
      fc.property(given, (lines) => {
        const options = pipOptionsOf(lines);
        const read = readArgs(pipArgsFor(options));
        expect(read.pre).toBe(options.pre);
        expect(read.preferBinary).toBe(options.preferBinary);
        expect(combineFormatControl(read.steps)).toEqual({ onlyBinary: options.onlyBinary, noBinary: options.noBinary });
      }),
    );
  });

  it("after a policy's --only-binary :all:, leaves every project binary-only unless there is a conflict", () => {
    fc.assert(
      fc.property(given, (lines) => {
        const options = pipOptionsOf(lines);
        const withPolicy = combineFormatControl([{ option: 'only-binary', value: ':all:' }, ...readArgs(pipArgsFor(options)).steps]);
        if (conflictsWithOnlyBinaryPolicy(options) === null) {
          expect(withPolicy).toEqual({ onlyBinary: [':all:'], noBinary: [] });
        } else {
          expect(withPolicy.noBinary).not.toEqual([]);
        }
      }),
    );
  });
});

describe('conflictsWithOnlyBinaryPolicy', () => {
  const tail = 'from source, but the policy allows wheels only (onlyBinary); remove --no-binary from the lockfile or use a policy without onlyBinary';

  it.each([
    ['no options', ''],
    ['only --only-binary', '--only-binary foo\n--only-binary :all:'],
    ['--no-binary :none:', '--no-binary :none:'],
    ['a --no-binary name moved back', '--no-binary foo\n--only-binary Foo'],
    ['a --no-binary cancelled by --only-binary :all:', '--no-binary foo,bar\n--only-binary :all:'],
    ['a --no-binary cleared by :none:', '--no-binary :all:\n--no-binary :none:'],
  ])('finds none with %s', (_what, text) => {
    expect(conflictsWithOnlyBinaryPolicy(optionsOf(text))).toBeNull();
  });

  it.each([
    ['names', '--pre\n--no-binary Foo_Bar,baz', `the lockfile's --no-binary (line 2) asks pip to build baz, foo-bar ${tail}`],
    ['names from two lines', '--no-binary a\n--no-binary=b', `the lockfile's --no-binary (lines 1, 2) asks pip to build a, b ${tail}`],
    [
      'only the lines still in force',
      '--no-binary foo\n--only-binary foo\n--no-binary bar',
      `the lockfile's --no-binary (line 3) asks pip to build bar ${tail}`,
    ],
    ['every project', '--no-binary foo\n--no-binary :all:', `the lockfile's --no-binary (line 2) asks pip to build every project ${tail}`],
    ['an exception to --only-binary :all:', '--only-binary :all:\n--no-binary foo', `the lockfile's --no-binary (line 2) asks pip to build foo ${tail}`],
  ])('explains %s', (_what, text, reason) => {
    expect(conflictsWithOnlyBinaryPolicy(optionsOf(text))).toBe(reason);
  });
});
