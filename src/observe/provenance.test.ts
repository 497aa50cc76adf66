import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { finding } from '../core/finding.js';
import { packagingNotes, provenanceFindings, readLockedWheels, type LockedWheel, type Writer } from './provenance.js';
import type { ScannedFile, StaticScan } from './static-scan.js';
import { readWheel, sitePackagesPath, WHEEL_LIMITS } from './wheel.js';

// Real wheels, built by the fixture builder (zipfile, a correct RECORD); the installed tree is
// written out here as pip 23 leaves it in site-packages (checked by hand against a real install).
const MAKE_DIST = fileURLToPath(new URL('../../test/fixtures/make_dist.py', import.meta.url));
const hex = (text: string | Buffer) => createHash('sha256').update(text).digest('hex');

const FILES: Record<string, string> = {
  'victim/__init__.py': 'from .core import run\n',
  'victim/core.py': 'def run():\n    return 1\n',
  'victim-1.0.data/purelib/victim_extra.py': 'EXTRA = 2\n',
  'victim-1.0.data/scripts/victim-tool': '#!python\nprint("tool")\n',
  'victim-1.0.data/data/share/victim.txt': 'data\n',
};
const DIST_INFO = 'victim-1.0.dist-info';

let wheel: LockedWheel;
let metadata: Record<string, string>;

beforeAll(async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'provenance-'));
  const spec = { name: 'victim', version: '1.0', kind: 'wheel', files: FILES, consoleScripts: { victim: 'victim:run' } };
  const { stdout } = await execa('python3', ['-I', '-S', MAKE_DIST], { input: JSON.stringify({ outDir: dir, packages: [spec] }) });
  const [built] = JSON.parse(stdout) as Array<{ filename: string; sha256: string }>;
  wheel = { filename: built!.filename, sha256: built!.sha256, file: path.join(dir, built!.filename) };
  const { stdout: meta } = await execa('python3', [
    '-I',
    '-S',
    '-c',
    `import zipfile,json,sys; z=zipfile.ZipFile(sys.argv[1]); print(json.dumps({n: z.read(n).decode() for n in z.namelist() if n.startswith("${DIST_INFO}/") and not n.endswith("RECORD")}))`,
    wheel.file,
  ]);
  metadata = JSON.parse(meta) as Record<string, string>;
});

const file = (p: string, content: string, owner: string | null = 'victim'): ScannedFile => ({
  path: p,
  type: 'file',
  mode: 0o644,
  size: content.length,
  sha256: hex(content),
  linkname: null,
  owner,
});

/** site-packages after `pip install --no-compile` of the wheel, plus `extra` files. */
function installed(change: (files: ScannedFile[]) => ScannedFile[] = (f) => f): StaticScan {
  const files = [
    { path: 'victim', type: 'directory', mode: 0o755, size: 0, sha256: null, linkname: null, owner: null } as ScannedFile,
    file('victim/__init__.py', FILES['victim/__init__.py']!),
    file('victim/core.py', FILES['victim/core.py']!),
    file('victim_extra.py', FILES['victim-1.0.data/purelib/victim_extra.py']!),
    ...Object.entries(metadata).map(([name, content]) => file(name, content)),
    file(`${DIST_INFO}/INSTALLER`, 'pip\n'),
    file(`${DIST_INFO}/REQUESTED`, ''),
    file(`${DIST_INFO}/RECORD`, 'rewritten by pip'),
  ];
  return { files: change(files), findings: [], distributions: [{ name: 'victim', version: '1.0', distInfo: DIST_INFO }], truncated: false };
}

const noWriter = (): Writer | null => null;

