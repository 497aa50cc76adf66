/**
 * The sandbox image: its tag is derived from the content of `images/`, so a change to the
 * Dockerfile or the monitor scripts gives a new tag and the next run rebuilds it.
 */
import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { execa } from 'execa';
import { defaultRunsDir, RunRecord } from '../core/run-record.js';
import { EnvironmentError } from '../errors.js';
import { LABEL, runOwner, type ContainerClient } from './port.js';

/** `images/` sits two levels above this file both in `src/runtime/` and in `dist/runtime/`. */
export const IMAGES_DIR = fileURLToPath(new URL('../../images/', import.meta.url));
export const ONLINE_BASE = 'python:3.11-slim';
export const BOOTSTRAP_BASE = 'sandbox-install-base:bookworm';

export type BuildPath = 'existing' | 'online' | 'bootstrap-debian';

/** On the sandbox image (and so on its build variant): its interpreter's version, `3.11.2`, read from the image when it was built. */
export const PYTHON_LABEL = 'io.sandbox-install.python';

/** A CPython release as `X.Y.Z` (no pre-release: Debian's and the python image's are final). */
export const PYTHON_RELEASE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,4})$/;

/** images/python-label/: the image plus PYTHON_LABEL (a subdirectory, so not part of the image's content hash). */
const PYTHON_LABEL_DIR = fileURLToPath(new URL('../../images/python-label/', import.meta.url));

/** On every image we build: which path made it (`online`, `bootstrap-debian`, or `build` for the build variant). */
export const BUILD_PATH_LABEL = 'io.sandbox-install.build-path';

/**
 * The build variant (images/build/Dockerfile): the sandbox image plus a C compiler and Python's
 * headers from Debian's own packages, for sdists that compile C extensions. A subdirectory, so it
 * is not part of the sandbox image's content hash: changing it rebuilds only the variant.
 */
export const BUILD_VARIANT_DIR = fileURLToPath(new URL('../../images/build/', import.meta.url));

export async function defaultImageTag(imagesDir = IMAGES_DIR): Promise<string> {
  return `sandbox-install:${(await contentHash(imagesDir)).slice(0, 12)}`;
}

/** sha256 over the names and bytes of the regular files at the top of `dir` (not its subdirectories). */
async function contentHash(dir: string): Promise<string> {
  const hash = createHash('sha256');
  const entries = await readdir(dir, { withFileTypes: true });
  for (const name of entries
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort()) {
    hash
      .update(name)
      .update('\0')
      .update(await readFile(path.join(dir, name)))
      .update('\0');
  }
  return hash.digest('hex');
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
  // Recorded before it exists, so `gc` removes a rootfs a `kill -9` left (hundreds of MB).
  const record = new RunRecord(path.join(defaultRunsDir(), `${randomUUID()}.json`));
  const work = await record.makeDir('/var/tmp', 'sandbox-install-rootfs-');
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
    await record.close();
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
    await options.client.buildImage(IMAGES_DIR, options.tag, { BASE: base, BUILD_PATH: chosen }, options.progress);
    await labelPython(options);
  } catch (error: unknown) {
    throw new EnvironmentError('image.build-failed', `building ${options.tag} failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return chosen;
}

/**
 * Read the fresh image's interpreter version (a container that runs `python3 -I -S` and nothing
 * else) and put it on the image as PYTHON_LABEL, under the same tag: runs, `doctor` and the report
 * then read it from the image's labels, without a container. An engine without the capability
 * leaves the image unlabelled (its version is then unknown, and runs hold files to the target only).
 */
async function labelPython(options: ImageBuildOptions): Promise<void> {
  if (!options.client.probeImage) return;
  const labels = { [LABEL.tool]: '1', [LABEL.session]: randomUUID(), [LABEL.owner]: runOwner(), [LABEL.role]: 'probe' };
  const printed = (await options.client.probeImage(options.tag, ['python3', '-I', '-S', '-c', PRINT_VERSION], labels, 64)).trim();
  if (!PYTHON_RELEASE.test(printed)) throw new Error(`the image's python3 printed ${JSON.stringify(printed)} for its version`);
  options.progress(`labelling ${options.tag}: Python ${printed}`);
  await options.client.buildImage(PYTHON_LABEL_DIR, options.tag, { BASE: options.tag, PYTHON_VERSION: printed }, options.progress);
}

const PRINT_VERSION = 'import platform; print(platform.python_version())';

/** The image's interpreter version from its label (null: no such image, or one built without the label, as `--image` may name). */
export async function imagePython(client: ContainerClient, image: string): Promise<string | null> {
  const info = await client.inspectImage(image);
  const label = info?.labels[PYTHON_LABEL];
  return label !== undefined && PYTHON_RELEASE.test(label) ? label : null;
}

/** The main command's first use: build the image when it is missing and say which path it took. */
export async function ensureImage(options: ImageBuildOptions): Promise<BuildPath> {
  if (await options.client.imageExists(options.tag)) return 'existing';
  return buildImage(options);
}

/**
 * The build variant's tag: the sandbox image's tag plus `-build-` and the hash of the variant's
 * directory, so a change to either gives a new tag and the next run rebuilds the variant.
 */
export async function buildVariantTag(sandboxTag: string, variantDir = BUILD_VARIANT_DIR): Promise<string> {
  const slash = sandboxTag.lastIndexOf('/');
  const colon = sandboxTag.lastIndexOf(':');
  const [repo, tag] = colon > slash ? [sandboxTag.slice(0, colon), sandboxTag.slice(colon + 1)] : [sandboxTag, 'latest'];
  return `${repo}:${tag}-build-${(await contentHash(variantDir)).slice(0, 8)}`;
}

export interface VariantBuildOptions {
  client: ContainerClient;
  /** The sandbox image it is built FROM; it must exist. */
  base: string;
  tag: string;
  progress: (line: string) => void;
  variantDir?: string;
}

/**
 * Build the variant when it is missing. It runs `apt-get install gcc libc6-dev` (and Python's
 * headers when the base lacks them) on top of the sandbox image: the Debian archive must be
 * reachable from `docker build`, as it is for the bootstrap path.
 */
export async function ensureBuildVariant(options: VariantBuildOptions): Promise<'existing' | 'build'> {
  if (await options.client.imageExists(options.tag)) return 'existing';
  options.progress(`building ${options.tag} FROM ${options.base} (adds a C compiler from Debian)`);
  try {
    await options.client.buildImage(options.variantDir ?? BUILD_VARIANT_DIR, options.tag, { BASE: options.base }, options.progress);
  } catch (error: unknown) {
    throw new EnvironmentError('image.build-failed', `building ${options.tag} failed: ${(error as Error).message}`, {
      cause: error,
      hint: 'the build image installs gcc with apt-get: the Debian archive must be reachable from docker build',
    });
  }
  return 'build';
}
