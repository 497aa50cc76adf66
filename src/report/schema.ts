import { z } from 'zod';
import { Finding } from './finding.js';

export const SCHEMA_VERSION = 1;

const JudgedFinding = Finding.extend({ failing: z.boolean() });

export const Report = z.object({
  schemaVersion: z.literal(SCHEMA_VERSION),
  tool: z.object({ name: z.literal('sandbox-install'), version: z.string() }),
  verdict: z.enum(['pass', 'fail', 'error']),
  lockfile: z.string(),
  policy: z.string(),
  image: z.string().nullable(),
  packages: z.array(
    z.object({
      name: z.string(),
      version: z.string(),
      marker: z.string().nullable(),
      files: z.array(z.object({ filename: z.string(), sha256: z.string(), size: z.number() })),
    }),
  ),
  findings: z.array(JudgedFinding),
  network: z.array(z.record(z.string(), z.unknown())),
  filesystem: z.array(z.record(z.string(), z.unknown())),
  processes: z.array(z.record(z.string(), z.unknown())),
  proxy: z.array(
    z.object({ time: z.string(), method: z.string(), path: z.string(), status: z.number(), bytes: z.number(), ms: z.number() }),
  ),
  install: z
    .object({ pipExitCode: z.number().nullable(), timedOut: z.boolean(), output: z.string(), traceBytes: z.number().nullable() })
    .nullable(),
  timings: z.record(z.string(), z.number()),
  exported: z.string().nullable(),
  manifest: z.string().nullable(),
  error: z.record(z.string(), z.unknown()).nullable(),
});
export type Report = z.infer<typeof Report>;
