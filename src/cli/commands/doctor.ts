/** `sandbox-install doctor`: its flags, the doctor workflow, one line per check (or the checks as JSON). */
import { z } from 'zod';
import { escapeControl, escapeJson } from '../../report/escape.js';
import { doctor, type DoctorCheck } from '../../workflows/doctor.js';
import type { CommandContext } from '../context.js';
import { parseOptions } from '../options.js';

export const DoctorOptions = z.object({
  indexUrl: z.string().url().optional(),
  extraIndexUrl: z.array(z.string().url()).default([]),
  image: z.string().optional(),
  cacheDir: z.string().optional(),
  format: z.enum(['text', 'json']).default('text'),
});

const MARK = { ok: '✓', warn: '!', fail: '✗' } as const;
const COLOR = { ok: 32, warn: 33, fail: 31 } as const;
/** Wide enough for the longest check name (`extra-index`). */
const NAME_WIDTH = 12;

/** `✓ engine       Docker 20.10.24 (API 1.41)`, and for a check that is not ok, `  hint: …` under it. */
export function renderChecks(checks: DoctorCheck[], color: boolean): string {
  return checks
    .map((check) => {
      const mark = color ? `\x1b[${COLOR[check.status]}m${MARK[check.status]}\x1b[0m` : MARK[check.status];
      const line = `${mark} ${check.name.padEnd(NAME_WIDTH)} ${escapeControl(check.detail)}\n`;
      return check.status !== 'ok' && check.hint ? `${line}  hint: ${escapeControl(check.hint)}\n` : line;
    })
    .join('');
}

export async function runDoctor(raw: unknown, ctx: CommandContext): Promise<number> {
  const options = parseOptions(DoctorOptions, raw);
  const { checks, exitCode } = await doctor(
    { indexUrl: options.indexUrl, extraIndexUrls: options.extraIndexUrl, image: options.image, cacheDir: options.cacheDir },
    { engine: ctx.engine(), signal: ctx.signal },
  );
  process.stdout.write(options.format === 'json' ? `${escapeJson(JSON.stringify({ checks, exitCode }, null, 2))}\n` : renderChecks(checks, ctx.color));
  return exitCode;
}
