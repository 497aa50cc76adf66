import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { InputError } from '../errors.js';
import { readLock } from './parse.js';
import { noPipOptions } from './pip-options.js';
import { parsePylock } from './pylock.js';
import type { LockedRequirement } from './types.js';

/** The test data's digests are the sha256 of each file's name. */
const h = (seed: string): string => createHash('sha256').update(seed).digest('hex');
const A = h('a');
const B = h('b');

const testdata = (name: string): string => fileURLToPath(new URL(`./testdata/${name}`, import.meta.url));

/** A requirement whose files are named and hashed as in the test data. */
function req(name: string, version: string, line: number, files: Array<[string, 'wheel' | 'sdist']>, marker: string | null = null): LockedRequirement {
  return {
    name,
    rawName: name,
    version,
    extras: [],
    marker,
    sha256: files.map(([filename]) => h(filename)),
    line,
    files: files.map(([filename, kind]) => ({ filename, sha256: h(filename), kind })),
  };
}

function errorOf(text: string, file = 'pylock.toml'): InputError {
  try {
    parsePylock(text, file);
  } catch (error: unknown) {
    if (error instanceof InputError) return error;
    throw error;
  }
  throw new Error('expected parsePylock to throw');
}

const HEAD = 'lock-version = "1.0"\ncreated-by = "test"\n';

/** A pylock.toml with one package (line 4), from the lines of its table. */
const onePackage = (...lines: string[]): string => `${HEAD}\n[[packages]]\n${lines.join('\n')}\n`;
const wheelA = `wheels = [{ name = "foo-1.0-py3-none-any.whl", url = "https://files.example.test/foo-1.0-py3-none-any.whl", hashes = { sha256 = "${A}" } }]`;

describe('parsePylock on real locker output', () => {
  it('reads pip lock output: [[packages.wheels]] and [packages.sdist] tables with [.hashes] sub-tables', async () => {
    expect(await readLock(testdata('pylock.pip.toml'))).toEqual({
      file: testdata('pylock.pip.toml'),
      indexUrl: null,
      extraIndexUrls: [],
      pipOptions: noPipOptions(),
      requirements: [
        req('certifi', '2025.1.31', 4, [['certifi-2025.1.31-py3-none-any.whl', 'wheel']]),
        req('charset-normalizer', '3.4.1', 15, [['charset_normalizer-3.4.1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl', 'wheel']]),
        req('docopt', '0.6.2', 26, [['docopt-0.6.2.tar.gz', 'sdist']]),
        req('idna', '3.10', 37, [['idna-3.10-py3-none-any.whl', 'wheel']]),
        req('requests', '2.32.3', 48, [['requests-2.32.3-py3-none-any.whl', 'wheel']]),
        req('urllib3', '2.3.0', 59, [['urllib3-2.3.0-py3-none-any.whl', 'wheel']]),
      ],
    });
  });

  it('reads uv export --format pylock.toml output: inline sdist and wheels, file names from the URLs, markers rendered canonically, one entry per marker', async () => {
    expect(await readLock(testdata('pylock.uv.toml'))).toEqual({
      file: testdata('pylock.uv.toml'),
      indexUrl: null,
      extraIndexUrls: [],
      pipOptions: noPipOptions(),
      requirements: [
        req('anyio', '4.9.0', 7, [
          ['anyio-4.9.0-py3-none-any.whl', 'wheel'],
          ['anyio-4.9.0.tar.gz', 'sdist'],
        ]),
        req(
          'exceptiongroup',
          '1.2.2',
          14,
          [
            ['exceptiongroup-1.2.2-py3-none-any.whl', 'wheel'],
            ['exceptiongroup-1.2.2.tar.gz', 'sdist'],
          ],
          'python_full_version < "3.11"',
        ),
        req('idna', '3.10', 22, [
          ['idna-3.10-py3-none-any.whl', 'wheel'],
          ['idna-3.10.tar.gz', 'sdist'],
        ]),
        req(
          'numpy',
          '2.0.2',
          29,
          [
            ['numpy-2.0.2-cp39-cp39-macosx_14_0_arm64.whl', 'wheel'],
            ['numpy-2.0.2-cp39-cp39-manylinux_2_17_x86_64.manylinux2014_x86_64.whl', 'wheel'],
            ['numpy-2.0.2.tar.gz', 'sdist'],
          ],
          'python_full_version < "3.10"',
        ),
        req(
          'numpy',
          '2.2.3',
          40,
          [
            ['numpy-2.2.3-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl', 'wheel'],
            ['numpy-2.2.3-cp312-cp312-win_amd64.whl', 'wheel'],
            ['numpy-2.2.3.tar.gz', 'sdist'],
          ],
          'python_full_version >= "3.10"',
        ),
        req('pywin32', '308', 51, [['pywin32-308-cp312-cp312-win_amd64.whl', 'wheel']], 'sys_platform == "win32"'),
        req('sniffio', '1.3.1', 58, [
          ['sniffio-1.3.1-py3-none-any.whl', 'wheel'],
          ['sniffio-1.3.1.tar.gz', 'sdist'],
        ]),
        req(
          'typing-extensions',
          '4.12.2',
          65,
          [
            ['typing_extensions-4.12.2-py3-none-any.whl', 'wheel'],
            ['typing_extensions-4.12.2.tar.gz', 'sdist'],
          ],
          'python_full_version < "3.13"',
        ),
      ],
    });
  });

  it('reads PDM pylock output as a default install: the default group is in, the dev group out, and what is left of each marker goes to pip', async () => {
    const files = (name: string, version: string, wheelTag = 'py3-none-any'): Array<[string, 'wheel' | 'sdist']> => [
      [`${name}-${version}-${wheelTag}.whl`, 'wheel'],
      [`${name}-${version}.tar.gz`, 'sdist'],
    ];
    expect((await readLock(testdata('pylock.pdm.toml'))).requirements).toEqual([
      // "default" in dependency_groups or "dev" in dependency_groups
      req('click', '8.1.8', 11, files('click', '8.1.8')),
      // platform_system == "Windows" and ("default" in dependency_groups or "dev" in dependency_groups)
      req('colorama', '0.4.6', 26, files('colorama', '0.4.6', 'py2.py3-none-any'), 'platform_system == "Windows"'),
      // exceptiongroup (line 39) and pytest (line 52) are in the dev group only.
      // python_version < "3.11" and "default" in dependency_groups
      req('tomli', '2.2.1', 67, files('tomli', '2.2.1'), 'python_version < "3.11"'),
    ]);
  });
});

