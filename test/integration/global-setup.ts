/**
 * Integration tests need a real engine and the sandbox image. Locally they skip when no engine
 * answers; under CI=true a missing engine fails the run.
 */
import { DockerClient } from '../../src/runtime/docker.js';
import { buildVariantTag, defaultImageTag, ensureBuildVariant, ensureImage } from '../../src/runtime/image.js';

export default async function setup({ provide }: { provide: (key: string, value: unknown) => void }): Promise<void> {
  const client = new DockerClient();
  try {
    await client.ping();
  } catch (error: unknown) {
    if (process.env.CI === 'true') throw new Error(`CI=true and no container engine answers: ${(error as Error).message}`, { cause: error });
    process.stderr.write('integration: no container engine answers; skipping integration tests (CI=true makes this a failure)\n');
    provide('engine', false);
    return;
  }
  const image = await defaultImageTag();
  const path = await ensureImage({ client, tag: image, base: 'auto', progress: (line) => process.stderr.write(`image: ${line}\n`) });
  process.stderr.write(`integration: engine answers; image ${image} (${path})\n`);
  // The build variant (a C compiler from Debian) for wheelhouse tests: built once here, about 20 s.
  const buildImage = await buildVariantTag(image);
  const variant = await ensureBuildVariant({ client, base: image, tag: buildImage, progress: (line) => process.stderr.write(`build image: ${line}\n`) });
  process.stderr.write(`integration: build image ${buildImage} (${variant})\n`);
  provide('engine', true);
  provide('image', image);
  provide('buildImage', buildImage);
}

declare module 'vitest' {
  export interface ProvidedContext {
    engine: boolean;
    image: string;
    buildImage: string;
  }
}
