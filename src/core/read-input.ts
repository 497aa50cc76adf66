/**
 * Read a file the user named (a lockfile, a requirements.in, a policy and what it extends) as
 * input: a regular file of bounded size. A FIFO or a device would otherwise block a thread-pool read
 * forever or read without end (/dev/zero), holding the CLI past every timeout and signal.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

/** Far beyond any real lock or policy (the largest pip-compile locks are a few MiB). */
export const MAX_INPUT_BYTES = 64 * 1024 * 1024;

export class NotAnInputFile extends Error {}

export async function readInputFile(file: string, maxBytes: number = MAX_INPUT_BYTES): Promise<Buffer> {
  // O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stats = await handle.stat();
    if (stats.isDirectory()) throw Object.assign(new Error('EISDIR: it is a directory'), { code: 'EISDIR' });
    if (!stats.isFile()) throw new NotAnInputFile('it is not a regular file (a FIFO, socket or device)');
    if (stats.size > maxBytes) throw new NotAnInputFile(`it is ${stats.size} bytes, over the ${maxBytes}-byte limit`);
    const buffer = Buffer.alloc(stats.size);
    let read = 0;
    while (read < stats.size) {
      const { bytesRead } = await handle.read(buffer, read, stats.size - read, read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return buffer.subarray(0, read);
  } finally {
    await handle.close();
  }
}
