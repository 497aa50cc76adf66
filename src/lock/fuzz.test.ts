/*
 * Hostile and malformed lockfiles (issue 10, item 8): whatever the bytes, the lock readers return a
 * plan or throw an InputError (exit 2) with a lock code and a `file:line:` prefix, and they do it
 * quickly: no crash (RangeError from deep nesting, TypeError), no quadratic blow-up on long lines.
 *
 * Not covered here, on purpose: readLock on a FIFO (readFile waits for a writer forever) or on
 * /dev/zero (read without a size cap); such a property would hang the suite. See the report of
 * issue 10, item 8.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { exitCodeFor, InputError } from '../errors.js';
import { parseLock, readLock } from './parse.js';
import { parsePylock } from './pylock.js';
import { parseRequirementsIn } from './requirements-in.js';

/** Per-input bound: every input below is parsed in milliseconds; 10 s means something went quadratic. */
const PER_RUN_MS = 10_000;
/** Each property stops adding runs after this, so the unit suite stays fast. */
const BUDGET = { interruptAfterTimeLimit: 8000 } as const;
const LOCK_CODES = ['lock.unhashed', 'lock.unpinned', 'lock.invalid'];

/** Runs `parse`; it may return, or throw an InputError with a lock code, exit code 2 and a `file:line:` prefix. Never slowly. */
function returnsOrInputError(parse: () => unknown, file: string, codes: readonly string[] = LOCK_CODES): void {
  const started = performance.now();
  try {
    parse();
  } catch (error: unknown) {
    if (!(error instanceof InputError)) throw error;
    expect(exitCodeFor(error)).toBe(2);
    expect(codes).toContain(error.code);
    // `file:line: what`, or `file: what` for the file as a whole.
    expect(error.message.startsWith(file)).toBe(true);
    expect(error.message.slice(file.length)).toMatch(/^(?::\d+)?: /);
  } finally {
    expect(performance.now() - started).toBeLessThan(PER_RUN_MS);
  }
}

const A = 'a'.repeat(64);

/** Requirements-file pieces, weighted towards what breaks line handling: breaks, continuations, BOMs, NULs. */
const requirementsPiece = fc.oneof(
  fc.constantFrom(
    'foo==1.0',
    'Foo_Bar===2',
    'foo[x]==1.0',
    ' --hash=sha256:' + A,
    ' --hash sha256:' + A,
    ' ; python_version < "3.12"',
    ' # comment',
    '#',
    ' \\',
    '\\',
    '\n',
    '\r\n',
    '\r',
    '\u000b',
    '\u000c',
    '\u0085',
    '\u2028',
    '\u2029',
    '\u001c',
    '\ufeff',
    '\u0000',
    '\u202e',
    '-i https://x.invalid/simple',
    '--index-url=https://x.invalid/simple',
    '--extra-index-url https://y.invalid/simple',
    '-e .',
    '-r other.txt',
    '--pre',
    '--only-binary :all:',
    '--no-binary=foo',
    'foo @ https://x.invalid/foo.whl',
    'git+https://x.invalid/foo',
    './local',
    ' ',
    '\t',
    '"',
    "'",
    '(',
    ')',
    '[',
    ']',
    ',',
  ),
  fc.string({ unit: 'binary', maxLength: 12 }),
);

/** Deep continuations and huge lines, which a per-character regex or recursion would choke on. */
const requirementsHostile = fc.oneof(
  fc.nat({ max: 20_000 }).map((n) => `foo==1.0 ${'\\\n'.repeat(n)}--hash=sha256:${A}\n`),
  fc.nat({ max: 20_000 }).map((n) => `${'\\\r\n'.repeat(n)}`),
  fc.nat({ max: 200_000 }).map((n) => `foo==1.0${' '.repeat(n)}#${' '.repeat(n)}x\n`),
  fc.nat({ max: 200_000 }).map((n) => `${'a'.repeat(n)}==1.0 --hash=sha256:${A}`),
  fc.nat({ max: 100_000 }).map((n) => `foo==1.0 ${`--hash=sha256:${A} `.repeat(Math.ceil(n / 80))}`),
  fc.nat({ max: 100_000 }).map((n) => `foo==1.0 ; ${'('.repeat(n)}python_version < "3"${')'.repeat(n)} --hash=sha256:${A}`),
  fc.nat({ max: 100_000 }).map((n) => `foo[${'x,'.repeat(n)}]==1.0 --hash=sha256:${A}`),
  fc.nat({ max: 100_000 }).map((n) => '\ufeff'.repeat(n)),
  fc.nat({ max: 100_000 }).map((n) => '\u0000'.repeat(n)),
  fc.nat({ max: 100_000 }).map((n) => `\ufeff${'\r\n'.repeat(n)}foo==1.0 --hash=sha256:${A}\r\n`),
);

