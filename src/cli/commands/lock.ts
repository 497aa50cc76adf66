/** `sandbox-install lock <requirements.in>`: its flags, one workflow call, the summary. */
import path from 'node:path';
import { z } from 'zod';
import { lock, lockFormatFor } from '../../workflows/lock.js';
import type { CommandContext } from '../context.js';
import { parseOptions } from '../options.js';
import { PythonVersion, renderReport, SandboxOptions, sandboxRequest, workflowDeps } from '../output.js';

export { lockFormatFor };

export const LockFormat = z.enum(['requirements', 'pylock']);

export const LockOptions = SandboxOptions.extend({
  policy: z.string().default('default'),
  /** --python-version: the Python the export is for; absent: the host's python3.11, else the image's. */
  pythonVersion: PythonVersion,
  /** Absent: requirements.lock (or pylock.toml) beside the requirements.in. */
  output: z.string().optional(),
  /** The lock's format (`--format` is stdout's, as on every command); absent: pylock when -o names a pylock.toml. */
  lockFormat: LockFormat.optional(),
});
export type LockOptions = z.infer<typeof LockOptions>;

/** Where the lock goes when -o is not given: beside the requirements.in, as pip-compile puts its output. */
export function defaultLockPath(requirementsIn: string, format: z.infer<typeof LockFormat>): string {
  return path.join(path.dirname(requirementsIn), format === 'pylock' ? 'pylock.toml' : 'requirements.lock');
}

export async function runLock(requirementsIn: string, raw: unknown, ctx: CommandContext): Promise<number> {
  const parsed = parseOptions(LockOptions, raw);
  const options = { ...parsed, lockFormat: lockFormatFor(parsed.output, parsed.lockFormat) };
  const { exitCode, report } = await lock(
    {
      requirementsIn,
      output: options.output ?? defaultLockPath(requirementsIn, options.lockFormat),
      format: options.lockFormat,
      ...sandboxRequest(options),
      pythonVersion: options.pythonVersion,
    },
    workflowDeps(ctx),
  );
  process.stdout.write(renderReport(report, options.format, ctx.color));
  return exitCode;
}
