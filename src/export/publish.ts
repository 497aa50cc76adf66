/**
 * Export the target site-packages: extract the (hostile) archive into a temp dir beside the output,
 * write the manifest, then rename into place under a lock beside the output. A failed or refused
 * export leaves nothing behind.
 */
import { chmod, lstat, mkdir, mkdtemp, readdir, readlink, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { EnvironmentError, InputError } from '../errors.js';
import { finding, type Finding } from '../core/finding.js';
import type { MakeRunDir } from '../core/run-record.js';
import { compileTree, type CompileResult } from './bytecode.js';
import { extractArchive, type ExtractResult } from './extract.js';
import { lockFileFor, withLockFile, type LockOptions } from './lock-file.js';
import type { FileDigest } from './sync-fs.js';
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

const NO_ROOM = { ENOSPC: 'no space left on device', EDQUOT: 'disk quota exceeded' } as const;
type NoRoom = keyof typeof NO_ROOM;

/** A full output disk is the machine's problem (exit 3), not the package's nor an inconclusive install. */
function noRoomError(code: NoRoom, target: string, cause: unknown): EnvironmentError {
  return new EnvironmentError('export.disk-full', `no space left to export to ${target}: ${code} (${NO_ROOM[code]})`, {
    cause,
    hint: `free space on the disk of ${path.dirname(target)}, or choose an --output on a disk with room`,
  });
}

/** `error` as export.disk-full when ENOSPC or EDQUOT is anywhere in its cause chain; any other error as it is. */
export function diskFullOr(error: unknown, target: string): unknown {
  if (error instanceof EnvironmentError) return error;
  for (let e = error, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return noRoomError(code, target, error);
  }
  return error;
}

/**
 * The compiler's report of a pyc the disk had no room for (errno 28 ENOSPC, 122 EDQUOT). No source
 * can raise it (compile() raises SyntaxError, ValueError and the like): it says nothing of the package.
 */
function bytecodeNoRoom(compiled: CompileResult | null): NoRoom | null {
  const errno = compiled?.failures.map((failure) => /^OSError: \[Errno (28|122)\]/.exec(failure.error)?.[1]).find(Boolean);
  return errno === undefined ? null : errno === '28' ? 'ENOSPC' : 'EDQUOT';
}

/** `__pycache__` anywhere: left out of every export, and rebuilt from the verified sources. */
const inBytecodeCache = (rel: string): boolean => rel.split('/').includes('__pycache__');

/** mkdtemp: a staging dir no run record names. */
const unrecorded: MakeRunDir = (parent, prefix) => mkdtemp(path.join(parent, prefix));

/**
 * A staging dir beside `output` (the same filesystem, so moving it into place is one rename), made
 * by `makeDir`: a run passes its own, which records the dir for `gc` before it exists.
 */
export async function stagingDir(output: string, makeDir: MakeRunDir = unrecorded): Promise<{ target: string; dir: string; discard: () => Promise<void> }> {
  const target = path.resolve(output);
  await mkdir(path.dirname(target), { recursive: true });
  const dir = await makeDir(path.dirname(target), `.${path.basename(target)}.staging-`);
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
    throw diskFullOr(error, target);
  }
}

/** A file the locked wheel that shipped it vouches for, byte for byte (observe/provenance.ts VerifiedFile). */
export interface ShippedFile {
  wheel: string;
  distribution: string;
  /** The wheel ships bytecode for this source. */
  bytecode: boolean;
}

/** What extraction into a staging dir did, with the digest of each file it wrote (the manifest's, without reading them back). */
export type StagedTree = ExtractResult & { digests: ReadonlyMap<string, FileDigest> };

/** A staging dir beside the output, made and not yet published. */
export type Staging = Awaited<ReturnType<typeof stagingDir>>;

/**
 * Extract the installed tree's archive into `staging`, leaving bytecode caches out. What extraction
 * refused is in the result's findings; nothing is compiled or listed yet (completeStage does that).
 */
export async function extractStaged(archive: Readable, staging: Staging): Promise<StagedTree> {
  const digests = new Map<string, FileDigest>();
  const result = await extractArchive(archive, staging.dir, {
    stripComponents: 1,
    leaveOut: inBytecodeCache,
    onWritten: (rel, digest) => digests.set(rel, digest),
  });
  return { ...result, digests };
}

export async function stageExport(
  archive: Readable,
  output: string,
  options: { lock?: LockOptions; makeDir?: MakeRunDir; verified?: ReadonlyMap<string, ShippedFile> } = {},
): Promise<StagedExport> {
  const staging = await stagingDir(output, options.makeDir);
  try {
    return await completeStage(staging, await extractStaged(archive, staging), options);
  } catch (error: unknown) {
    await staging.discard();
    throw diskFullOr(error, staging.target);
  }
}

/**
 * Make an extracted staging dir ready to publish: compile its sources on the host and list it in
 * the manifest (neither when extraction refused something: it is not published then). Whatever
 * fails, the staging dir is removed.
 */
export async function completeStage(
  staging: Staging,
  extracted: StagedTree,
  options: { lock?: LockOptions; signal?: AbortSignal; verified?: ReadonlyMap<string, ShippedFile> } = {},
): Promise<StagedExport> {
  const { target, dir, discard } = staging;
  try {
    const bytecode = extracted.findings.length === 0 ? await compileTree(dir, options.signal) : null;
    const noRoom = bytecodeNoRoom(bytecode);
    if (noRoom !== null) throw noRoomError(noRoom, target, new Error(`the bytecode compiler: ${noRoom}`));
    // Every file was hashed as it was written: by the extraction, or by the compiler.
    const written = new Map([...extracted.digests, ...(bytecode?.digests ?? [])]);
    const manifest = extracted.findings.length === 0 ? await buildManifest(dir, written) : [];
    const owner = new Map(manifest.map((entry) => [entry.path, entry.distribution?.split('==')[0] ?? null]));
    const invalid = (bytecode?.failures ?? []).map((failure) => {
      // Shipped as it is by its locked wheel, with no bytecode for it: nothing can run it (the export
      // holds no bytecode but what compileTree made, and importing it raises SyntaxError).
      const shipped = options.verified?.get(failure.path);
      return shipped && !shipped.bytecode
        ? finding(
            'static.inert-source',
            'low',
            `${failure.path} does not compile for Python 3.11 (${failure.error}); ${shipped.wheel} ships it as it is, with no bytecode for it, so it cannot run`,
            { path: failure.path, error: failure.error, wheel: shipped.wheel },
            owner.get(failure.path) ?? shipped.distribution,
          )
        : finding(
            'static.invalid-source',
            'high',
            `${failure.path} does not compile for Python 3.11: ${failure.error}${shipped ? `; ${shipped.wheel} ships bytecode for it` : ''}`,
            { path: failure.path, error: failure.error, ...(shipped ? { wheel: shipped.wheel, bytecode: true } : {}) },
            owner.get(failure.path) ?? null,
          );
    });
    return {
      dir,
      findings: [...extracted.findings, ...invalid],
      manifest,
      bytecode,
      discard,
      async publish() {
        // The manifest goes inside the tree, so nothing but the lock (gone after) is written beside the output.
        try {
          await writeManifest(path.join(dir, MANIFEST_NAME), { schemaVersion: 1, root: target, files: manifest });
        } catch (error: unknown) {
          await discard();
          throw diskFullOr(error, target);
        }
        await publishStaged(dir, target, options.lock);
        return { output: target, manifestFile: path.join(target, MANIFEST_NAME) };
      },
    };
  } catch (error: unknown) {
    await discard();
    throw diskFullOr(error, target);
  }
}