describe('parsePylock fields', () => {
  const one = (text: string): LockedRequirement => {
    const { requirements } = parsePylock(text, 'pylock.toml');
    expect(requirements).toHaveLength(1);
    return requirements[0] as LockedRequirement;
  };

  it('lowercases the hex, keeps each file, and lists a digest once', () => {
    const text = onePackage(
      'name = "Foo.Bar"',
      'version = "1.0"',
      `wheels = [{ name = "foo_bar-1.0-py3-none-any.whl", hashes = { sha256 = "${A.toUpperCase()}" } }, { path = "wheels/foo_bar-1.0-py2-none-any.whl", hashes = { md5 = "x", SHA256 = "${B}" } }]`,
      `sdist = { url = "https://files.example.test/foo_bar-1.0.tar.gz?x=1#frag", hashes = { sha256 = "${A}" } }`,
    );
    expect(one(text)).toEqual({
      name: 'foo-bar',
      rawName: 'Foo.Bar',
      version: '1.0',
      extras: [],
      marker: null,
      sha256: [A, B],
      line: 4,
      files: [
        { filename: 'foo_bar-1.0-py3-none-any.whl', sha256: A, kind: 'wheel' },
        { filename: 'foo_bar-1.0-py2-none-any.whl', sha256: B, kind: 'wheel' },
        { filename: 'foo_bar-1.0.tar.gz', sha256: A, kind: 'sdist' },
      ],
    });
  });

  it('takes a percent-encoded file name from a URL, and null when the file has no name, url or path', () => {
    const text = onePackage(
      'name = "foo"',
      'version = "1.0+local"',
      `wheels = [{ url = "file:///srv/index/files/foo-1.0%2Blocal-py3-none-any.whl", hashes = { sha256 = "${A}" } }]`,
      `sdist = { hashes = { sha256 = "${B}" } }`,
    );
    expect(one(text).files).toEqual([
      { filename: 'foo-1.0+local-py3-none-any.whl', sha256: A, kind: 'wheel' },
      { filename: null, sha256: B, kind: 'sdist' },
    ]);
  });

  it('passes an ordinary marker on as the canonical rendering of its parse, whatever its spacing and quotes', () => {
    const marker = `python_version  <  "3.12" \t  and (os_name=='posix' or platform_machine not in "arm64")`;
    expect(one(onePackage('name = "foo"', 'version = "1.0"', `marker = ${JSON.stringify(marker)}`, wheelA)).marker).toBe(
      `python_version < "3.12" and ( os_name == "posix" or platform_machine not in "arm64" )`,
    );
  });

  it('refuses a marker with a line break or a control character, with the file and the line of its entry (exit 2)', () => {
    const entry = (marker: string) => onePackage('name = "foo"', 'version = "1.0"', `marker = ${JSON.stringify(marker)}`, wheelA);
    // The newline would end the requirement in the file pip reads and make the rest a line of its own: an option.
    const newline = errorOf(entry(`os_name == "posix"\n--index-url http://evil.invalid/simple\nor os_name == "nt"`));
    expect(newline).toMatchObject({ code: 'lock.invalid', kind: 'input' });
    expect(newline.message).toBe(
      `pylock.toml:4: line break \\x0a in the environment marker 'os_name == "posix"\\x0a--index-url http://evil.invalid/simple\\x0aor os_name == "nt"'; a marker is one line of printable text`,
    );
    expect(errorOf(entry(`sys_platform == "linux\u001b]0;pwned\u0007"`)).message).toBe(
      `pylock.toml:4: control character \\x1b in the environment marker 'sys_platform == "linux\\x1b]0;pwned\\x07"'; a marker is one line of printable text`,
    );
    for (const brk of ['\r', '\u2028', '\u0085', '\u000b']) {
      expect(errorOf(entry(`os_name == "posix"${brk}and os_name == "nt"`)).message).toMatch(/^pylock\.toml:4: line break /);
    }
  });

  it('accepts any lock-version 1.x and ignores the keys it does not use', () => {
    const text = [
      'lock-version = "1.7"',
      'created-by = "future-locker"',
      'requires-python = ">=3.9"',
      'environments = ["sys_platform == \'linux\'"]',
      'extras = []',
      'dependency-groups = []',
      'default-groups = []',
      'some-new-key = 1',
      '[[packages]]',
      'name = "foo"',
      'version = "1.0"',
      'requires-python = ">=3.8"',
      'index = "https://pypi.example.test/simple"',
      'dependencies = [{ name = "bar" }]',
      wheelA,
      '[[packages.attestation-identities]]',
      'kind = "GitHub"',
      '[packages.tool.locker]',
      'x = 1',
      '[tool.locker]',
      'y = 2',
    ].join('\n');
    expect(one(text)).toMatchObject({ name: 'foo', version: '1.0', line: 9 });
  });

  it('accepts a lock with no packages', () => {
    expect(parsePylock(`${HEAD}packages = []\n`, 'pylock.toml')).toEqual({
      file: 'pylock.toml',
      requirements: [],
      indexUrl: null,
      extraIndexUrls: [],
      pipOptions: noPipOptions(),
    });
  });
});

