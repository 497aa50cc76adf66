import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { InputError } from '../errors.js';
import { MANIFEST_NAME, stageExport } from './publish.js';

function archive(files: Record<string, string>): Readable {
  const pack = tarStream.pack();
  pack.entry({ name: 'site-packages/', type: 'directory', mode: 0o755 });
  for (const [name, content] of Object.entries(files)) pack.entry({ name: `site-packages/${name}`, mode: 0o644 }, content);
  pack.finalize();
  return pack as unknown as Readable;
}

describe('stageExport / publish', () => {
  it('publishes into place with the manifest inside, and leaves nothing beside it', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'publish-'));
    const output = path.join(root, 'out', 'site-packages');
    const staged = await stageExport(archive({ 'mod.py': 'x = 1\n' }), output);
    expect(staged.findings).toEqual([]);
    const { manifestFile } = await staged.publish();
    expect(manifestFile).toBe(path.join(output, MANIFEST_NAME));
    expect(await readdir(path.join(root, 'out'))).toEqual(['site-packages']);
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as { files: Array<{ path: string }> };
    expect(manifest.files.map((f) => f.path)).toEqual(['mod.py']);
  });

  it('replaces an earlier export, but refuses a directory of the user own and discards the staging dir', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'publish-'));
    const output = path.join(root, 'site-packages');
    await (await stageExport(archive({ 'old.py': '' }), output)).publish();
    await (await stageExport(archive({ 'new.py': '' }), output)).publish();
    expect((await readdir(output)).sort()).toEqual([MANIFEST_NAME, 'new.py']);

    const mine = path.join(root, 'my-project');
    await mkdir(mine);
    await writeFile(path.join(mine, 'precious.txt'), 'keep me');
    const staged = await stageExport(archive({ 'x.py': '' }), mine);
    await expect(staged.publish()).rejects.toThrow(InputError);
    expect(await readdir(mine)).toEqual(['precious.txt']);
    expect((await readdir(root)).sort()).toEqual(['my-project', 'site-packages']);
  });
});
