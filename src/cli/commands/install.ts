/** `sandbox-install [install] <lockfile>`: its flags, one workflow call, the summary. */
import { z } from 'zod';
import { serializeReport } from '../../report/bound.js';
import { renderSummary } from '../../report/summary.js';
import { install } from '../../workflows/install.js';
import { DEFAULT_TIMEOUT_SECONDS } from '../../workflows/steps.js';
import type { CommandContext } from '../context.js';
import { parseOptions } from '../options.js';

export const InstallOptions = z.object({
  indexUrl: z.string().url().optional(),
  extraIndexUrl: z.array(z.string().url()).default([]),
  policy: z.string().default('default'),
  output: z.string().default('out/site-packages'),
  report: z.string().optional(),
  format: z.enum(['text', 'json']).default('text'),
  timeout: z.coerce.number().positive().default(DEFAULT_TIMEOUT_SECONDS),
  image: z.string().optional(),
  cacheDir: z.string().optional(),
});
export type InstallOptions = z.infer<typeof InstallOptions>;

export async function runInstall(lockfile: string, raw: unknown, ctx: CommandContext): Promise<number> {
  const options = parseOptions(InstallOptions, raw);
  const { exitCode, report } = await install(
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
    },
    { engine: ctx.engine(), logger: ctx.logger, signal: ctx.signal },
  );
  process.stdout.write(options.format === 'json' ? serializeReport(report) : renderSummary(report, ctx.color));
  return exitCode;
}
