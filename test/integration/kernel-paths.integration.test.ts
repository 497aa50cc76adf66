/**
 * Issue 20, part 2 on the real engine: a build that reaches the install target or a planted canary
 * through `/proc/self/fd/<dirfd>/…`, `/dev/fd/<dirfd>/…`, a symlink it made under /tmp/pip-*, or an
 * fd (fchmod, ftruncate) fails with the rule the resolved path calls for, attributed to it, in the
 * build phase, with the resolved path as evidence and the path as named as `via`; nothing is
 * exported and no container is left.
 */
import { access } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { kernelPathDodges } from '../fixtures/kernel-paths.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { engineAvailable, expectNoContainersLeft, runCli } from './helpers.js';

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

describe.runIf(engineAvailable())('paths are judged as the kernel resolved them', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  for (const hostile of kernelPathDodges()) {
    it(hostile.title, async () => {
      const index = await buildFixtureIndex(hostile.packages);
      const run = await runCli(index.lockFile, index.indexUrl);
      const shown = JSON.stringify(run.report.findings.map((f) => [f.rule, f.package, f.phase, f.evidence]));
      for (const wanted of [hostile.expect, ...(hostile.alsoExpect ?? [])]) {
        const matching = run.report.findings.filter((f) => f.rule === wanted.rule && f.package === wanted.package);
        expect(matching, `findings were: ${shown}`).toContainEqual(
          expect.objectContaining({ failing: true, phase: wanted.phase ?? 'build', evidence: expect.objectContaining(wanted.evidence) }),
        );
      }
      expect(run.report.verdict).toBe('fail');
      expect(run.exitCode).toBe(1);
      expect(run.report.exported).toBeNull();
      expect(await exists(run.output)).toBe(false);
    });
  }
});
