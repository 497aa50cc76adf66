import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EnvironmentError } from '../errors.js';
import { noPipOptions } from '../lock/pip-options.js';
import type { LockPlan } from '../lock/types.js';
import { lockedFiles } from './locked-files.js';

const SHA = 'a'.repeat(64);
const WHEEL = 'alpha-1.0-py3-none-any.whl';

const plan: LockPlan = {
  file: 'requirements.lock',
  requirements: [{ name: 'alpha', rawName: 'alpha', version: '1.0', extras: [], marker: null, sha256: [SHA], line: 1 }],
  indexUrl: null,
  extraIndexUrls: [],
  pipOptions: noPipOptions(),
};

/** A file:// mirror whose alpha page lists the locked wheel, as this machine's /opt/pypi does. */
async function mirror(): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'locked-files-'));
  await mkdir(path.join(root, 'simple', 'alpha'), { recursive: true });
  await writeFile(path.join(root, 'simple', 'alpha', 'index.html'), `<html><body><a href="../../${WHEEL}#sha256=${SHA}">${WHEEL}</a></body></html>\n`);
  await writeFile(path.join(root, WHEEL), 'x');
  return `${pathToFileURL(path.join(root, 'simple')).href}/`;
}

/** An index URL on a port nothing listens on. */
async function closedIndex(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}/simple/`;
}

describe('lockedFiles', () => {
  const never = new AbortController().signal;

  it('passes over an index that is down when an extra index lists the locked files, as pip does', async () => {
    const files = await lockedFiles(plan, { indexUrl: await closedIndex(), extraIndexUrls: [await mirror()] }, never);
    expect(files.get('alpha')).toEqual([{ filename: WHEEL, sha256: SHA, kind: 'wheel' }]);
  });

  it('ends with the first failure, naming the index and the project, when no index lists them', async () => {
    const down = await closedIndex();
    const error = await lockedFiles(plan, { indexUrl: down, extraIndexUrls: [] }, never).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(error).toMatchObject({ code: 'upstream.unreachable' });
    expect((error as Error).message).toContain(`cannot read alpha's page from ${down}`);
  });
});
