/**
 * A static PEP 503 index over HTTP on loopback, the same upstream for the plain pip baseline and
 * for sandbox-install: `/simple/<project>/` answers `<dir>/simple/<project>/index.html`, and
 * `/files/<name>` streams the file with its length. Nothing outside `dir` is served.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';

export async function serveIndex(dir) {
  const root = path.resolve(dir);
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://index');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (parts.some((p) => p === '..' || p.includes('/'))) return void res.writeHead(400).end();
    let file = null;
    let type = 'application/octet-stream';
    if (parts[0] === 'simple' && parts.length === 2) [file, type] = [path.join(root, 'simple', parts[1], 'index.html'), 'text/html'];
    else if (parts[0] === 'files' && parts.length === 2) file = path.join(root, 'files', parts[1]);
    const info = file ? await stat(file).catch(() => null) : null;
    if (!info?.isFile()) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': type, 'content-length': info.size });
    createReadStream(file)
      .on('error', () => res.destroy())
      .pipe(res);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/simple/`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}