describe('readWheel', () => {
  it('lists every file with the sha256 of its inflated bytes, and where pip puts it', async () => {
    const contents = await readWheel(wheel.file, wheel.sha256);
    expect(contents.distInfo).toBe(DIST_INFO);
    expect(contents.files.get('victim/core.py')?.sha256).toBe(hex(FILES['victim/core.py']!));
    expect(sitePackagesPath('victim-1.0.data/purelib/victim_extra.py', DIST_INFO)).toBe('victim_extra.py');
    expect(sitePackagesPath('victim-1.0.data/platlib/x.so', DIST_INFO)).toBe('x.so');
    expect(sitePackagesPath('victim-1.0.data/scripts/victim-tool', DIST_INFO)).toBeNull();
    expect(sitePackagesPath('victim-1.0.data/data/share/victim.txt', DIST_INFO)).toBeNull();
  });

  it('refuses a cached file whose bytes are not the locked ones', async () => {
    await expect(readWheel(wheel.file, '0'.repeat(64))).rejects.toThrow(/not the locked/);
  });

  // A wheel with a small deflated entry, a stored one and a 5 MiB deflated one; `lie` rewrites the
  // inflated size the zip lists for small.py (central directory and local header) to 3 bytes.
  const zipWith = async (lie: boolean): Promise<{ file: string; sha256: string }> => {
    const dir = await mkdtemp(path.join(tmpdir(), 'wheel-read-'));
    const file = path.join(dir, 'paths-1.0-py3-none-any.whl');
    const script = [
      'import sys, zipfile',
      'z = zipfile.ZipFile(sys.argv[1], "w")',
      'z.writestr("paths/small.py", "X = 1\\n" * 100, zipfile.ZIP_DEFLATED)',
      'z.writestr("paths/stored.txt", "stored", zipfile.ZIP_STORED)',
      'z.writestr("paths/big.bin", bytes(range(256)) * 20480, zipfile.ZIP_DEFLATED)',
      'z.writestr("paths-1.0.dist-info/METADATA", "Name: paths\\n", zipfile.ZIP_DEFLATED)',
      'z.close()',
      'if sys.argv[2] == "lie":',
      '    data = bytearray(open(sys.argv[1], "rb").read())',
      '    name = b"paths/small.py"',
      '    for sig, at in ((b"PK\\x01\\x02", 24), (b"PK\\x03\\x04", 22)):',
      '        i = data.index(sig)',
      '        while data[i + (46 if sig == b"PK\\x01\\x02" else 30):].startswith(name) is False: i = data.index(sig, i + 4)',
      '        data[i + at:i + at + 4] = (3).to_bytes(4, "little")',
      '    open(sys.argv[1], "wb").write(bytes(data))',
    ].join('\n');
    await execa('python3', ['-I', '-S', '-c', script, file, lie ? 'lie' : 'true']);
    return { file, sha256: hex(await readFile(file)) };
  };
  const expected = new Map([
    ['paths/small.py', hex('X = 1\n'.repeat(100))],
    ['paths/stored.txt', hex('stored')],
    ['paths/big.bin', hex(Buffer.concat(Array.from({ length: 20480 }, () => Buffer.from(Array.from({ length: 256 }, (_, i) => i)))))],
    ['paths-1.0.dist-info/METADATA', hex('Name: paths\n')],
  ]);
  const inMemory = WHEEL_LIMITS;
  const streamed = { ...WHEEL_LIMITS, inMemoryBytes: 0 };

  it('hashes every entry the same from memory (inflated in one call or streamed) and from a wheel streamed from disk', async () => {
    const { file, sha256 } = await zipWith(false);
    for (const limits of [inMemory, streamed]) {
      const contents = await readWheel(file, sha256, limits);
      expect(new Map([...contents.files].map(([name, entry]) => [name, entry.sha256]))).toEqual(expected);
      expect(contents.files.get('paths/big.bin')?.size).toBe(256 * 20480);
    }
  });

  it('refuses an entry that inflates to more than the size the zip lists, on either path', async () => {
    const { file, sha256 } = await zipWith(true);
    await expect(readWheel(file, sha256, inMemory)).rejects.toThrow(/^cannot read paths\/small\.py: it does not inflate to its listed 3 bytes/);
    await expect(readWheel(file, sha256, streamed)).rejects.toThrow(/^cannot inflate paths\/small\.py: too many bytes in the stream/);
  });
});

