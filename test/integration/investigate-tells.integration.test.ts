/**
 * A payload that stays quiet where it sees a sandbox (issue 20, part 5b) fires in investigate: the
 * sandbox shows none of the signs it checks (test/fixtures/tells.ts: the host name, PID 1's and the
 * parent's names, the CPU mask, the canary set, the home's age, resolv.conf's options). The `all`
 * wheel checks every sign and sends the GitHub canary; each other wheel is keyed on one sign alone.
 * One investigate run installs and imports them all, each import credited to its distribution.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { buildFixtureIndex } from '../fixtures/index.js';
import { CANARY_SUFFIX, firedName, TELLS, tellsPackageName, tellsProject } from '../fixtures/tells.js';
import { engineAvailable, expectNoContainersLeft, runInvestigate, type CliRun } from './helpers.js';

const shown = (run: CliRun) => JSON.stringify(run.report.findings.map((f) => [f.rule, f.package, f.phase, f.evidence]));

describe.runIf(engineAvailable())('investigate shows a payload none of the signs it waits for', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('every sign checked at once, and each alone: each wheel fires in phase import, and the `all` wheel sends the GitHub canary', async () => {
    const index = await buildFixtureIndex(tellsProject);
    // --linger 0: the payloads act at import; a linger after each (2 s by default) would only pad the phase's time measured below.
    const run = await runInvestigate('tells-suite==1.0', index.indexUrl, ['--linger', '0']);
    const dns = run.report.findings.filter((f) => f.rule === 'network.dns');
    // No sign was seen: a wheel reports one it sees as `seen-<sign>.<mode>.tells.invalid`.
    expect(
      dns.map((f) => f.evidence.name).filter((name) => String(name).startsWith('seen-')),
      shown(run),
    ).toEqual([]);
    for (const mode of ['all', ...TELLS] as const) {
      expect(run.report.findings, `${mode}: ${shown(run)}`).toContainEqual(
        expect.objectContaining({
          rule: 'network.dns',
          package: tellsPackageName(mode),
          phase: 'import',
          failing: true,
          evidence: expect.objectContaining({ name: firedName(mode) }),
        }),
      );
    }
    expect(run.report.findings, shown(run)).toContainEqual(
      expect.objectContaining({
        rule: 'network.canary-exfil',
        severity: 'critical',
        package: tellsPackageName('all'),
        phase: 'import',
        failing: true,
        evidence: expect.objectContaining({ secret: '~/.git-credentials github.com token', channel: 'DNS name', encoding: 'hex', partial: false }),
      }),
    );
    expect(dns.some((f) => String(f.evidence.name).endsWith(CANARY_SUFFIX))).toBe(true);
    // The names resolve at once without `attempts:1 timeout:2`: the resolver's defaults (5 s a
    // try) never wait. 13 imports of one to three names each take a few seconds (about 3 s here,
    // with no linger); one stalled lookup per import would be 65 s, and 30 s leaves room for a busy machine.
    const importPhase = run.report.phases?.find((p) => p.name === 'import');
    expect(importPhase?.exitCode).toBe(0);
    expect(importPhase?.ms, JSON.stringify(run.report.phases)).toBeLessThan(30_000);
    expect(run.exitCode).toBe(1);
    expect(run.report.exported).toBeNull();
  });
});