describe('parsePylock line numbers', () => {
  const lines = (text: string): number[] => parsePylock(text, 'pylock.toml').requirements.map((r) => r.line);
  const pkg = (name: string): string => `[[packages]]\nname = "${name}"\nversion = "1.0"\n${wheelA}\n`;

  it('counts only real [[packages]] headers: not one inside a multi-line string, nor [[packages.wheels]]', () => {
    const text = [
      HEAD.trimEnd(), // lines 1-2
      `note = '''`, // 3
      '[[packages]]', // 4, inside a literal string
      `'''`, // 5
      `other = """ \\""" still inside`, // 6
      '  [[packages]]', // 7, inside a basic string (the \" did not close it)
      `"""`, // 8
      'quoted = "[[packages]]" # [[packages]]', // 9
      '', // 10
      '  [[ packages ]]  # spaces are allowed', // 11
      'name = "foo"',
      'version = "1.0"',
      '[[packages.wheels]]', // 14
      `hashes = { sha256 = "${A}" }`,
      '[["packages"]]', // 16
      'name = "bar"',
      'version = "1.0"',
      wheelA,
      '[tool.x]', // 20
      `text = """`,
      '[[packages]]', // 22, inside a string after the entries
      `"""`,
    ].join('\n');
    expect(lines(text)).toEqual([11, 16]);
  });

  it('counts CRLF lines the same', () => {
    expect(lines(`${HEAD}\n${pkg('foo')}\n${pkg('bar')}`.replaceAll('\n', '\r\n'))).toEqual([4, 9]);
  });

  it('points every entry of an inline packages array at the packages key', () => {
    const text = `${HEAD}\npackages = [\n  { name = "foo", version = "1.0", ${wheelA} },\n  { name = "bar", version = "1.0", ${wheelA} },\n]\n`;
    expect(lines(text)).toEqual([4, 4]);
  });
});