const requirementsText = fc.oneof(
  { weight: 3, arbitrary: fc.array(requirementsPiece, { maxLength: 60, size: 'medium' }).map((pieces) => pieces.join('')) },
  { weight: 1, arbitrary: requirementsHostile },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 500, size: 'medium' }) },
);

describe('parseLock on hostile text', () => {
  it('returns a plan or throws an InputError, quickly, on broken layouts, huge lines and deep continuations', () => {
    fc.assert(
      fc.property(requirementsText, (text) => returnsOrInputError(() => parseLock(text, 'fuzz.lock'), 'fuzz.lock')),
      { numRuns: 400, ...BUDGET },
    );
  });

  it('reads a requirement behind thousands of continuations, a BOM and CRLFs exactly', () => {
    const text = `\ufefffoo==1.0 ${'\\\r\n'.repeat(10_000)}--hash=sha256:${A}\r\n${'\\\r\n'.repeat(3)}bar==2 --hash=sha256:${A}\r\n`;
    const plan = parseLock(text, 'fuzz.lock');
    expect(plan.requirements.map((r) => [r.name, r.version, r.line])).toEqual([
      ['foo', '1.0', 1],
      ['bar', '2', 10_002],
    ]);
  });

  it('refuses a NUL byte with the line it is on', () => {
    expect(() => parseLock(`foo==1.0 --hash=sha256:${A}\nbar\u0000==1 --hash=sha256:${A}\n`, 'fuzz.lock')).toThrow(
      expect.objectContaining({ code: 'lock.invalid', message: expect.stringMatching(/^fuzz\.lock:2: control character \\x00 in /) }),
    );
  });
});

