/**
 * Export the target site-packages: extract the (hostile) archive into a temp dir beside the output,
 * write the manifest, then rename into place under a lock beside the output. A failed or refused
 * export leaves nothing behind.
 */
import { chmod, lstat, mkdir, mkdtemp, readdir, readlink, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { InputError } from '../errors.js';
import { finding, type Finding } from '../core/finding.js';
import { compileTree, type CompileResult } from './bytecode.js';
import { extractArchive } from './extract.js';
import { lockFileFor, withLockFile, type LockOptions } from './lock-file.js';
import { buildManifest, writeManifest, type ManifestEntry } from './manifest.js';

export interface StagedExport {
  /** The temp dir holding the extracted tree, beside the output. */
  dir: string;
  findings: Finding[];
  manifest: ManifestEntry[];
  /** What the host compiled (bytecode from the sandbox is never exported). */
  bytecode: CompileResult | null;
  /** Rename into place; replaces an earlier export at the same path. */
  publish(): Promise<{ output: string; manifestFile: string }>;
  discard(): Promise<void>;
}

/** Written at the top of every export; its presence marks a directory we may replace. */
export const MANIFEST_NAME = '.sandbox-install-manifest.json';

/** Only an earlier export (or nothing, or an empty dir) may be replaced: never a user's own files. */
export async function assertReplaceable(target: string): Promise<void> {
  // readdir follows a link: a dangling one reads as nothing there, and the rename onto it fails.
  const link = await lstat(target).catch(() => null);
  if (link?.isSymbolicLink() && !(await exists(target))) {
    throw new InputError('output.unusable', `cannot use --output ${target}: it is a symbolic link to ${await readlink(target)}, which does not exist`, {
      hint: 'remove the link, or choose another --output directory',
    });
  }
  let entries: string[];
  try {
    entries = await readdir(target);
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new InputError('output.unusable', `cannot use --output ${target}: ${(error as Error).message}`);
  }
  if (entries.length > 0 && !entries.includes(MANIFEST_NAME)) {
    throw new InputError('output.not-ours', `refusing to replace ${target}: it is not empty and not an earlier sandbox-install export`, {
      hint: 'choose an empty or new --output directory',
    });
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** `__pycache__` anywhere: left out of every export, and rebuilt from the verified sources. */
const inBytecodeCache = (rel: string): boolean => rel.split('/').includes('__pycache__');

/** A staging dir beside `output` (the same filesystem, so moving it into place is one rename). */
export async function stagingDir(output: string): Promise<{ target: string; dir: string; discard: () => Promise<void> }> {
  const target = path.resolve(output);
  await mkdir(path.dirname(target), { recursive: true });
  const dir = await mkdtemp(path.join(path.dirname(target), `.${path.basename(target)}.staging-`));
  return { target, dir, discard: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Move a staged dir into place, replacing an earlier output of ours (the caller checked it with
 * assertReplaceable). It gets the mode a new directory has (0755), not mkdtemp's 0700: what is
 * published is meant to be read, by other users too. A failed rename puts the earlier output back.
 */
async function moveIntoPlace(dir: string, target: string): Promise<void> {
  await chmod(dir, 0o755);
  const old = `${dir}.old`;
  const hadOld = await exists(target);
  if (hadOld) await rename(target, old);
  try {
    await rename(dir, target);
  } catch (error: unknown) {
    if (hadOld) await rename(old, target);
    throw error;
  }
  if (hadOld) await rm(old, { recursive: true, force: true });
}

/**
 * The last step of every publish (export and wheelhouse): holding the lock beside the output, check
 * that what is there may be replaced and rename the staged dir over it. Two runs publishing to one
 * output take turns; whatever fails, the staged dir is removed.
 */
export async function publishStaged(dir: string, target: string, lock: LockOptions = {}): Promise<void> {
  try {
    await withLockFile(
      lockFileFor(target),
      async () => {
        await assertReplaceable(target);
        await moveIntoPlace(dir, target);
      },
      lock,
    );
  } catch (error: unknown) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

export async function stageExport(archive: Readable, output: string, options: { lock?: LockOptions } = {}): Promise<StagedExport> {
  const { target, dir, discard } = await stagingDir(output);
  try {
    const result = await extractArchive(archive, dir, { stripComponents: 1, leaveOut: inBytecodeCache });
    const bytecode = result.findings.length === 0 ? await compileTree(dir) : null;
    const manifest = result.findings.length === 0 ? await buildManifest(dir) : [];
    const owner = new Map(manifest.map((entry) => [entry.path, entry.distribution?.split('==')[0] ?? null]));
    const invalid = (bytecode?.failures ?? []).map((failure) =>
      finding(
        'static.invalid-source',
        'high',
        `${failure.path} does not compile for Python 3.11: ${failure.error}`,
        { path: failure.path, error: failure.error },
        owner.get(failure.path) ?? null,
      ),
    );
    return {
      dir,
      findings: [...result.findings, ...invalid],
      manifest,
      bytecode,
      discard,
      async publish() {
        // The manifest goes inside the tree, so nothing but the lock (gone after) is written beside the output.
        try {
          await writeManifest(path.join(dir, MANIFEST_NAME), { schemaVersion: 1, root: target, files: manifest });
        } catch (error: unknown) {
          await discard();
          throw error;
        }
        await publishStaged(dir, target, options.lock);
        return { output: target, manifestFile: path.join(target, MANIFEST_NAME) };
      },
    };
  } catch (error: unknown) {
    await discard();
    throw error;
  }
}
