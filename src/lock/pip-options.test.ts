import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { combineFormatControl, noPipOptions, pipOptionsOf, type FormatControl, type FormatControlStep } from './pip-options.js';

const only = (value: string): FormatControlStep => ({ option: 'only-binary', value });
const no = (value: string): FormatControlStep => ({ option: 'no-binary', value });

/** pip's FormatControl.get_allowed_formats, to state what a pair of sets means for one project. */
function allowedFormats(control: FormatControl, project: string): 'binary' | 'source' | 'either' {
  if (control.onlyBinary.includes(project)) return 'binary';
  if (control.noBinary.includes(project)) return 'source';
  if (control.onlyBinary.includes(':all:')) return 'binary';
  if (control.noBinary.includes(':all:')) return 'source';
  return 'either';
}

describe('combineFormatControl', () => {
  // Every expected pair was checked against pip 24.2's FormatControl.handle_mutual_excludes
  // (after dropping names that sit beside :all: in the same set; see pip-options.ts).
  const cases: [string, FormatControlStep[], FormatControl][] = [
    ['nothing', [], { onlyBinary: [], noBinary: [] }],
    ['a comma list, normalised and sorted', [only('zope.interface,Foo_Bar')], { onlyBinary: ['foo-bar', 'zope-interface'], noBinary: [] }],
    ['a name moved to --only-binary', [no('foo'), only('foo')], { onlyBinary: ['foo'], noBinary: [] }],
    ['a name moved to --no-binary', [only('foo'), no('foo')], { onlyBinary: [], noBinary: ['foo'] }],
    ['a name moved under another spelling', [no('Foo.Bar'), only('foo_bar')], { onlyBinary: ['foo-bar'], noBinary: [] }],
    ['only the shared names moved', [no('a,b'), only('b,c')], { onlyBinary: ['b', 'c'], noBinary: ['a'] }],
    ['a name excepted from --only-binary :all:', [only(':all:'), no('foo')], { onlyBinary: [':all:'], noBinary: ['foo'] }],
    ['--only-binary :all: cancelling an earlier --no-binary', [no('foo'), only(':all:')], { onlyBinary: [':all:'], noBinary: [] }],
    ['--no-binary :all: cancelling an earlier --only-binary', [only('foo'), no(':all:')], { onlyBinary: [], noBinary: [':all:'] }],
    [':none: clearing its own set', [only(':all:'), only(':none:')], { onlyBinary: [], noBinary: [] }],
    [':none: leaving the other set alone', [no(':all:'), only(':none:')], { onlyBinary: [], noBinary: [':all:'] }],
    ['a name before :all: in one value', [only('foo,:all:')], { onlyBinary: [':all:'], noBinary: [] }],
    ['a name after :all: in one value', [only(':all:,foo')], { onlyBinary: [':all:'], noBinary: [] }],
    ['a name after :all: and :none: in one value', [no('bar'), only(':all:,:none:,foo')], { onlyBinary: ['foo'], noBinary: [] }],
    [':none: in the middle of a value', [only('foo,:none:,bar')], { onlyBinary: ['bar'], noBinary: [] }],
    [':none: before :all: in one value', [only(':none:,:all:')], { onlyBinary: [':all:'], noBinary: [] }],
    ['a second :all: without a :none: after it', [only(':all:,:none:,:all:,baz')], { onlyBinary: [':all:'], noBinary: [] }],
    ['a second :all: with a :none: after it', [only(':all:,:none:,:all:,:none:,baz')], { onlyBinary: ['baz'], noBinary: [] }],
    ['a name added beside :all:', [only(':all:'), only('foo')], { onlyBinary: [':all:'], noBinary: [] }],
  ];

  it.each(cases)('combines %s as pip does', (_what, steps, expected) => {
    expect(combineFormatControl(steps)).toEqual(expected);
  });

  const item = fc.constantFrom(':all:', ':none:', 'foo', 'Foo_Bar', 'foo.bar', 'baz', 'qux');
  const step = fc.record({
    option: fc.constantFrom<FormatControlStep['option']>('only-binary', 'no-binary'),
    value: fc.array(item, { minLength: 1, maxLength: 5 }).map((items) => items.join(',')),
  });
  const steps = fc.array(step, { maxLength: 8 });

  it('keeps the sets in their documented form', () => {
    fc.assert(
      fc.property(steps, (given) => {
        const { onlyBinary, noBinary } = combineFormatControl(given);
        for (const set of [onlyBinary, noBinary]) {
          expect(set).not.toContain(':none:');
          if (set.includes(':all:')) expect(set).toEqual([':all:']);
          expect(set).toEqual([...set].sort());
          expect(new Set(set).size).toBe(set.length);
        }
        expect(onlyBinary.filter((name) => noBinary.includes(name))).toEqual([]);
      }),
    );
  });

  it('lets a later option decide a project it names, whatever came before', () => {
    fc.assert(
      fc.property(steps, fc.constantFrom<FormatControlStep['option']>('only-binary', 'no-binary'), (given, option) => {
        const control = combineFormatControl([...given, { option, value: 'Foo_Bar' }]);
        expect(allowedFormats(control, 'foo-bar')).toBe(option === 'only-binary' ? 'binary' : 'source');
      }),
    );
  });
});

describe('pipOptionsOf', () => {
  it('gives no options for an empty list, in a fresh object each time', () => {
    expect(pipOptionsOf([])).toEqual({ pre: false, preferBinary: false, onlyBinary: [], noBinary: [], given: [] });
    const first = noPipOptions();
    first.onlyBinary.push('foo');
    expect(noPipOptions().onlyBinary).toEqual([]);
  });

  it('sets the flags, combines the formats in order and keeps what was given', () => {
    const given = [
      { option: 'no-binary', value: 'foo,bar', line: 2 },
      { option: 'pre', line: 3 },
      { option: 'only-binary', value: 'Foo', line: 5 },
    ] as const;
    expect(pipOptionsOf(given)).toEqual({
      pre: true,
      preferBinary: false,
      onlyBinary: ['foo'],
      noBinary: ['bar'],
      given,
    });
    expect(pipOptionsOf([{ option: 'prefer-binary', line: 1 }])).toMatchObject({ pre: false, preferBinary: true });
  });
});