describe('parsePylock markers that select by extras and dependency groups', () => {
  const markers = (marker: string, defaultGroups = '["default"]'): Array<string | null> =>
    parsePylock(
      `${HEAD}default-groups = ${defaultGroups}\n[[packages]]\nname = "foo"\nversion = "1.0"\nmarker = ${JSON.stringify(marker)}\n${wheelA}\n`,
      'pylock.toml',
    ).requirements.map((r) => r.marker);

  it('selects no extras and the default groups, compared by normalised name', () => {
    expect(markers(`"socks" in extras`)).toEqual([]);
    expect(markers(`"socks" not in extras`)).toEqual([null]);
    expect(markers(`'Default_Group' in dependency_groups`, '["default.group"]')).toEqual([null]);
    expect(markers(`"default" in dependency_groups`, '[]')).toEqual([]);
    expect(markers(`"default" in dependency_groups`)).toEqual([null]);
  });

  it('keeps the rest of the marker, each comparison rendered canonically, with parentheses where they are still needed', () => {
    expect(markers(`(python_version < "3.11" or sys_platform == 'win32') and "default" in dependency_groups`)).toEqual([
      `python_version < "3.11" or sys_platform == "win32"`,
    ]);
    expect(markers(`os_name == "nt" and ("dev" in dependency_groups or python_version<"3.9" or platform_machine == "x86_64")`)).toEqual([
      `os_name == "nt" and (python_version < "3.9" or platform_machine == "x86_64")`,
    ]);
    expect(markers(`os_name == "nt" or "dev" in dependency_groups and "default" in dependency_groups`)).toEqual([`os_name == "nt"`]);
    expect(markers(`os_name == "nt" or "default" in dependency_groups`)).toEqual([null]);
  });

  it('refuses any other use of extras or dependency_groups', () => {
    expect(errorOf(onePackage('name = "foo"', 'version = "1.0"', `marker = "extras == 'x'"`, wheelA)).message).toBe(
      `pylock.toml:4: package 'foo' 1.0 has the environment marker 'extras == 'x''; PEP 751 markers test extras only as "'name' in extras"`,
    );
  });
});

