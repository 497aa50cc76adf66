import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildManifest, distributionFromDistInfo, writeManifest } from './manifest.js';

const hex = (content: string): string => createHash('sha256').update(content).digest('hex');
const recordHash = (content: string): string => `sha256=${createHash('sha256').update(content).digest('base64url')}`;

async function tempDir(): Promise<AsyncDisposable & { path: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'manifest-test-'));
  return { path: dir, [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }) };
}

/** A tiny site-packages: one distribution with its RECORD, plus files nobody claims. */
async function fakeSitePackages(site: string): Promise<void> {
  const files: Record<string, string> = {
    'requests/__init__.py': 'from .api import get\n',
    'requests/api.py': 'def get(): ...\n',
    'requests-2.31.0.dist-info/METADATA': 'Name: requests\nVersion: 2.31.0\n',
    'Typing_Extensions-4.9.0.dist-info/METADATA': 'Name: typing_extensions\n',
    'typing_extensions.py': 'X = 1\n',
    'stray.pth': 'import os; os.system("id")\n',
    'requests/a,b "odd".py': '',
  };
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(site, rel)), { recursive: true });
    await writeFile(path.join(site, rel), content);
  }
  const record = (rows: string[]): string => `${rows.join('\r\n')}\r\n`;
  await writeFile(
    path.join(site, 'requests-2.31.0.dist-info/RECORD'),
    record([
      `requests/__init__.py,${recordHash(files['requests/__init__.py'] ?? '')},21`,
      `./requests/api.py,${recordHash(files['requests/api.py'] ?? '')},15`,
      `"requests/a,b ""odd"".py",${recordHash('')},0`,
      `requests-2.31.0.dist-info/METADATA,,`,
      'requests-2.31.0.dist-info/RECORD,,',
      // Outside site-packages: claims nothing here.
      '../../../bin/requests-cli,,',
      // Typing_Extensions' RECORD claims this too and sorts first, so that claim wins.
      'typing_extensions.py,,',
    ]),
  );
  await writeFile(
    path.join(site, 'Typing_Extensions-4.9.0.dist-info/RECORD'),
    record(['typing_extensions.py,,', 'Typing_Extensions-4.9.0.dist-info/METADATA,,', 'Typing_Extensions-4.9.0.dist-info/RECORD,,']),
  );
}

describe('buildManifest', () => {
  it('hashes every regular file and maps it to the distribution whose RECORD claims it', async () => {
    await using dir = await tempDir();
    const site = path.join(dir.path, 'site-packages');
    await fakeSitePackages(site);
    // Symlinks are neither followed nor listed, even when they point at a real file.
    await symlink('requests/api.py', path.join(site, 'alias.py'));
    await symlink(dir.path, path.join(site, 'up'));

    const manifest = await buildManifest(site);

    const requests = 'requests==2.31.0';
    const typing = 'typing-extensions==4.9.0';
    expect(manifest.map((e) => [e.path, e.distribution])).toEqual([
      ['Typing_Extensions-4.9.0.dist-info/METADATA', typing],
      ['Typing_Extensions-4.9.0.dist-info/RECORD', typing],
      ['requests-2.31.0.dist-info/METADATA', requests],
      ['requests-2.31.0.dist-info/RECORD', requests],
      ['requests/__init__.py', requests],
      ['requests/a,b "odd".py', requests],
      ['requests/api.py', requests],
      ['stray.pth', null],
      ['typing_extensions.py', typing],
    ]);
    const init = manifest.find((e) => e.path === 'requests/__init__.py');
    expect(init).toEqual({
      path: 'requests/__init__.py',
      sha256: hex('from .api import get\n'),
      size: 21,
      distribution: requests,
    });
    expect(manifest.find((e) => e.path === 'stray.pth')).toEqual({
      path: 'stray.pth',
      sha256: hex('import os; os.system("id")\n'),
      size: 27,
      distribution: null,
    });
    expect(manifest.find((e) => e.path === 'requests/a,b "odd".py')?.sha256).toBe(hex(''));
  });

  it('hashes a file larger than a stream chunk correctly', async () => {
    await using dir = await tempDir();
    const big = 'x'.repeat(1024 * 1024 + 7);
    await writeFile(path.join(dir.path, 'big.bin'), big);

    expect(await buildManifest(dir.path)).toEqual([{ path: 'big.bin', sha256: hex(big), size: big.length, distribution: null }]);
  });

  it('writes the manifest as versioned JSON', async () => {
    await using dir = await tempDir();
    const site = path.join(dir.path, 'site-packages');
    await fakeSitePackages(site);
    const file = path.join(dir.path, 'manifest.json');

    const files = await buildManifest(site);
    await writeManifest(file, { schemaVersion: 1, root: site, files });

    const written: unknown = JSON.parse(await readFile(file, 'utf8'));
    expect(written).toEqual({ schemaVersion: 1, root: site, files });
    expect(files).toHaveLength(9);
  });
});

describe('distributionFromDistInfo', () => {
  it.each([
    ['requests-2.31.0.dist-info', 'requests==2.31.0'],
    ['typing_extensions-4.9.0.dist-info', 'typing-extensions==4.9.0'],
    ['Zope.Interface-6.1.dist-info', 'zope-interface==6.1'],
    ['torch-2.1.0+cpu.dist-info', 'torch==2.1.0+cpu'],
    ['noversion.dist-info', 'noversion'],
    ['requests-2.31.0.egg-info', null],
    ['.dist-info', null],
  ])('%s -> %s', (dir, expected) => {
    expect(distributionFromDistInfo(dir)).toBe(expected);
  });
});
