/** `sandbox-install investigate <target>`: its flags, one workflow call, the summary, the coverage and the timeline. */
import { z } from 'zod';
import { renderCoverage, renderTimeline } from '../../report/summary.js';
import { DEFAULT_LINGER_SECONDS, DEFAULT_MAX_MODULES, investigate } from '../../workflows/investigate.js';
import type { CommandContext } from '../context.js';
import { parseOptions } from '../options.js';
import { renderReport, SandboxOptions, sandboxRequest, workflowDeps } from '../output.js';

export const DEFAULT_IMPORT_TIMEOUT_SECONDS = 10;
export { DEFAULT_LINGER_SECONDS, DEFAULT_MAX_MODULES };

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 7 * 86_400 };
/** The longest skew: ten years ahead. */
const MAX_SKEW_SECONDS = 10 * 365 * 86_400;

/** `30d`, `12h`, `90m`, `45s` or plain seconds → seconds; null when it is none of these. */
export function parseDuration(text: string): number | null {
  const match = /^(\d{1,9})([smhdw]?)$/.exec(text.trim());
  if (!match) return null;
  return Number(match[1]) * (UNIT_SECONDS[match[2] || 's'] ?? 1);
}

const Duration = z.string().transform((text, ctx) => {
  const seconds = parseDuration(text);
  if (seconds === null || seconds > MAX_SKEW_SECONDS) {
    ctx.addIssue({ code: 'custom', message: `${text}: a duration like 30d, 12h, 90m or 45s, at most 10 years` });
    return z.NEVER;
  }
  return seconds;
});

export const InvestigateOptions = SandboxOptions.extend({
  policy: z.string().default('investigate'),
  importTimeout: z.coerce.number().positive().max(600).default(DEFAULT_IMPORT_TIMEOUT_SECONDS),
  linger: z.coerce.number().nonnegative().max(600).default(DEFAULT_LINGER_SECONDS),
  maxModules: z.coerce.number().int().positive().max(100_000).default(DEFAULT_MAX_MODULES),
  clockSkew: Duration.default(0),
});

export async function runInvestigate(target: string, raw: unknown, ctx: CommandContext): Promise<number> {
  const options = parseOptions(InvestigateOptions, raw);
  const { exitCode, report } = await investigate(
    {
      target,
      ...sandboxRequest(options),
      imports: {
        secondsPerModule: options.importTimeout,
        lingerSeconds: options.linger,
        maxModules: options.maxModules,
        clockSkewSeconds: options.clockSkew,
      },
    },
    workflowDeps(ctx),
  );
  process.stdout.write(renderReport(report, options.format, ctx.color, (r) => renderCoverage(r, ctx.color) + renderTimeline(r, ctx.color)));
  return exitCode;
}
