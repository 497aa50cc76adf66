/**
 * Export the target site-packages: extract the (hostile) archive into a temp dir beside the output,
 * write the manifest, then rename into place. A failed or refused export leaves nothing behind.
 */
import { mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Finding } from '../report/finding.js';
import { extractArchive } from './extract.js';
import { buildManifest, writeManifest, type ManifestEntry } from './manifest.js';

export interface StagedExport {
  /** The temp dir holding the extracted tree, beside the output. */
  dir: string;
  findings: Finding[];
  manifest: ManifestEntry[];
  /** Rename into place; replaces an earlier export at the same path. */
  publish(): Promise<{ output: string; manifestFile: string }>;
  discard(): Promise<void>;
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

export async function stageExport(archive: Readable, output: string): Promise<StagedExport> {
  const target = path.resolve(output);
  await mkdir(path.dirname(target), { recursive: true });
  const dir = await mkdtemp(path.join(path.dirname(target), `.${path.basename(target)}.staging-`));
  const discard = () => rm(dir, { recursive: true, force: true });
  try {
    const result = await extractArchive(archive, dir, { stripComponents: 1 });
    const manifest = result.findings.length === 0 ? await buildManifest(dir) : [];
    return {
      dir,
      findings: result.findings,
      manifest,
      discard,
      async publish() {
        const manifestFile = `${target}.manifest.json`;
        const old = `${dir}.old`;
        const hadOld = await exists(target);
        if (hadOld) await rename(target, old);
        await rename(dir, target);
        if (hadOld) await rm(old, { recursive: true, force: true });
        await writeManifest(manifestFile, { schemaVersion: 1, root: target, files: manifest });
        return { output: target, manifestFile };
      },
    };
  } catch (error: unknown) {
    await discard();
    throw error;
  }
}
