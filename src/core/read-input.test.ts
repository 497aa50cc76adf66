import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { NotAnInputFile, readInputFile } from './read-input.js';

async function fifo(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'read-input-'));
  const file = path.join(dir, 'requirements.lock');
  await execa('mkfifo', [file]);
  return file;
}

describe('readInputFile', () => {
  it('reads a regular file whole', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'read-input-')), 'a.lock');
    await writeFile(file, 'six==1.16.0\n');
    expect((await readInputFile(file)).toString()).toBe('six==1.16.0\n');
  });

  it('refuses a FIFO at once instead of waiting for a writer, and a device instead of reading without end', async () => {
    const started = Date.now();
    await expect(readInputFile(await fifo())).rejects.toThrow(new NotAnInputFile('it is not a regular file (a FIFO, socket or device)'));
    await expect(readInputFile('/dev/zero')).rejects.toThrow(NotAnInputFile);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('refuses a file over the limit and a directory', async () => {
    const file = path.join(await mkdtemp(path.join(tmpdir(), 'read-input-')), 'big.lock');
    await writeFile(file, 'x'.repeat(100));
    await expect(readInputFile(file, 99)).rejects.toThrow(new NotAnInputFile('it is 100 bytes, over the 99-byte limit'));
    await expect(readInputFile(tmpdir())).rejects.toMatchObject({ code: 'EISDIR' });
  });
});
