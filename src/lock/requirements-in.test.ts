import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRequirementsIn, readRequirementsIn, renderRequirementsIn } from './requirements-in.js';

const refusal = (text: string) => {
  try {
    parseRequirementsIn(text, 'requirements.in');
  } catch (error: unknown) {
    return [(error as { code: string }).code, (error as Error).message];
  }
  return null;
};

describe('parseRequirementsIn', () => {
  it('reads names, extras, ranges and markers, and renders only those for pip', () => {
    const input = parseRequirementsIn(
      '# top\nRequests[Socks, security] >= 2.0, <3  # why\nchild_lib\nzope.interface (==5.*)\nolder ; python_version < "3.12"\n',
      'requirements.in',
    );
    expect(input.requirements).toEqual([
      { name: 'requests', rawName: 'Requests', extras: ['socks', 'security'], specifier: '>=2.0,<3', marker: null, line: 2 },
      { name: 'child-lib', rawName: 'child_lib', extras: [], specifier: '', marker: null, line: 3 },
      { name: 'zope-interface', rawName: 'zope.interface', extras: [], specifier: '==5.*', marker: null, line: 4 },
      { name: 'older', rawName: 'older', extras: [], specifier: '', marker: 'python_version < "3.12"', line: 5 },
    ]);
    expect(renderRequirementsIn(input)).toBe('Requests[socks,security]>=2.0,<3\nchild_lib\nzope.interface==5.*\nolder ; python_version < "3.12"\n');
  });

  it('renders markers from their parse: canonical spacing and quotes, never the text as written', () => {
    const input = parseRequirementsIn(`older ;python_version<'3.12'   and\tos_name=="posix"\n`, 'requirements.in');
    expect(input.requirements[0]?.marker).toBe('python_version < "3.12" and os_name == "posix"');
    expect(renderRequirementsIn(input)).toBe('older ; python_version < "3.12" and os_name == "posix"\n');
  });

  it('keeps the options that change what pip picks', () => {
    const input = parseRequirementsIn('--pre\n--only-binary :all:\n--no-binary plain-src\nrequests\n', 'requirements.in');
    expect(input.pipOptions).toMatchObject({ pre: true, preferBinary: false, onlyBinary: [':all:'], noBinary: ['plain-src'] });
    expect(renderRequirementsIn(input)).toBe('requests\n');
  });

  const refused: Array<[string, string, string]> = [
    ['-e ./src', 'lock.invalid', 'requirements.in:1: -e is not allowed in a requirements.in for lock: editable requirements are local checkouts'],
    [
      '--index-url https://example.invalid/simple',
      'lock.invalid',
      'requirements.in:1: --index-url is not allowed in a requirements.in for lock: give the index on the command line',
    ],
    ['-i https://example.invalid/simple', 'lock.invalid', 'requirements.in:1: -i is not allowed'],
    ['--extra-index-url=https://example.invalid/simple', 'lock.invalid', 'requirements.in:1: --extra-index-url is not allowed'],
    [
      '--find-links /tmp/wheels',
      'lock.invalid',
      'requirements.in:1: --find-links is not allowed in a requirements.in for lock: pip would fetch files around the index proxy',
    ],
    ['-r other.in', 'lock.invalid', 'requirements.in:1: -r is not allowed in a requirements.in for lock: it pulls in another file'],
    ['-c constraints.txt', 'lock.invalid', 'requirements.in:1: -c is not allowed'],
    [
      '--use-feature fast-deps',
      'lock.invalid',
      'requirements.in:1: unknown option --use-feature; a requirements.in for lock may hold only --pre, --prefer-binary, --only-binary, --no-binary',
    ],
    [
      'pkg @ https://example.invalid/pkg-1.0.tar.gz',
      'lock.invalid',
      'requirements.in:1: pkg @ https://example.invalid/pkg-1.0.tar.gz is a URL, VCS or path requirement',
    ],
    ['git+https://example.invalid/pkg.git', 'lock.invalid', 'is a URL, VCS or path requirement'],
    ['./local/pkg', 'lock.invalid', 'requirements.in:1: ./local/pkg is a URL, VCS or path requirement'],
    ['pkg-1.0-py3-none-any.whl', 'lock.invalid', 'is a URL, VCS or path requirement'],
    ['pkg==1.0 --hash=sha256:' + 'a'.repeat(64), 'lock.invalid', 'requirements.in:1: --hash after a requirement is not allowed'],
    ['pkg >= banana', 'lock.invalid', "requirements.in:1: 'banana' in pkg >= banana is not a valid version (PEP 440)"],
    ['pkg ; os_name ==', 'lock.invalid', 'requirements.in:1: invalid environment marker'],
    ['-pkg', 'lock.invalid', 'unknown option -pkg'],
    ['# only a comment\n', 'lock.invalid', 'requirements.in: names no requirement'],
    ['ok\nbad\u0007name\n', 'lock.invalid', 'requirements.in:2: control character \\x07'],
  ];
  for (const [text, code, message] of refused) {
    it(`refuses ${JSON.stringify(text)}`, () => {
      const got = refusal(text);
      expect(got?.[0]).toBe(code);
      expect(got?.[1]).toContain(message);
    });
  }
});

describe('readRequirementsIn', () => {
  it('reads a file, and says when it cannot', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'reqs-in-'));
    const file = path.join(dir, 'requirements.in');
    await writeFile(file, 'parent-app\n');
    expect((await readRequirementsIn(file)).requirements.map((r) => r.name)).toEqual(['parent-app']);
    await writeFile(file, Buffer.from([0x70, 0xff, 0x0a]));
    await expect(readRequirementsIn(file)).rejects.toThrow(`${file}: cannot read the requirements (it is not valid UTF-8)`);
    await expect(readRequirementsIn(path.join(dir, 'missing.in'))).rejects.toMatchObject({ code: 'lock.unreadable' });
  });
});
