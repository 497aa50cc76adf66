/**
 * Issue 10: the output directory's disk is full. Publishing onto a 1 MiB tmpfs a tree that does not
 * fit must fail as the machine's problem (EnvironmentError, exit 3, naming the output and ENOSPC),
 * never as the package's (a finding) nor as an inconclusive install (exit 4); and it must leave the
 * disk as it found it: no partial output, an earlier export untouched, no staging dir, no lock.
 * Needs root (mount); skipped with the reason otherwise.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EnvironmentError, exitCodeFor } from '../errors.js';
import { MANIFEST_NAME, publishStaged, stageExport } from './publish.js';

/** Why the tests cannot run here, or null: mounting a tmpfs needs root and a kernel that lets us. */
function cannotMount(): string | null {
  if (process.getuid?.() !== 0) return 'not root: mounting a small tmpfs needs root';
  const probe = spawnSync('sh', ['-c', 'd=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs "$d" && umount "$d"; s=$?; rmdir "$d"; exit $s'], {
    encoding: 'utf8',
  });
  return probe.status === 0 ? null : `cannot mount a tmpfs here: ${probe.stderr.trim() || `exit ${probe.status}`}`;
}

const SKIP = cannotMount();
if (SKIP !== null) console.warn(`disk-full tests skipped: ${SKIP}`);

function archive(files: Record<string, string | Buffer>): Readable {
  const pack = tarStream.pack();
  pack.entry({ name: 'site-packages/', type: 'directory', mode: 0o755 });
  for (const [name, content] of Object.entries(files)) pack.entry({ name: `site-packages/${name}`, mode: 0o644 }, content);
  pack.finalize();
  return pack as unknown as Readable;
}

/** Every file under `dir` with its content, by relative path: what "left exactly as it was" compares. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
  const contents = await Promise.all(files.map(async (file) => [file, (await readFile(path.join(dir, file))).toString('base64')] as const));
  return Object.fromEntries(contents.sort(([a], [b]) => a.localeCompare(b)));
}

describe.skipIf(SKIP !== null)('publishing onto a full disk', () => {
  let disk = '';

  beforeEach(async () => {
    disk = await mkdtemp(path.join(tmpdir(), 'sandbox-install-full-'));
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', disk], { encoding: 'utf8' });
    if (mounted.status !== 0) throw new Error(`mount failed: ${mounted.stderr}`);
  });

  afterEach(async () => {
    spawnSync('umount', [disk]);
    await rm(disk, { recursive: true, force: true });
  });

  /** The error a full output disk must give: the machine's (exit 3), naming the output and ENOSPC. */
  async function expectDiskFull(staging: Promise<unknown>, output: string): Promise<void> {
    const error = await staging.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(error).toMatchObject({ code: 'export.disk-full' });
    expect((error as Error).message).toBe(`no space left to export to ${output}: ENOSPC (no space left on device)`);
    expect(exitCodeFor(error)).toBe(3);
  }

  it('a tree bigger than the disk: exit 3 naming the output and ENOSPC, no output, no staging dir', async () => {
    const output = path.join(disk, 'site-packages');
    const tree = { 'pkg/__init__.py': 'X = 1\n', 'pkg/blob.bin': randomBytes(2 * 1024 ** 2) };
    await expectDiskFull(
      stageExport(archive(tree), output).then((staged) => staged.publish()),
      output,
    );
    expect(await readdir(disk)).toEqual([]);
  });

  it('an earlier export is left exactly as it was, and nothing else is left beside it', async () => {
    const output = path.join(disk, 'site-packages');
    await mkdir(path.join(output, 'old'), { recursive: true });
    await writeFile(path.join(output, MANIFEST_NAME), JSON.stringify({ schemaVersion: 1, root: output, files: [] }));
    await writeFile(path.join(output, 'old', '__init__.py'), 'OLD = True\n');
    await writeFile(path.join(output, 'old', 'data.bin'), randomBytes(300 * 1024));
    const before = await snapshot(output);

    const tree = { 'new/__init__.py': 'NEW = True\n', 'new/blob.bin': randomBytes(900 * 1024) };
    await expectDiskFull(
      stageExport(archive(tree), output).then((staged) => staged.publish()),
      output,
    );
    expect(await readdir(disk)).toEqual(['site-packages']);
    expect(await snapshot(output)).toEqual(before);
  });

  it('a tree that fits but whose bytecode does not: the disk is blamed, not the package (no static.invalid-source)', async () => {
    const output = path.join(disk, 'site-packages');
    // tmpfs counts whole pages: 1 MiB is 256 of 4 KiB. The blob and 8 sources take all 256; not one pyc file
    // (written to a temp name, then renamed) fits.
    const sources = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`pkg/m${i}.py`, `VALUE = ${i}\n`]));
    const tree = { ...sources, 'pkg/blob.bin': randomBytes(248 * 4096) };
    await expectDiskFull(
      stageExport(archive(tree), output).then((staged) => staged.publish()),
      output,
    );
    expect(await readdir(disk)).toEqual([]);
  });

  it('a staged tree whose lock beside the output cannot be written: exit 3, and no lock file left to block the next run', async () => {
    const output = path.join(disk, 'site-packages');
    const staged = path.join(disk, '.site-packages.staging-test');
    await mkdir(staged);
    await writeFile(path.join(staged, 'mod.py'), 'X = 1\n');
    // Fill what is left: a directory and an empty file take no page on tmpfs, the lock's holder does.
    await writeFile(path.join(disk, 'filler'), randomBytes(1024 ** 2)).catch(() => undefined);
    await expectDiskFull(publishStaged(staged, output, { timeoutMs: 200, retryMs: 50 }), output);
    expect(await readdir(disk)).toEqual(['filler']);
  });
});
