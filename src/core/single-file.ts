import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';

/**
 * The text of the one regular file in a tar stream (as `getArchive(<file>)` returns it), read with
 * a byte cap. The stream comes from a hostile container: anything but one regular file is refused.
 */
export async function readSingleFile(archive: Readable, maxBytes: number): Promise<string> {
  const extract = tarStream.extract();
  const chunks: Buffer[] = [];
  let size = 0;
  let files = 0;
  extract.on('entry', (header, stream, next) => {
    files += 1;
    if (header.type !== 'file' || files > 1) {
      stream.resume();
      next(new Error(`expected one regular file, found ${header.type} ${JSON.stringify(header.name)}`));
      return;
    }
    stream.on('data', (data: unknown) => {
      const chunk = data as Buffer;
      size += chunk.length;
      if (size > maxBytes) {
        stream.destroy(new Error(`file is larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    stream.on('error', next);
    stream.on('end', () => next());
  });
  await pipeline(archive, extract);
  return Buffer.concat(chunks).toString('utf8');
}
