/** `sandbox-install [install] <lockfile>`: its flags, one workflow call, the summary. */
import { z } from 'zod';
import { install } from '../../workflows/install.js';
import type { CommandContext } from '../context.js';
import { parseOptions } from '../options.js';
import { PythonVersion, renderReport, SandboxOptions, sandboxRequest, workflowDeps } from '../output.js';

export const InstallOptions = SandboxOptions.extend({
  policy: z.string().default('default'),
  /** --python-version: the Python the export is for; absent: the host's python3.11, else the image's. */
  pythonVersion: PythonVersion,
  output: z.string().default('out/site-packages'),
  /** --build-image: run in the image with a C compiler (for sdists that build extensions). */
  buildImage: z.boolean().default(false),
});
export type InstallOptions = z.infer<typeof InstallOptions>;

export async function runInstall(lockfile: string, raw: unknown, ctx: CommandContext): Promise<number> {
  const options = parseOptions(InstallOptions, raw);
  const { exitCode, report } = await install(
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
