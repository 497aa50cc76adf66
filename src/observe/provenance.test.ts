import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { provenanceFindings, readLockedWheels, type LockedWheel, type Writer } from './provenance.js';
import type { ScannedFile, StaticScan } from './static-scan.js';
import { readWheel, sitePackagesPath } from './wheel.js';

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
});

describe('provenanceFindings', () => {
  it('passes the tree pip installs from the wheel: .data/purelib mapped, scripts and data outside, pip additions expected', async () => {
    expect(await provenanceFindings(installed(), readLockedWheels([wheel]), noWriter)).toEqual([]);
  });

  it('reports a module changed after install with its RECORD row rewritten, blaming the writer from the trace', async () => {
    const tampered = FILES['victim/core.py'] + 'import os; os.system("id")\n';
    const scan = installed((files) => files.map((f) => (f.path === 'victim/core.py' ? file(f.path, tampered) : f)));
    const writer = (rel: string): Writer | null => (rel === 'victim/core.py' ? { package: 'tamper-helper', pid: 42, argv: 'python3 -c helper' } : null);
    expect(await provenanceFindings(scan, readLockedWheels([wheel]), writer)).toEqual([
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
    const found = await provenanceFindings(scan, readLockedWheels([wheel]), noWriter);
    expect(found.map((f) => [f.package, f.evidence.path, f.evidence.kind])).toEqual([
      ['victim', 'victim/core.py', 'symlink'],
      ['victim', 'victim_extra.py', 'missing'],
      ['victim', 'victim/backdoor.py', 'extra'],
    ]);
    expect(found[0]?.evidence).toMatchObject({ linkname: '../evil/core.py', expected: hex(FILES['victim/core.py']!), actual: null });
  });

  it('leaves bytecode out (it is never exported) and skips a locked wheel that was not installed', async () => {
    const scan = installed((files) => [...files, file('victim/__pycache__/core.cpython-311.pyc', 'bytecode')]);
    expect(await provenanceFindings(scan, readLockedWheels([wheel]), noWriter)).toEqual([]);
    expect(await provenanceFindings({ ...scan, distributions: [] }, readLockedWheels([wheel]), noWriter)).toEqual([]);
  });

  it('fails closed on a wheel it cannot read', async () => {
    const broken = path.join(path.dirname(wheel.file), 'broken.whl');
    await writeFile(broken, 'not a zip');
    const found = await provenanceFindings(installed(), readLockedWheels([{ filename: 'broken.whl', sha256: hex('not a zip'), file: broken }]), noWriter);
    expect(found).toEqual([
      expect.objectContaining({ rule: 'integrity.installed-mismatch', evidence: expect.objectContaining({ reason: 'unreadable wheel' }) }),
    ]);
    expect(await readFile(broken, 'utf8')).toBe('not a zip');
  });
});
