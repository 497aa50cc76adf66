import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultImageTag, IMAGES_DIR } from './image.js';

describe('defaultImageTag', () => {
  it('follows the content of the files in images/ and ignores directories such as __pycache__', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'images-'));
    await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
    await writeFile(path.join(dir, 'monitor.py'), 'print(1)\n');
    const first = await defaultImageTag(dir);
    expect(first).toMatch(/^sandbox-install:[0-9a-f]{12}$/);

    await mkdir(path.join(dir, '__pycache__'));
    await writeFile(path.join(dir, '__pycache__', 'monitor.cpython-311.pyc'), 'x');
    expect(await defaultImageTag(dir)).toBe(first);

    await writeFile(path.join(dir, 'monitor.py'), 'print(2)\n');
    expect(await defaultImageTag(dir)).not.toBe(first);
  });

  it('finds the bundled images/ directory', async () => {
    expect(await defaultImageTag(IMAGES_DIR)).toMatch(/^sandbox-install:[0-9a-f]{12}$/);
  });
});