describe('parseRequirementsIn on hostile text', () => {
  it('returns the requirements or throws an InputError, quickly', () => {
    fc.assert(
      fc.property(requirementsText, (text) => returnsOrInputError(() => parseRequirementsIn(text, 'fuzz.in'), 'fuzz.in', ['lock.invalid'])),
      { numRuns: 400, ...BUDGET },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// pylock.toml

const REAL_PYLOCK = readFileSync(new URL('./testdata/pylock.uv.toml', import.meta.url), 'utf8');

const tomlPiece = fc.oneof(
  fc.constantFrom(
    'lock-version = "1.0"\n',
    'lock-version = "2.0"\n',
    'lock-version = 1\n',
    '[[packages]]\n',
    '[packages]\n',
    'name = "foo"\n',
    'name = "../x"\n',
    'version = "1.0"\n',
    'version = "not a version"\n',
    'marker = "python_version < \'3\'"\n',
    'marker = "extra == \'x\'"\n',
    `wheels = [{ url = "https://x.invalid/foo-1.0-py3-none-any.whl", hashes = { sha256 = "${A}" } }]\n`,
    `sdist = { name = "foo-1.0.tar.gz", hashes = { sha256 = "${A}" } }\n`,
    '[packages.sdist]\n',
    '[[packages.wheels]]\n',
    '[packages.vcs]\n',
    'hashes = {}\n',
    'default-groups = ["dev"]\n',
    '"""',
    "'''",
    '{',
    '}',
    '[',
    ']',
    '=',
    ',',
    '"',
    '\\u0000',
    '\\',
    '\n',
    '\r\n',
    '\ufeff',
    '\u0000',
    '# c\n',
    'size = -1\n',
    'size = 1e400\n',
    'upload-time = 2025-03-17T00:02:54Z\n',
  ),
  fc.string({ unit: 'binary', maxLength: 12 }),
);

/** Nesting far past smol-toml's maxDepth, long keys, many tables, and huge strings. */
const tomlHostile = fc.oneof(
  fc.nat({ max: 100_000 }).map((n) => `lock-version = "1.0"\na = ${'['.repeat(n)}${']'.repeat(n)}\npackages = []\n`),
  fc.nat({ max: 100_000 }).map((n) => `lock-version = "1.0"\na = ${'{ b = '.repeat(n)}1${' }'.repeat(n)}\npackages = []\n`),
  fc.nat({ max: 20_000 }).map((n) => `lock-version = "1.0"\n[${Array.from({ length: n }, () => 'a').join('.')}]\npackages = []\n`),
  fc.nat({ max: 20_000 }).map((n) => `lock-version = "1.0"\n${'[[packages]]\nname = "foo"\n'.repeat(n)}`),
  fc.nat({ max: 500_000 }).map((n) => `lock-version = "1.0"\npackages = []\ncreated-by = "${'x'.repeat(n)}"\n`),
  fc.nat({ max: 500_000 }).map((n) => `lock-version = "1.0"\npackages = []\ncreated-by = """${'\\\n'.repeat(n / 10)}"""\n`),
  fc.nat({ max: 100_000 }).map((n) => `lock-version = "1.0"\npackages = [${'{ name = "a" },'.repeat(n / 10)}]\n`),
);

/** The real uv export with a few bytes cut, inserted or moved. */
const mutatedPylock = fc
  .array(fc.record({ at: fc.nat(), cut: fc.nat({ max: 20 }), text: fc.oneof(tomlPiece, fc.constant('')) }), { minLength: 1, maxLength: 6 })
  .map((edits) => {
    let text = REAL_PYLOCK;
    for (const { at, cut, text: insert } of edits) {
      const i = at % (text.length + 1);
      text = text.slice(0, i) + insert + text.slice(i + cut);
    }
    return text;
  });

describe('parsePylock on hostile text', () => {
  it('returns a plan or throws an InputError, quickly, on broken TOML, deep nesting and mutated real locks', () => {
    const text = fc.oneof(
      { weight: 3, arbitrary: fc.array(tomlPiece, { maxLength: 40, size: 'medium' }).map((pieces) => pieces.join('')) },
      { weight: 2, arbitrary: mutatedPylock },
      { weight: 1, arbitrary: tomlHostile },
      { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 500, size: 'medium' }) },
    );
    fc.assert(
      fc.property(text, (t) => returnsOrInputError(() => parsePylock(t, 'pylock.toml'), 'pylock.toml')),
      { numRuns: 300, ...BUDGET },
    );
  });

  it('refuses nesting past its depth cap as invalid TOML, not a stack overflow', () => {
    expect(() => parsePylock(`lock-version = "1.0"\na = ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`, 'pylock.toml')).toThrow(
      expect.objectContaining({ code: 'lock.invalid', message: expect.stringMatching(/^pylock\.toml:2: not valid TOML \(/) }),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// readLock: bytes on disk (decoding, byte order marks, invalid UTF-8), for both formats

describe('readLock on random bytes', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'lock-fuzz-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const BOMS = [[], [0xef, 0xbb, 0xbf], [0xff, 0xfe], [0xfe, 0xff]];
  const encoded = (text: string, encoding: number): Buffer => {
    if (encoding === 2) return Buffer.from(text, 'utf16le');
    if (encoding === 3) return Buffer.from(text, 'utf16le').swap16();
    return Buffer.from(text, 'utf8');
  };
  const bytes = fc.oneof(
    fc.uint8Array({ maxLength: 2000, size: 'medium' }).map((b) => Buffer.from(b)),
    fc.tuple(fc.nat({ max: 3 }), fc.uint8Array({ maxLength: 500 })).map(([bom, b]) => Buffer.concat([Buffer.from(BOMS[bom] ?? []), Buffer.from(b)])),
    fc.tuple(fc.nat({ max: 3 }), requirementsText).map(([bom, text]) => Buffer.concat([Buffer.from(BOMS[bom] ?? []), encoded(text, bom)])),
    // Valid text with invalid UTF-8 spliced in.
    fc
      .tuple(requirementsText, fc.nat(), fc.constantFrom([0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80]))
      .map(([text, at, bad]) => {
        const b = Buffer.from(text, 'utf8');
        const i = at % (b.length + 1);
        return Buffer.concat([b.subarray(0, i), Buffer.from(bad), b.subarray(i)]);
      }),
  );

  it('returns a plan or throws an InputError for requirements files and pylock.toml files alike', async () => {
    let n = 0;
    await fc.assert(
      fc.asyncProperty(bytes, fc.boolean(), async (content, pylock) => {
        n += 1;
        const file = path.join(dir, pylock ? `pylock.f${n}.toml` : `requirements-${n}.lock`);
        await writeFile(file, content);
        const started = performance.now();
        try {
          await readLock(file);
        } catch (error: unknown) {
          if (!(error instanceof InputError)) throw error;
          expect(exitCodeFor(error)).toBe(2);
          expect(LOCK_CODES).toContain(error.code);
          expect(error.message.startsWith(file)).toBe(true);
          expect(error.message.slice(file.length)).toMatch(/^(?::\d+)?: /);
        } finally {
          await rm(file, { force: true });
        }
        expect(performance.now() - started).toBeLessThan(PER_RUN_MS);
      }),
      { numRuns: 300, ...BUDGET },
    );
  });

  it('names the line of the first invalid UTF-8 byte', async () => {
    const file = path.join(dir, 'bad-utf8.lock');
    await writeFile(file, Buffer.concat([Buffer.from(`foo==1.0 --hash=sha256:${A}\r\n\r\n`), Buffer.from([0xc0, 0x80]), Buffer.from('\n')]));
    await expect(readLock(file)).rejects.toThrow(new InputError('lock.invalid', `${file}:3: the lockfile is not valid UTF-8; save it as UTF-8`));
  });
});
