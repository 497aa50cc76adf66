/**
 * The sandbox image: its tag is derived from the content of `images/`, so a change to the
 * Dockerfile or the monitor scripts gives a new tag and the next run rebuilds it.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { execa } from 'execa';
import { EnvironmentError } from '../errors.js';
import type { ContainerClient } from './port.js';

/** `images/` sits two levels above this file both in `src/runtime/` and in `dist/runtime/`. */
export const IMAGES_DIR = fileURLToPath(new URL('../../images/', import.meta.url));
export const ONLINE_BASE = 'python:3.11-slim';
export const BOOTSTRAP_BASE = 'sandbox-install-base:bookworm';

export type BuildPath = 'existing' | 'online' | 'bootstrap-debian';

export async function defaultImageTag(imagesDir = IMAGES_DIR): Promise<string> {
  const hash = createHash('sha256');
  // Only the regular files at the top of images/ make the build context that matters.
  const entries = await readdir(imagesDir, { withFileTypes: true });
  for (const name of entries
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort()) {
    hash
      .update(name)
      .update('\0')
      .update(await readFile(path.join(imagesDir, name)))
      .update('\0');
  }
  return `sandbox-install:${hash.digest('hex').slice(0, 12)}`;
}

export interface ImageBuildOptions {
  client: ContainerClient;
  tag: string;
  /** 'debian': debootstrap the base offline. 'online': build FROM python:3.11-slim. 'auto': whichever works. */
  base: 'debian' | 'online' | 'auto';
  progress: (line: string) => void;
  signal?: AbortSignal;
}

/**
 * Build the Debian base, unless it is already there: debootstrap a rootfs (the script, which
 * touches no engine), then import it through the engine port (`docker import`).
 */
async function bootstrapDebian(options: ImageBuildOptions): Promise<void> {
  if (await options.client.imageExists(BOOTSTRAP_BASE)) {
    options.progress(`base ${BOOTSTRAP_BASE} already present`);
    return;
  }
  const work = await mkdtemp(path.join('/var/tmp', 'sandbox-install-rootfs-'));
  try {
    const child = execa('bash', [path.join(IMAGES_DIR, 'bootstrap-debian.sh'), work], { all: true, reject: false, cancelSignal: options.signal });
    for await (const line of child.iterable({ from: 'all' })) options.progress(String(line));
    const result = await child;
    if (result.exitCode !== 0) {
      throw new EnvironmentError('image.bootstrap-failed', `debootstrap of the Debian base failed (exit ${result.exitCode})`, {
        hint: 'run as root on Debian with debootstrap and access to a Debian mirror',
      });
    }
    options.progress(`importing the rootfs as ${BOOTSTRAP_BASE}`);
    // GNU tar keeps owners, modes and device nodes as debootstrap made them.
    const tar = execa('tar', ['-C', path.join(work, 'rootfs'), '-c', '.'], { stdout: 'pipe', buffer: false, cancelSignal: options.signal });
    await Promise.all([options.client.importImage(tar.stdout, BOOTSTRAP_BASE, BOOTSTRAP_CHANGES, options.progress), tar]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const BOOTSTRAP_CHANGES = ['ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'CMD ["/bin/bash"]'];

async function chooseBase(options: ImageBuildOptions): Promise<'online' | 'bootstrap-debian'> {
  if (options.base === 'debian') return 'bootstrap-debian';
  if (options.base === 'online') return 'online';
  if (await options.client.imageExists(BOOTSTRAP_BASE)) return 'bootstrap-debian';
  if (await options.client.imageExists(ONLINE_BASE)) return 'online';
  try {
    options.progress(`pulling ${ONLINE_BASE}`);
    await options.client.pullImage(ONLINE_BASE, options.progress);
    return 'online';
  } catch (error: unknown) {
    options.progress(`cannot pull ${ONLINE_BASE} (${(error as Error).message}); bootstrapping Debian instead`);
    return 'bootstrap-debian';
  }
}

export async function buildImage(options: ImageBuildOptions): Promise<BuildPath> {
  const chosen = await chooseBase(options);
  if (chosen === 'bootstrap-debian') await bootstrapDebian(options);
  const base = chosen === 'bootstrap-debian' ? BOOTSTRAP_BASE : ONLINE_BASE;
  options.progress(`building ${options.tag} FROM ${base}`);
  try {
    await options.client.buildImage(IMAGES_DIR, options.tag, { BASE: base }, options.progress);
  } catch (error: unknown) {
    throw new EnvironmentError('image.build-failed', `building ${options.tag} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return chosen;
}

/** The main command's first use: build the image when it is missing and say which path it took. */
export async function ensureImage(options: ImageBuildOptions): Promise<BuildPath> {
  if (await options.client.imageExists(options.tag)) return 'existing';
  return buildImage(options);
}
