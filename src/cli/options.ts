import type { z } from 'zod';
import { InputError } from '../errors.js';

/** A command's flags through its zod schema; what does not fit is bad input (exit 2), flag by flag. */
export function parseOptions<T extends z.ZodType>(schema: T, raw: unknown): z.infer<T> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new InputError('options.invalid', parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('\n'));
  return parsed.data;
}
