import { z } from 'zod';
import { Finding } from '../core/finding.js';
import { ImportCoverage } from '../core/import-coverage.js';

export const SCHEMA_VERSION = 1;

/**
 * The JSON Schema of reports, shipped with the tool (generated from `Report` by
 * scripts/generate-schemas.js): a file URL an editor or validator on this machine can open.
 */
export const REPORT_SCHEMA_URL = new URL('../../report.schema.json', import.meta.url).href;

const JudgedFinding = Finding.extend({
  /** What the policy does with it: fail the run, warn, or ignore (kept here, left out of text and SARIF). */
  action: z.enum(['fail', 'warn', 'ignore']),
  failing: z.boolean(),
  /** The policy's suppression that accepted it. */
  suppressed: z.object({ reason: z.string(), expires: z.string().nullable() }).optional(),
});

const tally = z.number().int().nonnegative();

/**
 * What `boundReport` (report/bound.ts) cut or folded so that a hostile run's report stays finite;
 * present only when something was. Counts cover what the report still holds: a finding or event
 * dropped whole counts once, in `findings` or `events`, not again for the strings inside it.
 */
export const ReportCut = z.object({
  /** Strings shortened, each ending (or, for install.output, starting) with a `…[+N chars]` marker. */
  strings: tally,
  /** Entries dropped from arrays inside records (argv), and files dropped from packages[].files. */
  arrayEntries: tally,
  /** Keys dropped from objects inside records (evidence, events, error). */
  objectKeys: tally,
  /** Objects and arrays nested too deep, each replaced by the string `…[nested]`. */
  nested: tally,
  /** Findings folded into an identical one (same rule, package and message); their evidence.count adds up. */
  findingsMerged: tally,
  /** Findings dropped, the least severe first. */
  findings: tally,
  /** Events (network, filesystem, processes, proxy) folded into an identical one, which carries a `count`. */
  eventsMerged: tally,
  /** Events dropped, the latest first. */
  events: tally,
  /** Packages dropped. */
  packages: tally,
});
export type ReportCut = z.infer<typeof ReportCut>;

export const Report = z.object({
  $schema: z.string().optional(),
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
      /** The 1-based line of the lockfile that names it, when it came from one. */
      line: z.number().int().positive().optional(),
      files: z.array(z.object({ filename: z.string(), sha256: z.string(), size: z.number() })),
    }),
  ),
  findings: z.array(JudgedFinding),
  network: z.array(z.record(z.string(), z.unknown())),
  filesystem: z.array(z.record(z.string(), z.unknown())),
  processes: z.array(z.record(z.string(), z.unknown())),
  proxy: z.array(
    z.object({
      time: z.string(),
      method: z.string(),
      path: z.string(),
      status: z.number(),
      bytes: z.number(),
      ms: z.number(),
      /** Identical requests folded into this one (report/bound.ts); absent means one. */
      count: z.number().int().positive().optional(),
      /** The phase whose sandbox asked, when a report holds more than one run's requests (lock: resolve, resolve-check); absent: the run's one proxy. */
      phase: z.string().optional(),
    }),
  ),
  install: z.object({ pipExitCode: z.number().nullable(), timedOut: z.boolean(), output: z.string(), traceBytes: z.number().nullable() }).nullable(),
  timings: z.record(z.string(), z.number()),
  /** investigate: per phase and package, what each package did, in time order (observe/timeline.ts). */
  timeline: z
    .array(
      z.object({
        phase: z.string(),
        /** Seconds since the phase started. */
        offset: z.number(),
        package: z.string(),
        kind: z.string(),
        what: z.string(),
        pid: z.number().nullable(),
        /** Identical entries folded into this one (report/bound.ts); absent means one. */
        count: z.number().int().positive().optional(),
      }),
    )
    .optional(),
  /** Each phase that ran, in order. */
  phases: z
    .array(
      z.object({
        name: z.string(),
        exitCode: z.number().nullable(),
        timedOut: z.boolean(),
        traceBytes: z.number().nullable(),
        /** How long the phase's command ran under the tracer, as the supervisor timed it (ms); absent when it has no record. */
        ms: z.number().int().nonnegative().optional(),
      }),
    )
    .optional(),
  /**
   * investigate: what the import phase covered (core/import-coverage.ts), as the importer reported
   * it; null when it ran but its report is missing or does not parse. Never part of the verdict.
   */
  importCoverage: ImportCoverage.nullable().optional(),
  /**
   * The Python the run installed (or resolved) for: `target`, whose markers and Requires-Python pip
   * evaluated (--python-version, else the host's python3.11, else the image's own), and `image`,
   * the sandbox image's interpreter. null where unknown (an image built without its version label).
   */
  python: z.strictObject({ image: z.string().nullable(), target: z.string().nullable() }).optional(),
  exported: z.string().nullable(),
  manifest: z.string().nullable(),
  error: z.record(z.string(), z.unknown()).nullable(),
  /** Additive, so schemaVersion stays 1. */
  cut: ReportCut.optional(),
});
export type Report = z.infer<typeof Report>;

/** A report before anything is known: verdict `error` (inconclusive) until the run says otherwise. */
export function emptyReport(start: { version: string; lockfile: string; policy: string; image: string | null; timings?: Report['timings'] }): Report {
  return {
    $schema: REPORT_SCHEMA_URL,
    schemaVersion: SCHEMA_VERSION,
    tool: { name: 'sandbox-install', version: start.version },
    verdict: 'error',
    lockfile: start.lockfile,
    policy: start.policy,
    image: start.image,
    packages: [],
    findings: [],
    network: [],
    filesystem: [],
    processes: [],
    proxy: [],
    install: null,
    timings: start.timings ?? {},
    exported: null,
    manifest: null,
    error: null,
  };
}

/** The JSON Schema of reports (draft-07); shipped as report.schema.json and named by each report's `$schema`. */
export function reportJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(Report, { target: 'draft-7', io: 'output' }),
    title: 'sandbox-install report',
    description: 'The JSON report of a sandbox-install run. Generated from src/report/schema.ts.',
  };
}
