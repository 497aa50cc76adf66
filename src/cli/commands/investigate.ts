/** `sandbox-install investigate <target>`: its flags, one workflow call, the summary and the timeline. */
import { z } from 'zod';
import { renderTimeline } from '../../report/summary.js';
import { investigate } from '../../workflows/investigate.js';
import type { CommandContext } from '../context.js';
import { parseOptions } from '../options.js';
import { renderReport, SandboxOptions, sandboxRequest, workflowDeps } from '../output.js';

export const DEFAULT_IMPORT_TIMEOUT_SECONDS = 10;

export const InvestigateOptions = SandboxOptions.extend({
  policy: z.string().default('investigate'),
  importTimeout: z.coerce.number().positive().max(600).default(DEFAULT_IMPORT_TIMEOUT_SECONDS),
});

export async function runInvestigate(target: string, raw: unknown, ctx: CommandContext): Promise<number> {
  const options = parseOptions(InvestigateOptions, raw);
  const { exitCode, report } = await investigate(
    {
      target,
      ...sandboxRequest(options),
      importTimeoutSeconds: options.importTimeout,
    },
    workflowDeps(ctx),
  );
  process.stdout.write(renderReport(report, options.format, ctx.color, (r) => renderTimeline(r, ctx.color)));
  return exitCode;
}
