/** `sandbox-install [install] <lockfile>`: the main job. Exit 0 only when exported. */
import { homedir } from 'node:os';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { EnvironmentError, EXIT, InputError, SandboxError } from '../../errors.js';
import { assertReplaceable, MANIFEST_NAME, stageExport } from '../../export/publish.js';
import { readLock } from '../../lock/parse.js';
import type { LockPlan } from '../../lock/types.js';
import { observe } from '../../observe/index.js';
import { evaluate } from '../../policy/evaluate.js';
import { loadPolicy } from '../../policy/load.js';
import { pipConfiguredUpstreams, redactUrl } from '../../proxy/index.js';
import { finding, type Finding } from '../../core/finding.js';
import { serializeReport } from '../../report/bound.js';
import { emptyReport, type Report } from '../../report/schema.js';
import { renderSummary } from '../../report/summary.js';
import { DockerClient } from '../../runtime/docker.js';
import { defaultImageTag, ensureImage } from '../../runtime/image.js';
import { conflictsWithOnlyBinaryPolicy } from '../../sandbox/requirements.js';
import { DEFAULT_LIMITS, type InstallOutcome } from '../../core/outcome.js';
import { SandboxSession } from '../../sandbox/session.js';
import type { CommandContext } from '../context.js';
import { TOOL_VERSION } from '../version.js';

export const InstallOptions = z.object({
  indexUrl: z.string().url().optional(),
  extraIndexUrl: z.array(z.string().url()).default([]),
  policy: z.string().default('default'),
  output: z.string().default('out/site-packages'),
  report: z.string().optional(),
  format: z.enum(['text', 'json']).default('text'),
  timeout: z.coerce.number().positive().default(DEFAULT_LIMITS.timeoutMs / 1000),
  image: z.string().optional(),
  cacheDir: z.string().optional(),
});
export type InstallOptions = z.infer<typeof InstallOptions>;

function defaultCacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(homedir(), '.cache');
  return path.join(base, 'sandbox-install');
}

/** A lockfile's own index lines are reported, and honoured only when the policy allows it. */
function lockIndexFindings(plan: LockPlan, allowed: boolean): Finding[] {
  return [plan.indexUrl, ...plan.extraIndexUrls]
    .filter((url): url is string => url !== null)
    .map(redactUrl)
    .map((url) =>
      finding(
        'lock.index-url',
        'info',
        allowed ? `the lockfile names index ${url}; honoured by policy` : `the lockfile names index ${url}; ignored (policy does not allow lockfile indexes)`,
        { url },
      ),
    );
}

function packagesOf(plan: LockPlan, served: Array<{ project: string; filename: string; sha256: string; size: number; locked: boolean }>): Report['packages'] {
  return plan.requirements.map((req) => ({
    name: req.name,
    version: req.version,
    marker: req.marker,
    files: served
      .filter((file) => file.locked && file.project === req.name && req.sha256.includes(file.sha256))
      .map(({ filename, sha256, size }) => ({ filename, sha256, size })),
  }));
}

function installFailure(outcome: InstallOutcome): Finding[] {
  if (outcome.timedOut || outcome.pipExitCode === 0) return [];
  const lastError = outcome.pipOutput
    .split('\n')
    .filter((line) => line.startsWith('ERROR'))
    .slice(-3)
    .join(' ');
  return [
    finding('install.failed', 'high', `pip exited with ${outcome.pipExitCode ?? 'no exit code'}${lastError ? `: ${lastError}` : ''}`, {
      exitCode: outcome.pipExitCode,
    }),
  ];
}