describe('provenanceFindings', () => {
  it('passes the tree pip installs from the wheel: .data/purelib mapped, scripts and data outside, pip additions expected', async () => {
    expect((await provenanceFindings(installed(), readLockedWheels([wheel]), noWriter)).findings).toEqual([]);
  });

  it('reports a module changed after install with its RECORD row rewritten, blaming the writer from the trace', async () => {
    const tampered = FILES['victim/core.py'] + 'import os; os.system("id")\n';
    const scan = installed((files) => files.map((f) => (f.path === 'victim/core.py' ? file(f.path, tampered) : f)));
    const writer = (rel: string): Writer | null => (rel === 'victim/core.py' ? { package: 'tamper-helper', pid: 42, argv: 'python3 -c helper' } : null);
    expect((await provenanceFindings(scan, readLockedWheels([wheel]), writer)).findings).toEqual([
      {
        rule: 'integrity.installed-mismatch',
        severity: 'high',
        package: 'tamper-helper',
        message: 'victim/core.py of victim differs from the wheel; written by tamper-helper',
        evidence: {
          distribution: 'victim',
          wheel: wheel.filename,
          path: 'victim/core.py',
          kind: 'different',
          expected: hex(FILES['victim/core.py']!),
          actual: hex(tampered),
          writerPid: 42,
          writerArgv: 'python3 -c helper',
        },
      },
    ]);
  });

  it('reports a recorded file swapped for a symlink, a missing file and a file the wheel never had', async () => {
    const scan = installed((files) => [
      ...files
        .filter((f) => f.path !== 'victim_extra.py')
        .map((f) => (f.path === 'victim/core.py' ? { ...f, type: 'symlink' as const, sha256: null, linkname: '../evil/core.py' } : f)),
      file('victim/backdoor.py', 'import os\n'),
    ]);
    const found = (await provenanceFindings(scan, readLockedWheels([wheel]), noWriter)).findings;
    expect(found.map((f) => [f.package, f.evidence.path, f.evidence.kind])).toEqual([
      ['victim', 'victim/core.py', 'symlink'],
      ['victim', 'victim_extra.py', 'missing'],
      ['victim', 'victim/backdoor.py', 'extra'],
    ]);
    expect(found[0]?.evidence).toMatchObject({ linkname: '../evil/core.py', expected: hex(FILES['victim/core.py']!), actual: null });
  });

  it('leaves bytecode out (it is never exported) and skips a locked wheel that was not installed', async () => {
    const scan = installed((files) => [...files, file('victim/__pycache__/core.cpython-311.pyc', 'bytecode')]);
    expect((await provenanceFindings(scan, readLockedWheels([wheel]), noWriter)).findings).toEqual([]);
    expect((await provenanceFindings({ ...scan, distributions: [] }, readLockedWheels([wheel]), noWriter)).findings).toEqual([]);
  });

  it('fails closed on a wheel it cannot read', async () => {
    const broken = path.join(path.dirname(wheel.file), 'broken.whl');
    await writeFile(broken, 'not a zip');
    const found = (await provenanceFindings(installed(), readLockedWheels([{ filename: 'broken.whl', sha256: hex('not a zip'), file: broken }]), noWriter))
      .findings;
    expect(found).toEqual([
      expect.objectContaining({ rule: 'integrity.installed-mismatch', evidence: expect.objectContaining({ reason: 'unreadable wheel' }) }),
    ]);
    expect(await readFile(broken, 'utf8')).toBe('not a zip');
  });
});

