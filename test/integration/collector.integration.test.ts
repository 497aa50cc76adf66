/**
 * Issue 20, part 4, on the real engine: evidence survives a broken collector. A package that sends
 * a canary and then leaves a 4,030-byte path in /tmp breaks Docker's filesystem diff (HTTP 500,
 * "file name too long" once the overlay prefix is added). The engine still answers, so this is the
 * sandbox's doing: monitor.tampered naming the diff (and, as the same path hides the sandbox's
 * writes from the engine's measure, the disk cap that could not hold), the canary finding kept with its package and
 * phase, the writes outside the target judged from the trace instead of the diff, verdict fail,
 * exit 1, nothing exported, no container left. Not engine.lost, exit 3.
 */
import { access } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { longPathSdist, longPathWheel } from '../fixtures/collector.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { engineAvailable, expectNoContainersLeft, runCli, runInvestigate, type CliRun } from './helpers.js';

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

const shown = (run: CliRun) => JSON.stringify(run.report.findings.map((f) => [f.rule, f.package, f.phase, f.evidence]));

/** The diff's failure, in the phase the run's diff belongs to (its first). */
const diffTampered = (phase: string) =>
  expect.objectContaining({
    rule: 'monitor.tampered',
    severity: 'critical',
    phase,
    failing: true,
    evidence: { collectFailed: 'diff', error: expect.stringContaining('file name too long') },
  });

/** The canary the package sent before it broke the collector. */
const canary = (pkg: string, phase: string) =>
  expect.objectContaining({
    rule: 'network.canary-exfil',
    package: pkg,
    phase,
    failing: true,
    evidence: expect.objectContaining({ secret: '~/.netrc password', channel: 'HTTP request line', encoding: 'plain' }),
  });

/** The first directory of the long path, made outside the target, as the trace shows it. */
const deepWrite = (pkg: string, phase: string) =>
  expect.objectContaining({ rule: 'fs.write-outside-target', package: pkg, phase, evidence: expect.objectContaining({ path: '/tmp/deep', kind: 'added' }) });

describe.runIf(engineAvailable())('a collector broken by what the sandbox left keeps the evidence', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('install: an sdist that sends the netrc canary, then makes a 4,030-byte path: monitor.tampered (diff), the canary kept, exit 1, nothing exported', async () => {
    const index = await buildFixtureIndex([longPathSdist]);
    const run = await runCli(index.lockFile, index.indexUrl);
    expect(run.report.error, shown(run)).toBeNull();
    expect(run.report.findings, shown(run)).toContainEqual(diffTampered('build'));
    expect(run.report.findings, shown(run)).toContainEqual(canary('long-path', 'build'));
    // The read of the canary file stays its own finding, with the package and the phase.
    expect(run.report.findings, shown(run)).toContainEqual(
      expect.objectContaining({
        rule: 'fs.sensitive-read',
        package: 'long-path',
        phase: 'build',
        evidence: expect.objectContaining({ path: '/home/user/.netrc' }),
      }),
    );
    // Without the engine's diff, the trace says what was written outside the target, and who wrote it.
    expect(run.report.findings, shown(run)).toContainEqual(deepWrite('long-path', 'build'));
    // The same path hides the sandbox's writes from the engine's measure (SizeRw -1): the disk cap
    // cannot hold, so the sandbox is stopped (after three looks, or at the last one: which phase
    // that falls in depends on the machine's speed), and nothing vouches for the run.
    expect(run.report.findings, shown(run)).toContainEqual(
      expect.objectContaining({
        rule: 'monitor.tampered',
        severity: 'critical',
        failing: true,
        evidence: expect.objectContaining({ diskUnmeasured: 'the engine gave no size (-1)' }),
      }),
    );
    // The traces were read back: the run's record stands, whichever phase the stop fell in.
    expect(run.report.phases?.[0]?.name).toBe('build');
    expect(run.report.phases?.every((p) => p.traceBytes !== null)).toBe(true);
    expect(run.report.verdict).toBe('fail');
    expect(run.exitCode).toBe(1);
    expect(run.report.exported).toBeNull();
    expect(await exists(run.output)).toBe(false);
  });

  it('investigate: a wheel whose import sends the netrc canary, then makes a 4,030-byte path: monitor.tampered (diff), the canary kept, exit 1', async () => {
    const index = await buildFixtureIndex([longPathWheel]);
    const run = await runInvestigate('long-path-import==1.0', index.indexUrl);
    expect(run.report.error, shown(run)).toBeNull();
    expect(run.report.findings, shown(run)).toContainEqual(diffTampered('install'));
    expect(run.report.findings, shown(run)).toContainEqual(canary('long-path-import', 'import'));
    expect(run.report.findings, shown(run)).toContainEqual(
      expect.objectContaining({
        rule: 'fs.sensitive-read',
        package: 'long-path-import',
        phase: 'import',
        evidence: expect.objectContaining({ path: '/home/user/.netrc' }),
      }),
    );
    expect(run.report.findings, shown(run)).toContainEqual(deepWrite('long-path-import', 'import'));
    // The long path also hides the sandbox's writes from the engine's measure: past three looks the
    // sandbox is stopped, which on a busy machine can fall inside the import phase (killed, 137).
    const stopped = run.report.findings.some((f) => f.rule === 'monitor.tampered' && f.evidence.diskUnmeasured !== undefined);
    expect(run.report.phases?.map((p) => [p.name, p.exitCode, p.traceBytes !== null])).toEqual([
      ['install', 0, true],
      ['startup', 0, true],
      ['import', stopped ? expect.toBeOneOf([0, 137]) : 0, true],
    ]);
    expect(run.report.verdict).toBe('fail');
    expect(run.exitCode).toBe(1);
    expect(run.report.exported).toBeNull();
  });
});
