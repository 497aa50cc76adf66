/** `sandbox-install wheelhouse <lockfile> -o <dir>`: its flags, one workflow call, the summary. */
import { z } from 'zod';
import { wheelhouse } from '../../workflows/wheelhouse.js';
import type { CommandContext } from '../context.js';
import { parseOptions } from '../options.js';
import { renderReport, SandboxOptions } from '../output.js';

export const WheelhouseOptions = SandboxOptions.extend({
  output: z.string({ error: 'the wheelhouse directory is required (-o <dir>)' }),
  policy: z.string().default('default'),
  /** --build-image / --no-build-image; absent: the build image when some requirement is locked to sdists only. */
  buildImage: z.boolean().optional(),
});
export type WheelhouseOptions = z.infer<typeof WheelhouseOptions>;

export async function runWheelhouse(lockfile: string, raw: unknown, ctx: CommandContext): Promise<number> {
  const options = parseOptions(WheelhouseOptions, raw);
  const { exitCode, report } = await wheelhouse(
    {
      lockfile,
      indexUrl: options.indexUrl,
      extraIndexUrls: options.extraIndexUrl,
      policy: options.policy,
      output: options.output,
      report: options.report,
      timeoutSeconds: options.timeout,
      image: options.image,
      cacheDir: options.cacheDir,
      buildImage: options.buildImage,
    },
    { engine: ctx.engine(), logger: ctx.logger, signal: ctx.signal },
  );
  process.stdout.write(renderReport(report, options.format, ctx.color));
  return exitCode;
}
