/** `sandbox-install wheelhouse <lockfile> -o <dir>`: its flags, one workflow call, the summary. */
import { z } from 'zod';
import { wheelhouse } from '../../workflows/wheelhouse.js';
import type { CommandContext } from '../context.js';
import { parseOptions } from '../options.js';
import { PythonVersion, renderReport, SandboxOptions, sandboxRequest, workflowDeps } from '../output.js';

export const WheelhouseOptions = SandboxOptions.extend({
  output: z.string({ error: 'the wheelhouse directory is required (-o <dir>)' }),
  policy: z.string().default('default'),
  /** --python-version: the Python the export is for; absent: the host's python3.11, else the image's. */
  pythonVersion: PythonVersion,
  /** --build-image / --no-build-image; absent: the build image when some requirement is locked to sdists only. */
  buildImage: z.boolean().optional(),
});
export type WheelhouseOptions = z.infer<typeof WheelhouseOptions>;

export async function runWheelhouse(lockfile: string, raw: unknown, ctx: CommandContext): Promise<number> {
  const options = parseOptions(WheelhouseOptions, raw);
  const { exitCode, report } = await wheelhouse(
    {
      lockfile,
      ...sandboxRequest(options),
      pythonVersion: options.pythonVersion,
      output: options.output,
      buildImage: options.buildImage,
    },
    workflowDeps(ctx),
  );
  process.stdout.write(renderReport(report, options.format, ctx.color));
  return exitCode;
}
