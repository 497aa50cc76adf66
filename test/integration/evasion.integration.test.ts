/**
 * The tracer issue's cases that are not one finding each: a report a package tries to blow up
 * (case 5), lockfile options that must not be dropped (case 7), and text built to mislead a
 * terminal (case 8). The single-finding cases are in hostile.integration.test.ts.
 */
import { access, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { binaryOnlyDodge, misleadingText, reportFlood } from '../fixtures/hostile.js';
import { buildFixtureIndex } from '../fixtures/index.js';
import { engineAvailable, expectNoContainersLeft, runCli, startCli } from './helpers.js';

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

describe.runIf(engineAvailable())('a package cannot break the report, the lock or the terminal', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('a flood of huge escape-byte DNS names and argv gives a bounded, valid report and no export', async () => {
    const index = await buildFixtureIndex([reportFlood]);
    const run = await runCli(index.lockFile, index.indexUrl);
    // runCli parsed the report against the schema; it exists even though the package tried to make
    // it unwritable, and says what it cut.
    expect(run.exitCode).toBe(1);
    expect(run.report.verdict).toBe('fail');
    expect(run.report.findings).toContainEqual(expect.objectContaining({ rule: 'network.dns', package: 'report-flood', failing: true }));
    expect(run.report.cut?.strings).toBeGreaterThan(0);
    expect(run.report.findings.length).toBeLessThanOrEqual(2000);
    const reportFile = path.join(path.dirname(run.output), 'report.json');
    expect((await stat(reportFile)).size).toBeLessThan(64 * 1024 ** 2);
    // The summary is bounded and shows no raw escape byte or bidi override.
    expect(run.stdout.split('\n').length).toBeLessThanOrEqual(210);
    expect(run.stdout).not.toMatch(/[\x1b\u202e]/);
    expect(run.report.exported).toBeNull();
    expect(await exists(run.output)).toBe(false);
  });

  it("a lock's --only-binary :all: is honoured: the sdist's build never runs", async () => {
    const index = await buildFixtureIndex([binaryOnlyDodge]);
    await writeFile(index.lockFile, `--only-binary :all:\n${await readFile(index.lockFile, 'utf8')}`);
    const run = await runCli(index.lockFile, index.indexUrl);
    // pip refuses the sdist (no wheel to take): inconclusive, and its setup.py never ran.
    expect(run.report.findings.filter((f) => f.rule.startsWith('network.'))).toEqual([]);
    expect(run.report.findings).toContainEqual(expect.objectContaining({ rule: 'install.failed' }));
    expect(run.exitCode).toBe(4);
    expect(await exists(run.output)).toBe(false);
  });

  it("a lock's --no-binary under the strict policy is refused before any container starts (exit 2)", async () => {
    const index = await buildFixtureIndex([binaryOnlyDodge]);
    await writeFile(index.lockFile, `--no-binary binary-dodge\n${await readFile(index.lockFile, 'utf8')}`);
    const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-it-'));
    const run = await startCli(index.lockFile, index.indexUrl, work, ['--policy', 'strict']);
    expect(run.exitCode).toBe(2);
    expect(String(run.stderr)).toMatch(/--no-binary \(line 1\) asks pip to build binary-dodge from source/);
    expect(await exists(path.join(work, 'site-packages'))).toBe(false);
  });

  it('bidi, zero-width and separator characters and a dot inside a DNS label reach the terminal escaped', async () => {
    const index = await buildFixtureIndex([misleadingText]);
    const run = await runCli(index.lockFile, index.indexUrl);
    expect(run.exitCode).toBe(1);
    expect(run.report.findings).toContainEqual(
      expect.objectContaining({ rule: 'network.dns', package: 'misleading-text', evidence: expect.objectContaining({ name: 'evil\\.com.dot.exfil.invalid' }) }),
    );
    expect(run.report.findings).toContainEqual(expect.objectContaining({ rule: 'process.exec', package: 'misleading-text' }));
    expect(run.stdout).not.toMatch(/[\u202e\u200b\u2060\ufeff\u061c\u2028\u2029]/);
    expect(run.stdout).toContain('safe\\u202eexe.txt\\u200b\\u2060\\ufeff\\u061c\\u2028\\u2029end');
    expect(run.stdout).toContain('evil\\.com.dot.exfil.invalid');
  });
});