describe('parsePylock refusals', () => {
  const refusal = (text: string): { code: string; message: string } => {
    const { code, message } = errorOf(text);
    return { code, message };
  };
  const invalid = (message: string): { code: string; message: string } => ({ code: 'lock.invalid', message });
  const NOT_FROM_INDEX = 'the sandbox installs only index files pinned by version and sha256, fetched through its index proxy';

  it('refuses a version control checkout', () => {
    const text = onePackage('name = "foo"', 'vcs = { type = "git", url = "https://git.example.test/foo.git", commit-id = "0123abc" }');
    expect(refusal(text)).toEqual(
      invalid(
        `pylock.toml:4: package 'foo' comes from a version control checkout (packages.vcs); ${NOT_FROM_INDEX}; lock a released version from an index instead`,
      ),
    );
  });

  it('refuses a local directory', () => {
    expect(refusal(onePackage('name = "my-project"', 'directory = { path = ".", editable = true }'))).toEqual(
      invalid(
        `pylock.toml:4: package 'my-project' is a local directory (packages.directory); ${NOT_FROM_INDEX}; leave the project itself out of the lock (uv export --no-emit-project), or lock a released version from an index`,
      ),
    );
  });

  it('refuses an archive, by path or by URL, even with a sha256', () => {
    expect(refusal(onePackage('name = "foo"', 'version = "1.0"', `archive = { path = "dist/foo-1.0.tar.gz", hashes = { sha256 = "${A}" } }`))).toEqual(
      invalid(
        `pylock.toml:4: package 'foo' is a local archive (packages.archive.path 'dist/foo-1.0.tar.gz'); ${NOT_FROM_INDEX}; publish it to an index and lock it from there`,
      ),
    );
    expect(
      refusal(onePackage('name = "foo"', 'version = "1.0"', `archive = { url = "https://files.example.test/foo-1.0.zip", hashes = { sha256 = "${A}" } }`)),
    ).toEqual(
      invalid(
        `pylock.toml:4: package 'foo' is an archive at a URL (packages.archive.url 'https://files.example.test/foo-1.0.zip'); ${NOT_FROM_INDEX}; publish it to an index and lock it from there`,
      ),
    );
  });

  it('refuses an entry without wheels or an sdist', () => {
    expect(refusal(onePackage('name = "foo"', 'version = "1.0"'))).toEqual(
      invalid(
        `pylock.toml:4: package 'foo' 1.0 has neither wheels nor an sdist; ${NOT_FROM_INDEX}; lock it again so that the entry lists its files with hashes`,
      ),
    );
    expect(refusal(onePackage('name = "foo"', 'version = "1.0"', 'wheels = []'))).toEqual(
      invalid(
        `pylock.toml:4: package 'foo' 1.0 has neither wheels nor an sdist; ${NOT_FROM_INDEX}; lock it again so that the entry lists its files with hashes`,
      ),
    );
  });

  it('refuses a file without a sha256 (lock.unhashed)', () => {
    expect(
      refusal(onePackage('name = "foo"', 'version = "1.0"', `wheels = [{ name = "foo-1.0-py3-none-any.whl", hashes = { md5 = "abc", sha512 = "def" } }]`)),
    ).toEqual({
      code: 'lock.unhashed',
      message:
        "pylock.toml:4: package 'foo' 1.0: wheel 'foo-1.0-py3-none-any.whl' has no sha256 hash (only md5, sha512); every file needs a sha256 hash (pip lock, uv export --format pylock.toml record one)",
    });
    expect(refusal(onePackage('name = "foo"', 'version = "1.0"', wheelA, 'sdist = { url = "https://files.example.test/x" }')).message).toBe(
      "pylock.toml:4: package 'foo' 1.0: sdist 'x' has no sha256 hash (no hashes); every file needs a sha256 hash (pip lock, uv export --format pylock.toml record one)",
    );
    expect(refusal(onePackage('name = "foo"', 'version = "1.0"', 'wheels = [{ hashes = {} }]')).message).toBe(
      "pylock.toml:4: package 'foo' 1.0: wheels[0] has no sha256 hash (no hashes); every file needs a sha256 hash (pip lock, uv export --format pylock.toml record one)",
    );
  });

  it('refuses a sha256 that is not 64 hex digits', () => {
    expect(refusal(onePackage('name = "foo"', 'version = "1.0"', `sdist = { name = "foo-1.0.tar.gz", hashes = { sha256 = "${A.slice(1)}g" } }`))).toEqual(
      invalid(`pylock.toml:4: package 'foo' 1.0: sdist 'foo-1.0.tar.gz' has sha256 '${A.slice(1)}g', which is not a sha256 digest; expected 64 hex digits`),
    );
  });

  it('refuses a package without a version (lock.unpinned)', () => {
    expect(refusal(onePackage('name = "foo"', wheelA))).toEqual({
      code: 'lock.unpinned',
      message:
        "pylock.toml:4: package 'foo' has no version; every package needs an exact version and its index files (pip lock, uv export --format pylock.toml)",
    });
  });

  it('refuses a bad name or version', () => {
    expect(refusal(onePackage('name = "-foo"', 'version = "1.0"', wheelA))).toEqual(invalid("pylock.toml:4: package name '-foo' is not a valid project name"));
    expect(refusal(onePackage('name = "foo"', 'version = "1.0 beta"', wheelA))).toEqual(
      invalid("pylock.toml:4: package 'foo' has version '1.0 beta', which is not a valid version (PEP 440)"),
    );
  });

  it('refuses a file name that does not match its kind, or is not a plain name', () => {
    expect(
      refusal(onePackage('name = "foo"', 'version = "1.0"', `wheels = [{ url = "https://x.test/foo-1.0.tar.gz", hashes = { sha256 = "${A}" } }]`)),
    ).toEqual(invalid("pylock.toml:4: package 'foo' 1.0: wheel 'foo-1.0.tar.gz' is listed under wheels, but a wheel's file name ends in .whl"));
    expect(refusal(onePackage('name = "foo"', 'version = "1.0"', `sdist = { name = "foo-1.0-py3-none-any.WHL", hashes = { sha256 = "${A}" } }`))).toEqual(
      invalid("pylock.toml:4: package 'foo' 1.0: sdist 'foo-1.0-py3-none-any.WHL' is a wheel, but it is listed as the sdist; list it under wheels"),
    );
    expect(refusal(onePackage('name = "foo"', 'version = "1.0"', `wheels = [{ name = "../foo-1.0-py3-none-any.whl", hashes = { sha256 = "${A}" } }]`))).toEqual(
      invalid("pylock.toml:4: package 'foo' 1.0: wheels[0] names the file '../foo-1.0-py3-none-any.whl', which is not a plain file name"),
    );
    expect(
      refusal(onePackage('name = "foo"', 'version = "1.0"', `sdist = { url = "https://x.test/a%2F..%2Ffoo.tar.gz", hashes = { sha256 = "${A}" } }`)).message,
    ).toBe("pylock.toml:4: package 'foo' 1.0: sdist names the file 'a/../foo.tar.gz', which is not a plain file name");
  });

  it('refuses a bad or empty marker', () => {
    expect(refusal(onePackage('name = "foo"', 'version = "1.0"', 'marker = "python_version <"', wheelA))).toEqual(
      invalid("pylock.toml:4: invalid environment marker 'python_version <': it ends too early"),
    );
    expect(refusal(onePackage('name = "foo"', 'version = "1.0"', 'marker = " "', wheelA))).toEqual(
      invalid("pylock.toml:4: package 'foo' 1.0 has an empty environment marker"),
    );
  });

  it('refuses two selected entries pip could not tell apart', () => {
    const entry = (version: string, marker: string | null): string =>
      `\n[[packages]]\nname = "foo"\nversion = "${version}"\n${marker === null ? '' : `marker = ${JSON.stringify(marker)}\n`}${wheelA}\n`;
    expect(refusal(`${HEAD}${entry('1.0', null)}${entry('2.0', null)}`)).toEqual(
      invalid(
        "pylock.toml:9: package 'foo' conflicts with the entry on line 4: neither has an environment marker, and pip installs one version of a project; keep one entry, or tell them apart with markers",
      ),
    );
    expect(refusal(`${HEAD}${entry('1.0', "os_name == 'nt'")}${entry('2.0', 'os_name=="nt"')}`).message).toBe(
      "pylock.toml:10: package 'foo' conflicts with the entry on line 4: both have the same environment marker, and pip installs one version of a project; keep one entry, or tell them apart with markers",
    );
    // An entry the default install leaves out does not conflict.
    const dev = `\n[[packages]]\nname = "foo"\nversion = "2.0"\nmarker = "'dev' in dependency_groups"\n${wheelA}\n`;
    expect(parsePylock(`${HEAD}${entry('1.0', null)}${dev}`, 'pylock.toml').requirements.map((r) => r.version)).toEqual(['1.0']);
  });

  it('refuses a lock-version of another major, or none', () => {
    expect(refusal('created-by = "x"\nlock-version = "2.0"\n[[packages]]\nname = "foo"\n')).toEqual(
      invalid(
        'pylock.toml:2: lock-version 2.0 is not supported: this tool reads pylock.toml lock-version 1.x (PEP 751); lock again with a tool that writes lock-version 1.0 (pip lock, uv export --format pylock.toml), or export a hashed requirements file',
      ),
    );
    expect(refusal('lock-version = "1"\n')).toEqual(invalid(`pylock.toml:1: lock-version '1' is not a version like "1.0" (PEP 751)`));
    expect(refusal('lock-version = 1.0\n')).toEqual(invalid('pylock.toml:1: no lock-version string; a pylock.toml says lock-version = "1.0" (PEP 751)'));
    expect(refusal('created-by = "x"\n')).toEqual(invalid('pylock.toml:1: no lock-version string; a pylock.toml says lock-version = "1.0" (PEP 751)'));
  });

  it('refuses text that is not TOML, with the line', () => {
    expect(refusal(`${HEAD}\n[[packages]]\nname = foo\n`)).toEqual(
      invalid('pylock.toml:5: not valid TOML (invalid value); a pylock.toml is a TOML file (PEP 751)'),
    );
  });

  it('refuses a document that does not follow the schema, at the entry or the key', () => {
    expect(refusal(`${HEAD}\n[[packages]]\nname = "foo"\nversion = "1.0"\n\n[[packages]]\nname = "bar"\nversion = "1.0"\nwheels = [{ url = 3 }]\n`)).toEqual(
      invalid("pylock.toml:8: package 'bar': wheels[0].url: Invalid input: expected string, received number; that entry does not follow PEP 751"),
    );
    expect(refusal(`${HEAD}\n[[packages]]\nversion = "1.0"\n`)).toEqual(
      invalid('pylock.toml:4: [[packages]] entry 1: name: Invalid input: expected string, received undefined; that entry does not follow PEP 751'),
    );
    expect(refusal(`${HEAD}environments = "linux"\npackages = []\n`)).toEqual(
      invalid('pylock.toml:3: environments: Invalid input: expected array, received string; the file does not follow PEP 751'),
    );
    expect(refusal(HEAD)).toEqual(invalid('pylock.toml:1: packages: Invalid input: expected array, received undefined; the file does not follow PEP 751'));
  });
});