describe('what the locked wheel vouches for', () => {
  it('lists every installed file byte-identical to the wheel, and none that differs or that a built wheel shipped', async () => {
    const changed = installed((files) => files.map((f) => (f.path === 'victim/core.py' ? { ...f, sha256: hex('changed') } : f)));
    const { verified } = await provenanceFindings(changed, readLockedWheels([wheel]), noWriter);
    expect(verified.get('victim/__init__.py')).toEqual({ wheel: wheel.filename, distribution: 'victim', bytecode: false });
    expect(verified.get('victim_extra.py')).toEqual({ wheel: wheel.filename, distribution: 'victim', bytecode: false });
    expect(verified.has('victim/core.py')).toBe(false);
    expect(verified.has(`${DIST_INFO}/INSTALLER`)).toBe(false); // pip wrote it, the wheel did not ship it
    const built = await provenanceFindings(installed(), readLockedWheels([{ ...wheel, built: true }]), noWriter);
    expect(built.verified.size).toBe(0);
  });

  it('says when the wheel ships bytecode for a source, beside it or in __pycache__', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'provenance-pyc-'));
    const files = {
      'mod/__init__.py': '',
      'mod/a.py': 'A = 1\n',
      'mod/__pycache__/a.cpython-311.pyc': 'pyc',
      'mod/b.py': 'B = 1\n',
      'mod/b.pyc': 'pyc',
      'mod/c.py': 'C = 1\n',
    };
    const spec = { name: 'mod', version: '1.0', kind: 'wheel', files };
    const { stdout } = await execa('python3', ['-I', '-S', MAKE_DIST], { input: JSON.stringify({ outDir: dir, packages: [spec] }) });
    const [made] = JSON.parse(stdout) as Array<{ filename: string; sha256: string }>;
    const scan: StaticScan = {
      files: Object.entries(files).map(([p, content]) => file(p, content, 'mod')),
      findings: [],
      distributions: [{ name: 'mod', version: '1.0', distInfo: 'mod-1.0.dist-info' }],
      truncated: false,
    };
    const { verified } = await provenanceFindings(scan, readLockedWheels([{ ...made!, file: path.join(dir, made!.filename) }]), noWriter);
    expect([...verified].filter(([p]) => p.endsWith('.py')).map(([p, v]) => [p, v.bytecode])).toEqual([
      ['mod/__init__.py', false],
      ['mod/a.py', true],
      ['mod/b.py', true],
      ['mod/c.py', false],
    ]);
  });
});

describe('packagingNotes', () => {
  const verified = new Map([
    ['gm/a.py', { wheel: 'gm-1.0-py3-none-any.whl', distribution: 'gm', bytecode: false }],
    ['gm/b.py', { wheel: 'gm-1.0-py3-none-any.whl', distribution: 'gm', bytecode: false }],
  ]);
  const unhashed = (p: string, pkg: string | null = 'gm') =>
    finding('static.unrecorded-file', 'high', `${p} is listed in gm-1.0.dist-info/RECORD without a sha256`, { path: p, recorded: null, actual: 'x' }, pkg);

  it('turns unhashed RECORD rows of files the verified wheel vouches for into one info note per distribution', () => {
    expect(packagingNotes([unhashed('gm/a.py'), unhashed('gm/b.py')], verified)).toEqual([
      {
        rule: 'static.record-unhashed',
        severity: 'info',
        package: 'gm',
        message:
          "gm's RECORD lists 2 files without a sha256 pip can read (none, or a hex digest), each byte-identical to the verified gm-1.0-py3-none-any.whl: a packaging defect, nothing changed",
        evidence: { distribution: 'gm', wheel: 'gm-1.0-py3-none-any.whl', files: 2, paths: ['gm/a.py', 'gm/b.py'] },
      },
    ]);
  });

  it('keeps every other finding: a file the wheel does not vouch for, a hash mismatch, another owner, another rule', () => {
    const kept = [
      unhashed('gm/c.py'),
      finding('static.unrecorded-file', 'high', 'differs', { path: 'gm/a.py', recorded: 'f'.repeat(64), actual: 'x' }, 'gm'),
      unhashed('gm/a.py', 'other'),
      finding('static.unrecorded-file', 'high', 'unclaimed', { path: 'gm/b.py', claimedBy: [] }, 'gm'),
      finding('static.pth-exec', 'high', 'pth', { path: 'gm/a.py' }, 'gm'),
    ];
    expect(packagingNotes(kept, verified)).toEqual(kept);
  });
});
