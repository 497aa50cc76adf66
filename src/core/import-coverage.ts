/**
 * What investigate's import phase covered (images/importer.py): modules planned, imported, failed,
 * timed out, and whether the bound on their count cut the walk. The importer prints it as its last
 * line, `{"coverage": …}`, in the sandbox's output.
 *
 * That output is hostile input: an import process runs as the same user as the importer and can
 * write to its stdout. The line is read bounded (the last one that parses wins, only from the tail
 * of the output), checked with caps, and never used for a verdict: it says what was tried, not
 * what was found. The planned count, the top-level count, the processes and the bound are the
 * importer's own; imported/failed/timed out split the planned modules by what each process
 * reported of its progress, which the package can fake.
 */
import { z } from 'zod';

const count = z.number().int().nonnegative().max(1_000_000);
/** A module name as the importer lists it (at most 100 of each kind, 200 characters each). */
const moduleNames = z.array(z.string().max(200)).max(100);

export const ImportCoverage = z
  .object({
    /** Modules and submodules the importer's walk over the files planned to import. */
    planned: count,
    imported: count,
    failed: count,
    timedOut: count,
    /** Top-level modules (each imported with its submodules, in one process or more). */
    topLevel: count,
    /** Import processes started (one per top-level module, and one more after each that hung or crashed). */
    processes: count,
    /** The walk found more modules than `maxModules`: the rest were never imported. */
    boundHit: z.boolean(),
    maxModules: z.number().int().positive().max(1_000_000),
    lingerSeconds: z.number().nonnegative().max(3600),
    /** How far ahead the import processes' wall clock ran (0: the real clock). */
    clockSkewSeconds: z
      .number()
      .int()
      .nonnegative()
      .max(10 * 366 * 86_400),
    /** A skew was asked for, but the image has no libfaketime: the imports ran on the real clock. */
    clockSkewUnavailable: z.boolean(),
    failedModules: moduleNames,
    timedOutModules: moduleNames,
  })
  .refine((c) => c.imported + c.failed + c.timedOut === c.planned, { message: 'the outcomes do not add up to the modules planned' });
export type ImportCoverage = z.infer<typeof ImportCoverage>;

/** The coverage line is looked for in this much of the output's tail, and is at most this long. */
export const COVERAGE_TAIL_CHARS = 256 * 1024;
const MAX_LINE_CHARS = 64 * 1024;
const PREFIX = '{"coverage":';

/** The last `{"coverage": …}` line of the import phase's output that parses, or null. */
export function parseImportCoverage(output: string): ImportCoverage | null {
  const lines = output.slice(-COVERAGE_TAIL_CHARS).split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = (lines[i] ?? '').trim();
    if (!line.startsWith(PREFIX) || line.length > MAX_LINE_CHARS) continue;
    try {
      const parsed = ImportCoverage.safeParse((JSON.parse(line) as { coverage?: unknown }).coverage);
      if (parsed.success) return parsed.data;
    } catch {
      // Not JSON: someone else's line, or a cut one. An earlier line may still be ours.
    }
  }
  return null;
}