describe('readLock picks the format by the file name', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lock-pylock-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const pylock = onePackage('name = "foo"', 'version = "1.0"', wheelA);

  it.each(['pylock.toml', 'pylock.dev.toml'])('reads %s as a pylock.toml', async (name) => {
    const file = join(dir, name);
    await writeFile(file, pylock);
    expect((await readLock(file)).requirements.map((r) => [r.name, r.line, r.sha256])).toEqual([['foo', 4, [A]]]);
  });

  it('reads a pylock.toml written as UTF-16, as any lockfile', async () => {
    const file = join(dir, 'pylock.toml');
    await writeFile(file, Buffer.from(`\uFEFF${pylock}`, 'utf16le'));
    expect((await readLock(file)).requirements.map((r) => r.line)).toEqual([4]);
  });

  it.each([
    [
      'uv.lock',
      "uv's",
      'export it: uv export --format requirements-txt --no-emit-project --output-file requirements.lock, or uv export --format pylock.toml --no-emit-project -o pylock.toml',
    ],
    ['poetry.lock', "Poetry's", 'export it: poetry export --format requirements.txt --output requirements.lock (poetry-plugin-export writes the hashes)'],
    ['Pipfile.lock', "Pipenv's", 'export it: pipenv requirements --hash > requirements.lock'],
    ['pdm.lock', "PDM's", 'export it: pdm export --format requirements --output requirements.lock (with hashes, the default)'],
  ])('refuses %s, with the export that writes a file it reads', async (name, tool, hint) => {
    const file = join(dir, name);
    await writeFile(file, pylock); // the name decides, not the content
    const error = await readLock(file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect(error).toMatchObject({
      code: 'lock.invalid',
      message: `${file}: ${name} is ${tool} own lock format, which this tool does not read; give it a requirements file with hashes or a pylock.toml (PEP 751)`,
      hint,
    });
  });

  it.each(['pyproject.toml', 'pylock.a.b.toml', 'PYLOCK.TOML', 'lock.toml'])('refuses %s: a TOML lockfile must have a PEP 751 name', async (name) => {
    const file = join(dir, name);
    await writeFile(file, pylock);
    await expect(readLock(file)).rejects.toMatchObject({
      code: 'lock.invalid',
      message: `${file}: a TOML lockfile must be named pylock.toml or pylock.<name>.toml (PEP 751); rename it if it is one, or give a requirements file with hashes`,
    });
  });

  it('still reads any other name as a requirements file', async () => {
    const file = join(dir, 'uv.lock.txt');
    await writeFile(file, `foo==1.0 --hash=sha256:${A}\n`);
    expect((await readLock(file)).requirements).toEqual([{ name: 'foo', rawName: 'foo', version: '1.0', extras: [], marker: null, sha256: [A], line: 1 }]);
  });
});
