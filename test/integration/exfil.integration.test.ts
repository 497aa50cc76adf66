/**
 * Canaries on the real engine (issue 19): a planted secret sent encoded, deep in a stream, in a
 * datagram the monitor hears or one only the tracer sees, or in part, fails the install with
 * network.canary-exfil, attributed to the package that sent it, naming the secret, the channel and
 * the encoding; nothing is exported and no container is left.
 */
import { access } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { exfilCases } from '../fixtures/exfil.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { engineAvailable, expectNoContainersLeft, runCli } from './helpers.js';

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

describe.runIf(engineAvailable())('a canary that leaves, however hidden, is network.canary-exfil', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  for (const exfil of exfilCases) {
    it(exfil.title, async () => {
      const index = await buildFixtureIndex([exfil.package]);
      const run = await runCli(index.lockFile, index.indexUrl);
      const shown = JSON.stringify(run.report.findings.map((f) => [f.rule, f.package, f.evidence]));
      expect(run.report.findings, `findings were: ${shown}`).toContainEqual(
        expect.objectContaining({
          rule: 'network.canary-exfil',
          severity: 'critical',
          package: exfil.expect.package,
          // Each sender is an sdist: its setup.py runs where it is built, once, in phase build.
          phase: 'build',
          failing: true,
          evidence: expect.objectContaining(exfil.expect.evidence),
        }),
      );
      // Every canary finding is this package's: nothing else is blamed, and the monitor vouched for all it saw.
      expect(
        run.report.findings.filter((f) => f.rule === 'network.canary-exfil' && f.package !== exfil.expect.package),
        shown,
      ).toEqual([]);
      expect(
        run.report.findings.filter((f) => f.rule === 'monitor.tampered'),
        shown,
      ).toEqual([]);
      // The report names the match, not the stream: no captured payload in the events.
      expect(run.report.network.some((e) => 'payload' in e)).toBe(false);
      expect(run.report.verdict).toBe('fail');
      expect(run.exitCode).toBe(1);
      expect(run.report.exported).toBeNull();
      expect(await exists(run.output)).toBe(false);
      expect(run.stdout).toMatch(/network\.canary-exfil \[critical\]/);
      expect(run.stdout).toContain(exfil.expect.package);
    });
  }
});