export async function runInstall(lockfile: string, raw: unknown, ctx: CommandContext): Promise<number> {
  const parsed = InstallOptions.safeParse(raw);
  if (!parsed.success) {
    throw new InputError('options.invalid', parsed.error.issues.map((i) => `--${i.path.join('.')}: ${i.message}`).join('\n'));
  }
  const options = parsed.data;
  const started = performance.now();
  const timings: Record<string, number> = {};

  const plan = await readLock(lockfile);
  const policy = await loadPolicy(options.policy);
  const conflict = policy.onlyBinary ? conflictsWithOnlyBinaryPolicy(plan.pipOptions) : null;
  if (conflict !== null) throw new InputError('lock.invalid', `${lockfile}: ${conflict}`);
  if (policy.export) await assertReplaceable(path.resolve(options.output));
  const cli = {
    indexUrl: options.indexUrl ?? (policy.allowLockIndexUrl ? (plan.indexUrl ?? undefined) : undefined),
    extraIndexUrls: [...options.extraIndexUrl, ...(policy.allowLockIndexUrl ? plan.extraIndexUrls : [])],
  };
  const upstreams = await pipConfiguredUpstreams(cli);
  const log = ctx.logger.child({ lockfile });

  const client = new DockerClient();
  await client.ping();
  const image = options.image ?? (await defaultImageTag());
  let t = performance.now();
  const built = await ensureImage({
    client,
    tag: image,
    base: 'auto',
    signal: ctx.signal,
    progress: (line) => log.info({ image }, `image: ${line}`),
  });
  if (built !== 'existing') log.info({ image, path: built }, `built the sandbox image (${built})`);
  timings.image = Math.round(performance.now() - t);

  const report = emptyReport({ version: TOOL_VERSION, lockfile, policy: policy.name, image, timings });

  let exitCode: number = EXIT.install;
  try {
    await using session = await SandboxSession.open({
      client,
      image,
      plan,
      upstreams,
      policy,
      cacheDir: options.cacheDir ?? defaultCacheDir(),
      limits: { ...DEFAULT_LIMITS, timeoutMs: options.timeout * 1000 },
      logger: log,
      signal: ctx.signal,
    });
    log.info(
      { packages: plan.requirements.length, upstreams: { indexUrl: redactUrl(upstreams.indexUrl), extraIndexUrls: upstreams.extraIndexUrls.map(redactUrl) } },
      'installing in the sandbox',
    );
    const outcome = await session.install();
    Object.assign(timings, outcome.timings);
    ctx.signal.throwIfAborted();

    t = performance.now();
    const archive = outcome.pipExitCode === 0 ? await session.siteArchive() : null;
    const wheels = session.proxyRecords.served
      .filter((file) => file.locked && file.filename.endsWith('.whl'))
      .map((file) => ({ filename: file.filename, sha256: file.sha256, file: file.cachePath }));
    const observation = await observe({ outcome, plan, policy, archive, wheels, reservedNames: [MANIFEST_NAME] });
    timings.observe = Math.round(performance.now() - t);

    const judgement = evaluate(
      {
        findings: [...lockIndexFindings(plan, policy.allowLockIndexUrl), ...observation.findings, ...installFailure(outcome)],
        packages: plan.requirements.map((r) => r.name),
        installSucceeded: outcome.pipExitCode === 0,
      },
      policy,
    );
    report.verdict = judgement.verdict;
    report.findings = judgement.findings;
    report.packages = packagesOf(plan, session.proxyRecords.served);
    report.proxy = session.proxyRecords.requests;
    report.network = observation.network;
    report.filesystem = observation.filesystem;
    report.processes = observation.processes;
    report.install = {
      pipExitCode: outcome.pipExitCode,
      timedOut: outcome.timedOut,
      output: outcome.pipOutput,
      traceBytes: outcome.trace === null ? null : Buffer.byteLength(outcome.trace),
    };

    if (report.verdict === 'pass' && policy.export) {
      ctx.signal.throwIfAborted();
      t = performance.now();
      const staged = await stageExport(await session.siteArchive(), options.output);
      if (staged.bytecode?.skipped) log.warn({ reason: staged.bytecode.skipped }, 'exporting without bytecode; Python compiles it at first import');
      if (staged.findings.length > 0) {
        await staged.discard();
        const again = evaluate({ findings: [...report.findings, ...staged.findings], packages: [], installSucceeded: true }, policy);
        report.verdict = again.verdict;
        report.findings = again.findings;
      } else if (ctx.signal.aborted) {
        // Interrupted while extracting: nothing is published.
        await staged.discard();
        ctx.signal.throwIfAborted();
      } else {
        // The report is written before anything is published, and saying what will be published:
        // a report that cannot be written stops the export, and exit 0 always has its report.
        report.exported = path.resolve(options.output);
        report.manifest = path.join(report.exported, MANIFEST_NAME);
        try {
          await writeReport(options.report, report);
        } catch (error: unknown) {
          report.exported = null;
          report.manifest = null;
          await staged.discard();
          throw new EnvironmentError('report.unwritable', `could not write the report to ${options.report}; nothing was exported`, { cause: error });
        }
        try {
          await staged.publish();
        } catch (error: unknown) {
          report.exported = null;
          report.manifest = null;
          throw error;
        }
      }
      timings.export = Math.round(performance.now() - t);
    }
    exitCode = { pass: EXIT.pass, fail: EXIT.policyFail, error: EXIT.install }[report.verdict];
  } catch (error: unknown) {
    report.error = error instanceof SandboxError ? error.toJSON() : { message: String(error) };
    throw error;
  } finally {
    timings.total = Math.round(performance.now() - started);
    // Written again with the end state. Bounded (report/bound.ts): nothing a package floods into
    // it can make serialising throw. A failure here is logged, never thrown: it must not replace
    // the error or the exit code that ended the run.
    await writeReport(options.report, report).catch((error: unknown) => log.error({ err: error, report: options.report }, 'could not write the report'));
    if (report.error === null) {
      process.stdout.write(options.format === 'json' ? serializeReport(report) : renderSummary(report, ctx.color));
    }
  }
  return exitCode;
}

async function writeReport(file: string | undefined, report: Report): Promise<void> {
  if (file) await writeFile(file, serializeReport(report));
}
