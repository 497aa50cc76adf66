/**
 * The performance regression guard on the real engine. The comparison with plain pip is the
 * benchmark's (`npm run bench`, bench/RESULTS.md); this only keeps the report's phase timings in
 * the shape the benchmark and users read, and catches a run that became grossly slow.
 */
import { describe, expect, it } from 'vitest';
import type { FixturePackage } from '../fixtures/index.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { engineAvailable, expectNoContainersLeft, runCli } from './helpers.js';

/** The phases of an install run, in the order they run; `total` is the whole run. */
const PHASES = ['image', 'proxyStart', 'prefetch', 'monitorStart', 'containerStart', 'install', 'collect', 'observe', 'export'];

/** Five small wheels: the size of the benchmark's smallest lock. */
const fivePackages: FixturePackage[] = Array.from({ length: 5 }, (_, i) => ({
  name: `perf-pkg-${i}`,
  version: '1.0',
  kind: 'wheel' as const,
  files: { [`perf_pkg_${i}/__init__.py`]: `VALUE = ${i}\n` },
}));

/**
 * Generous on purpose (a smoke test, not a benchmark): about 5 s on a quiet 2-core machine, so
 * only a run that became several times slower, or one that waits for a timeout, fails here.
 */
const SMOKE_BOUND_MS = 45_000;

describe.runIf(engineAvailable())('performance guard on the real engine', () => {
  it('reports every phase of a 5-package install, in order, within a generous bound', async () => {
    const index = await buildFixtureIndex(fivePackages);
    const started = performance.now();
    const run = await runCli(index.lockFile, index.indexUrl);
    const wall = performance.now() - started;
    expect(run.exitCode).toBe(0);
    expect(run.report.verdict).toBe('pass');
    expect(run.report.packages.map((p) => p.name)).toEqual(fivePackages.map((p) => p.name));

    const { timings } = run.report;
    expect(Object.keys(timings)).toEqual([...PHASES, 'total']);
    for (const key of Object.keys(timings)) {
      expect(Number.isInteger(timings[key]), key).toBe(true);
      expect(timings[key], key).toBeGreaterThanOrEqual(0);
    }
    // The phases run one after another inside the run: together they fit in its total (1 ms of
    // rounding per phase), and the install phase did real work.
    const phases = PHASES.reduce((sum, key) => sum + timings[key]!, 0);
    expect(phases).toBeLessThanOrEqual(timings.total! + PHASES.length);
    expect(timings.install).toBeGreaterThan(0);
    expect(timings.total).toBeLessThan(SMOKE_BOUND_MS);
    expect(wall).toBeLessThan(SMOKE_BOUND_MS + 5_000);
    await expectNoContainersLeft();
  });
});
