import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { EnvironmentError } from '../errors.js';
import { BUILD_VARIANT_DIR, buildVariantTag, defaultImageTag, ensureBuildVariant, ensureImage, imagePython, IMAGES_DIR, PYTHON_LABEL } from './image.js';
import { LABEL, type ContainerClient } from './port.js';

describe('defaultImageTag', () => {
  it('follows the content of the files in images/ and ignores directories such as __pycache__', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'images-'));
    await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\n');
    await writeFile(path.join(dir, 'monitor.py'), 'print(1)\n');
    const first = await defaultImageTag(dir);
    expect(first).toMatch(/^sandbox-install:[0-9a-f]{12}$/);

    await mkdir(path.join(dir, '__pycache__'));
    await writeFile(path.join(dir, '__pycache__', 'monitor.cpython-311.pyc'), 'x');
    expect(await defaultImageTag(dir)).toBe(first);

    await writeFile(path.join(dir, 'monitor.py'), 'print(2)\n');
    expect(await defaultImageTag(dir)).not.toBe(first);
  });

  it('finds the bundled images/ directory', async () => {
    expect(await defaultImageTag(IMAGES_DIR)).toMatch(/^sandbox-install:[0-9a-f]{12}$/);
  });
});

describe('the build variant', () => {
  it("is tagged from the sandbox image's tag and the content of images/build/", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'variant-'));
    await writeFile(path.join(dir, 'Dockerfile'), 'ARG BASE\nFROM ${BASE}\n');
    const first = await buildVariantTag('sandbox-install:0123456789ab', dir);
    expect(first).toMatch(/^sandbox-install:0123456789ab-build-[0-9a-f]{8}$/);
    expect(await buildVariantTag('registry.test:5000/team/sandbox', dir)).toBe(`registry.test:5000/team/sandbox:latest-build-${first.slice(-8)}`);
    await writeFile(path.join(dir, 'Dockerfile'), 'ARG BASE\nFROM ${BASE}\nRUN true\n');
    expect(await buildVariantTag('sandbox-install:0123456789ab', dir)).not.toBe(first);
    expect(await buildVariantTag('sandbox-install:x', BUILD_VARIANT_DIR)).toMatch(/^sandbox-install:x-build-[0-9a-f]{8}$/);
  });

  function engine(exists: boolean, fail = false) {
    const builds: Array<{ context: string; tag: string; args: Record<string, string> }> = [];
    const client = {
      imageExists: async () => exists,
      buildImage: async (context: string, tag: string, args: Record<string, string>) => {
        if (fail) throw new Error('apt-get: cannot reach deb.debian.org');
        builds.push({ context, tag, args });
      },
    } as unknown as ContainerClient;
    return { client, builds };
  }

  it('is built FROM the sandbox image from images/build/ only when missing', async () => {
    const missing = engine(false);
    expect(await ensureBuildVariant({ client: missing.client, base: 'sandbox-install:abc', tag: 'sandbox-install:abc-build-1', progress: () => {} })).toBe(
      'build',
    );
    expect(missing.builds).toEqual([{ context: BUILD_VARIANT_DIR, tag: 'sandbox-install:abc-build-1', args: { BASE: 'sandbox-install:abc' } }]);
    const present = engine(true);
    expect(await ensureBuildVariant({ client: present.client, base: 'sandbox-install:abc', tag: 'sandbox-install:abc-build-1', progress: () => {} })).toBe(
      'existing',
    );
    expect(present.builds).toEqual([]);
  });

  it('says what a failed build needs', async () => {
    const failing = engine(false, true);
    const error = await ensureBuildVariant({ client: failing.client, base: 'b', tag: 'b:x-build-1', progress: () => {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(error).toMatchObject({
      code: 'image.build-failed',
      message: 'building b:x-build-1 failed: apt-get: cannot reach deb.debian.org',
      hint: 'the build image installs gcc with apt-get: the Debian archive must be reachable from docker build',
    });
  });
});

describe('the sandbox image on first use', () => {
  /** An engine that has only the images named, and records builds (failing them when `fail`). */
  function engine(present: string[], fail = false) {
    const builds: Array<{ context: string; tag: string; args: Record<string, string> }> = [];
    const client = {
      imageExists: async (ref: string) => present.includes(ref),
      buildImage: async (context: string, tag: string, args: Record<string, string>) => {
        if (fail) throw new Error('the engine refused the build context');
        builds.push({ context, tag, args });
      },
    } as unknown as ContainerClient;
    return { client, builds };
  }

  it('is used as it is when present, and built from images/ when missing', async () => {
    const present = engine(['sandbox-install:abc']);
    expect(await ensureImage({ client: present.client, tag: 'sandbox-install:abc', base: 'online', progress: () => {} })).toBe('existing');
    expect(present.builds).toEqual([]);

    const missing = engine(['sandbox-install-base:bookworm']);
    expect(await ensureImage({ client: missing.client, tag: 'sandbox-install:abc', base: 'auto', progress: () => {} })).toBe('bootstrap-debian');
    expect(missing.builds).toEqual([
      { context: IMAGES_DIR, tag: 'sandbox-install:abc', args: { BASE: 'sandbox-install-base:bookworm', BUILD_PATH: 'bootstrap-debian' } },
    ]);
  });

  it("a built image is labelled with its interpreter's version, as a probe of it printed it", async () => {
    const { client, builds } = engine(['sandbox-install-base:bookworm']);
    const probes: Array<{ image: string; cmd: string[]; role: string | undefined }> = [];
    const probing = Object.assign(client, {
      probeImage: async (image: string, cmd: string[], labels: Record<string, string>) => {
        probes.push({ image, cmd, role: labels[LABEL.role] });
        return '3.11.2\n';
      },
    });
    expect(await ensureImage({ client: probing, tag: 'sandbox-install:abc', base: 'auto', progress: () => {} })).toBe('bootstrap-debian');
    expect(probes).toEqual([
      { image: 'sandbox-install:abc', cmd: ['python3', '-I', '-S', '-c', 'import platform; print(platform.python_version())'], role: 'probe' },
    ]);
    expect(builds.map((b) => [path.basename(b.context), b.tag, b.args])).toEqual([
      ['images', 'sandbox-install:abc', { BASE: 'sandbox-install-base:bookworm', BUILD_PATH: 'bootstrap-debian' }],
      ['python-label', 'sandbox-install:abc', { BASE: 'sandbox-install:abc', PYTHON_VERSION: '3.11.2' }],
    ]);
    // What the label says is read back only when it is a release.
    const labelled = (label: string) =>
      ({ inspectImage: async () => ({ created: '', sizeBytes: 0, labels: { [PYTHON_LABEL]: label } }) }) as unknown as ContainerClient;
    expect(await imagePython(labelled('3.11.2'), 'sandbox-install:abc')).toBe('3.11.2');
    expect(await imagePython(labelled('3.11.2; rm -rf'), 'sandbox-install:abc')).toBeNull();
  });

  it('a probe that prints something else than a version fails the build (exit 3)', async () => {
    const { client } = engine(['sandbox-install-base:bookworm']);
    const probing = Object.assign(client, { probeImage: async () => 'Python 3.11.2\n' });
    await expect(ensureImage({ client: probing, tag: 'sandbox-install:abc', base: 'auto', progress: () => {} })).rejects.toMatchObject({
      code: 'image.build-failed',
    });
  });

  it('a build that fails is an environment error (exit 3) naming the image', async () => {
    const failing = engine(['sandbox-install-base:bookworm'], true);
    const error = await ensureImage({ client: failing.client, tag: 'sandbox-install:abc', base: 'auto', progress: () => {} }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EnvironmentError);
    expect(error).toMatchObject({ code: 'image.build-failed', message: 'building sandbox-install:abc failed: the engine refused the build context' });
  });
});
