import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { EnvironmentError, InputError } from '../errors.js';
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
    // Readable like any new directory, not the staging dir's 0700.
    expect((await stat(output)).mode & 0o777).toBe(0o755);
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as { files: Array<{ path: string }> };
    // The bytecode is the host's own compile of the verified source, listed with it.
    expect(manifest.files.map((f) => f.path)).toEqual(['__pycache__/mod.cpython-311.pyc', 'mod.py']);
  });

  it('leaves shipped bytecode out, compiles the sources itself, and reports a source that does not compile', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'publish-'));
    const output = path.join(root, 'site-packages');
    const shipped = 'shipped bytecode that nobody reviewed';
    const staged = await stageExport(
      archive({ 'pkg/__init__.py': 'OK = True\n', 'pkg/broken.py': 'def (:\n', 'pkg/__pycache__/broken.cpython-311.pyc': shipped }),
      output,
    );
    expect(staged.bytecode).toEqual({ compiled: 1, failures: [expect.objectContaining({ path: 'pkg/broken.py' })], digests: expect.any(Map), skipped: null });
    expect(staged.findings).toEqual([
      expect.objectContaining({
        rule: 'static.invalid-source',
        severity: 'high',
        evidence: expect.objectContaining({ path: 'pkg/broken.py', error: expect.stringMatching(/^SyntaxError/) }),
      }),
    ]);
    expect((await readdir(path.join(staged.dir, 'pkg', '__pycache__'))).sort()).toEqual(['__init__.cpython-311.pyc']);
    // A checked-hash pyc: flags word 0b11 after the magic number.
    const pyc = await readFile(path.join(staged.dir, 'pkg', '__pycache__', '__init__.cpython-311.pyc'));
    expect(pyc.readUInt32LE(4)).toBe(3);
    // Hashed as the compiler wrote it: the manifest lists it without reading it back.
    const digest = { sha256: createHash('sha256').update(pyc).digest('hex'), size: pyc.length };
    expect(staged.bytecode?.digests).toEqual(new Map([['pkg/__pycache__/__init__.cpython-311.pyc', digest]]));
    expect(staged.manifest.find((entry) => entry.path === 'pkg/__pycache__/__init__.cpython-311.pyc')).toEqual(expect.objectContaining(digest));
    await staged.discard();
  });

  it('calls a source its verified wheel shipped as it is, with no bytecode for it, inert (a warning); with bytecode or unverified it stays invalid', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'publish-'));
    const files = { 'tpl/page.py': '{% for x in y %}\n', 'old/py2.py': 'print "hi"\n', 'own/broken.py': 'def (:\n' };
    const verified = new Map([
      ['tpl/page.py', { wheel: 'tpl-1.0-py3-none-any.whl', distribution: 'tpl', bytecode: false }],
      ['old/py2.py', { wheel: 'old-1.0-py3-none-any.whl', distribution: 'old', bytecode: true }],
    ]);
    const staged = await stageExport(archive(files), path.join(root, 'site-packages'), { verified });
    const byPath = new Map(staged.findings.map((f) => [f.evidence.path, f]));
    expect(byPath.get('tpl/page.py')).toEqual(
      expect.objectContaining({
        rule: 'static.inert-source',
        severity: 'low',
        package: 'tpl',
        message: expect.stringContaining('tpl-1.0-py3-none-any.whl ships it as it is, with no bytecode for it, so it cannot run'),
        evidence: expect.objectContaining({ wheel: 'tpl-1.0-py3-none-any.whl', error: expect.stringMatching(/^SyntaxError/) }),
      }),
    );
    expect(byPath.get('old/py2.py')).toEqual(
      expect.objectContaining({
        rule: 'static.invalid-source',
        severity: 'high',
        evidence: expect.objectContaining({ wheel: 'old-1.0-py3-none-any.whl', bytecode: true }),
      }),
    );
    expect(byPath.get('own/broken.py')).toEqual(expect.objectContaining({ rule: 'static.invalid-source', severity: 'high' }));
    expect(staged.findings).toHaveLength(3);
    await staged.discard();
  });

  it('replaces an earlier export, but refuses a directory of the user own and discards the staging dir', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'publish-'));
    const output = path.join(root, 'site-packages');
    await (await stageExport(archive({ 'old.py': '' }), output)).publish();
    await (await stageExport(archive({ 'new.py': '' }), output)).publish();
    expect((await readdir(output)).sort()).toEqual([MANIFEST_NAME, '__pycache__', 'new.py']);

    const mine = path.join(root, 'my-project');
    await mkdir(mine);
    await writeFile(path.join(mine, 'precious.txt'), 'keep me');
    const staged = await stageExport(archive({ 'x.py': '' }), mine);
    await expect(staged.publish()).rejects.toThrow(InputError);
    expect(await readdir(mine)).toEqual(['precious.txt']);
    expect((await readdir(root)).sort()).toEqual(['my-project', 'site-packages']);
  });

  it('lets concurrent publishes to one output take turns: all succeed and only the output is left beside it', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'publish-'));
    const output = path.join(root, 'site-packages');
    const names = ['a.py', 'b.py', 'c.py'];
    const staged = await Promise.all(names.map((name) => stageExport(archive({ [name]: '' }), output)));
    const results = await Promise.allSettled(staged.map((s) => s.publish()));
    expect(results.map((r) => r.status)).toEqual(names.map(() => 'fulfilled'));
    // No .staging-*, no .old, no lock: the last to publish won, whole.
    expect(await readdir(root)).toEqual(['site-packages']);
    const files = (await readdir(output)).filter((f) => f.endsWith('.py'));
    expect(files).toHaveLength(1);
    expect(names).toContain(files[0]);
  });

  it('refuses a dangling symbolic link as the output with a clear error, and leaves no staging dir', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'publish-'));
    const output = path.join(root, 'site-packages');
    await symlink(path.join(root, 'nowhere'), output);
    const staged = await stageExport(archive({ 'x.py': '' }), output);
    const error = await staged.publish().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InputError);
    expect(error).toMatchObject({
      code: 'output.unusable',
      message: `cannot use --output ${output}: it is a symbolic link to ${path.join(root, 'nowhere')}, which does not exist`,
    });
    expect(await readdir(root)).toEqual(['site-packages']);
  });

  it('takes over a lock left by a dead process on this host', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'publish-'));
    const output = path.join(root, 'site-packages');
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    await writeFile(path.join(root, '.site-packages.lock'), JSON.stringify({ pid: dead, host: hostname(), id: 'crashed-run' }));
    // No waiting: a dead holder is taken over at once.
    await (await stageExport(archive({ 'x.py': '' }), output, { lock: { timeoutMs: 0 } })).publish();
    expect(await readdir(root)).toEqual(['site-packages']);
    expect(await readdir(output)).toContain('x.py');
  });

  it('waits for a live holder of the lock, then fails naming the lock file, and leaves no staging dir', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'publish-'));
    const output = path.join(root, 'site-packages');
    const lock = path.join(root, '.site-packages.lock');
    await writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), id: 'another-run' }));
    const sleeps: number[] = [];
    const sleep = async (ms: number) => void sleeps.push(ms);
    const staged = await stageExport(archive({ 'x.py': '' }), output, { lock: { timeoutMs: 300, retryMs: 100, sleep } });
    const error = await staged.publish().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(error).toMatchObject({
      code: 'output.locked',
      message: `the lock ${lock} is held by pid ${process.pid} on ${hostname()}; gave up after 0.3 s`,
      hint: `another sandbox-install run is publishing to the same --output; if none is, remove ${lock}`,
    });
    expect(sleeps).toEqual([100, 100, 100]);
    // The other run's lock stays; nothing of ours does.
    expect(await readdir(root)).toEqual(['.site-packages.lock']);
  });
});
