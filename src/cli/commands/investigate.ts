/** `sandbox-install investigate <target>`: its flags, one workflow call, the summary and the timeline. */
import { z } from 'zod';
import { serializeReport } from '../../report/bound.js';
import { renderSummary, renderTimeline } from '../../report/summary.js';
import { investigate } from '../../workflows/investigate.js';
import { DEFAULT_TIMEOUT_SECONDS } from '../../workflows/steps.js';
import type { CommandContext } from '../context.js';
import { parseOptions } from '../options.js';

export const DEFAULT_IMPORT_TIMEOUT_SECONDS = 10;

export const InvestigateOptions = z.object({
  indexUrl: z.string().url().optional(),
  extraIndexUrl: z.array(z.string().url()).default([]),
  policy: z.string().default('investigate'),
  report: z.string().optional(),
  format: z.enum(['text', 'json']).default('text'),
  timeout: z.coerce.number().positive().default(DEFAULT_TIMEOUT_SECONDS),
  importTimeout: z.coerce.number().positive().max(600).default(DEFAULT_IMPORT_TIMEOUT_SECONDS),
  image: z.string().optional(),
  cacheDir: z.string().optional(),
});

export async function runInvestigate(target: string, raw: unknown, ctx: CommandContext): Promise<number> {
  const options = parseOptions(InvestigateOptions, raw);
  const { exitCode, report } = await investigate(
    {
      target,
      indexUrl: options.indexUrl,
      extraIndexUrls: options.extraIndexUrl,
      policy: options.policy,
      report: options.report,
      timeoutSeconds: options.timeout,
      importTimeoutSeconds: options.importTimeout,
      image: options.image,
      cacheDir: options.cacheDir,
    },
    { engine: ctx.engine(), logger: ctx.logger, signal: ctx.signal },
  );
  process.stdout.write(options.format === 'json' ? serializeReport(report) : renderSummary(report, ctx.color) + renderTimeline(report, ctx.color));
  return exitCode;
}
