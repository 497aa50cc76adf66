/** `sandbox-install image build [--bootstrap debian]`: build the sandbox image, offline-capable. */
import { z } from 'zod';
import { EXIT } from '../../errors.js';
import { buildImage, buildVariantTag, defaultImageTag, ensureBuildVariant } from '../../runtime/image.js';
import type { CommandContext } from '../context.js';
import { parseOptions } from '../options.js';

const ImageBuildOptions = z.object({
  bootstrap: z.enum(['debian']).optional(),
  online: z.boolean().default(false),
  tag: z.string().optional(),
  /** `--with-build-image`: also build the build variant (a C compiler from Debian) FROM the image just built. */
  withBuildImage: z.boolean().default(false),
});

export async function runImageBuild(raw: unknown, ctx: CommandContext): Promise<number> {
  const options = parseOptions(ImageBuildOptions, raw);
  const client = ctx.engine();
  await client.ping();
  const tag = options.tag ?? (await defaultImageTag());
  const base = options.bootstrap === 'debian' ? 'debian' : options.online ? 'online' : 'auto';
  const started = performance.now();
  const path = await buildImage({ client, tag, base, signal: ctx.signal, progress: (line) => ctx.logger.info(line) });
  process.stdout.write(`built ${tag} (${path}) in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  if (options.withBuildImage) {
    const variant = await buildVariantTag(tag);
    const from = performance.now();
    const made = await ensureBuildVariant({ client, base: tag, tag: variant, progress: (line) => ctx.logger.info(line) });
    process.stdout.write(`${made === 'existing' ? 'found' : 'built'} ${variant} (build image) in ${((performance.now() - from) / 1000).toFixed(1)} s\n`);
  }
  return EXIT.pass;
}
