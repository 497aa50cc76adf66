/**
 * investigate imports like an application, on the real engine: a payload in a submodule the
 * package never imports, in a PEP 562 `__getattr__`, in a timer that fires after the import
 * returned, in a time bomb, or behind checks for an application's context, each fails investigate
 * in phase import, charged to its own distribution; a plain package with submodules stays quiet,
 * and the report counts what was imported.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { buildFixtureIndex, type FixturePackage } from '../fixtures/index.js';
import {
  BENIGN_MODULES,
  benignWithSubmodules,
  contextPayload,
  getattrPayload,
  submodulePayload,
  timeBombPayload,
  timerPayload,
} from '../fixtures/investigate-coverage.js';
import { engineAvailable, expectNoContainersLeft, runInvestigate, type CliRun } from './helpers.js';

const shown = (run: CliRun) => JSON.stringify(run.report.findings.map((f) => [f.rule, f.package, f.phase, f.evidence]));
const aboveInfo = (run: CliRun) => run.report.findings.filter((f) => f.severity !== 'info').map((f) => [f.rule, f.package, f.phase]);

describe.runIf(engineAvailable())('investigate imports like an application (real engine)', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  const cases: Array<[title: string, pkg: FixturePackage, name: string, extra: string[]]> = [
    ['code in a submodule the package never imports', submodulePayload, 'submodule.exfil.invalid', []],
    ['code in a module-level __getattr__ (PEP 562)', getattrPayload, 'getattr.exfil.invalid', []],
    ['a daemon timer that acts 1.5 s after the import returned', timerPayload, 'timer.exfil.invalid', ['--linger', '5']],
    ['a time bomb set 20 days ahead, under --clock-skew 30d', timeBombPayload, 'timebomb.exfil.invalid', ['--clock-skew', '30d']],
    ['code that waits for an application context (flags, __main__ script, argv, stdlib loaded)', contextPayload, 'context.exfil.invalid', []],
  ];
  for (const [title, pkg, name, extra] of cases) {
    it(`${title}: network.dns in phase import, charged to ${pkg.name}`, async () => {
      const index = await buildFixtureIndex([pkg]);
      const run = await runInvestigate(`${pkg.name}==1.0`, index.indexUrl, extra);
      expect(run.report.findings, shown(run)).toContainEqual(
        expect.objectContaining({
          rule: 'network.dns',
          package: pkg.name,
          phase: 'import',
          failing: true,
          evidence: expect.objectContaining({ name }),
        }),
      );
      // Only the import reached it: nothing at install or at the interpreter's start.
      expect(
        run.report.findings.filter((f) => f.phase !== 'import' && f.severity !== 'info'),
        shown(run),
      ).toEqual([]);
      // Never charged to anyone else.
      expect(
        run.report.findings.filter((f) => f.rule === 'network.dns' && f.package !== pkg.name),
        shown(run),
      ).toEqual([]);
      expect(run.exitCode).toBe(1);
      expect(run.report.timeline).toContainEqual(expect.objectContaining({ phase: 'import', package: pkg.name, kind: 'dns', what: name }));
      expect(run.stdout).not.toContain('no behaviour observed');
      expect(run.report.importCoverage).toMatchObject({ timedOut: 0, boundHit: false });
    });
  }

  it('the time bomb stays quiet on the real clock: what --clock-skew catches', async () => {
    const index = await buildFixtureIndex([timeBombPayload]);
    const run = await runInvestigate(`${timeBombPayload.name}==1.0`, index.indexUrl);
    expect(aboveInfo(run), shown(run)).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.report.importCoverage).toMatchObject({ clockSkewSeconds: 0, clockSkewUnavailable: false });
  });

  it('a plain package with submodules: no finding above info, every module counted, a pass that says no behaviour observed', async () => {
    const index = await buildFixtureIndex([benignWithSubmodules]);
    const run = await runInvestigate(`${benignWithSubmodules.name}==1.0`, index.indexUrl, ['--clock-skew', '30d']);
    expect(aboveInfo(run), shown(run)).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.report.importCoverage).toEqual({
      ...BENIGN_MODULES,
      timedOut: 0,
      topLevel: 1,
      processes: 1,
      boundHit: false,
      maxModules: 2000,
      lingerSeconds: 2,
      clockSkewSeconds: 30 * 86_400,
      clockSkewUnavailable: false,
      timedOutModules: [],
    });
    // Nothing the interpreter cached shows on the timeline, nothing of the app dir is left.
    expect(run.report.timeline?.filter((e) => e.kind === 'write') ?? [], JSON.stringify(run.report.timeline)).toEqual([]);
    expect(run.stdout).toContain('no behaviour observed');
    expect(run.stdout).toContain('import coverage: 4 of 5 modules imported, 1 failed, 0 timed out');
  });

  it('--max-modules cuts the submodules and the report says the bound was hit', async () => {
    const index = await buildFixtureIndex([submodulePayload]);
    const run = await runInvestigate(`${submodulePayload.name}==1.0`, index.indexUrl, ['--max-modules', '1']);
    // The payload's submodule was never imported: nothing seen, and the report says why.
    expect(aboveInfo(run), shown(run)).toEqual([]);
    expect(run.report.importCoverage).toMatchObject({ planned: 1, imported: 1, boundHit: true, maxModules: 1 });
    expect(run.stdout).toContain('bound hit');
  });
});
