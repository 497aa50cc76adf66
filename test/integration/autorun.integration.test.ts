/**
 * Auto-run surfaces on the real engine: plain wheels (no install-time code) whose files make code
 * run at interpreter start or on a standard-library import must fail the install under the
 * default policy and under strict, attributed to the attacker, with nothing exported, no
 * container left, and nothing above info said of the benign wheel locked beside them.
 */
import { access } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { autorunCases } from '../fixtures/autorun.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { engineAvailable, expectNoContainersLeft, runCli } from './helpers.js';

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

describe.runIf(engineAvailable())('auto-run surfaces fail with their rule', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  for (const autorun of autorunCases()) {
    for (const extra of [[], ...(autorun.alsoWith ?? [])]) {
      it(`${autorun.title}${extra.length ? ` (${extra.join(' ')})` : ''}`, async () => {
        const index = await buildFixtureIndex(autorun.packages);
        const run = await runCli(index.lockFile, index.indexUrl, extra);
        const shown = JSON.stringify(run.report.findings.map((f) => [f.rule, f.package, f.phase, f.evidence]));

        // Exactly the finding, attributed to the attacker, from the scan of what pip installed.
        const matching = run.report.findings.filter((f) => f.rule === autorun.expect.rule);
        expect(matching, `findings were: ${shown}`).toEqual([
          expect.objectContaining({
            rule: autorun.expect.rule,
            severity: 'high',
            package: autorun.expect.package,
            phase: 'install',
            failing: true,
            evidence: autorun.expect.evidence,
          }),
        ]);
        // The benign wheel beside it is named by nothing above info.
        expect(
          run.report.findings.filter((f) => f.package === autorun.victim && f.severity !== 'info'),
          `findings were: ${shown}`,
        ).toEqual([]);
        expect(run.report.verdict).toBe('fail');
        expect(run.exitCode).toBe(1);
        expect(run.report.exported).toBeNull();
        expect(await exists(run.output)).toBe(false);
        expect(run.stdout).toMatch(new RegExp(`${autorun.expect.rule.replace('.', '\\.')} \\[`));
        expect(run.stdout).toContain(autorun.expect.package);
      });
    }
  }
});
