/** What a command prints on stdout for a run's report: the text summary, the JSON report, or SARIF 2.1.0. */
import path from 'node:path';
import { z } from 'zod';
import { boundReport, serializeReport } from '../report/bound.js';
import type { Report } from '../report/schema.js';
import { toSarif } from '../report/sarif.js';
import { renderSummary } from '../report/summary.js';
import type { WorkflowDeps } from '../workflows/steps.js';
import type { CommandContext } from './context.js';

export const Format = z.enum(['text', 'json', 'sarif']);
export type Format = z.infer<typeof Format>;

/** The flags every command that runs a sandbox shares, after commander. */
export const SandboxOptions = z.object({
  indexUrl: z.string().url().optional(),
  extraIndexUrl: z.array(z.string().url()).default([]),
  report: z.string().optional(),
  format: Format.default('text'),
  /** Absent: the policy's limits.timeoutSeconds, else the default. */
  timeout: z.coerce.number().positive().optional(),
  image: z.string().optional(),
  cacheDir: z.string().optional(),
});

/**
 * --python-version of the commands that install or resolve for the user's interpreter (install,
 * wheelhouse, lock): a full CPython release, X.Y.Z. Whether its X.Y is the image's is the
 * workflow's to say (workflows/target-python.ts), before any container.
 */
export const PythonVersion = z
  .string()
  .regex(/^\d{1,3}\.\d{1,3}\.\d{1,4}$/, 'a full CPython release, X.Y.Z (3.11.7)')
  .optional();

/** What a workflow gets from a command's context: the engine (made now), the logger, the abort signal. */
export function workflowDeps(ctx: CommandContext): WorkflowDeps {
  return { engine: ctx.engine(), logger: ctx.logger, signal: ctx.signal };
}

/** The request fields every sandbox workflow takes, from the shared flags. */
export function sandboxRequest(options: z.infer<typeof SandboxOptions> & { policy: string }) {
  return {
    indexUrl: options.indexUrl,
    extraIndexUrls: options.extraIndexUrl,
    policy: options.policy,
    report: options.report,
    timeoutSeconds: options.timeout,
    image: options.image,
    cacheDir: options.cacheDir,
  };
}

/**
 * The report in the chosen format. SARIF locates each result at its package's line in the
 * lockfile; `text` may append more (investigate's timeline).
 */
export function renderReport(report: Report, format: Format, color: boolean, moreText: (report: Report) => string = () => ''): string {
  switch (format) {
    case 'json':
      return serializeReport(report);
    case 'sarif': {
      // From the bounded report: whatever a package floods into it stays finite here too.
      report = boundReport(report);
      const lines = new Map(report.packages.flatMap((p) => (p.line === undefined ? [] : [[p.name, p.line] as const])));
      // Code scanning resolves locations against the checkout: the lockfile relative to where we run.
      const uri = path.relative(process.cwd(), path.resolve(report.lockfile)).split(path.sep).join('/');
      return JSON.stringify(toSarif(report, lines, uri), null, 2) + '\n';
    }
    case 'text':
      return renderSummary(report, color) + moreText(report);
  }
}
