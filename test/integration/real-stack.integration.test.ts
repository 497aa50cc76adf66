/**
 * A real stack from this machine's wheel mirror: flask, django, pandas and numpy with their
 * dependencies, locked by the hashes of what `pip download` fetched. Real wheels exercise what
 * fixtures cannot: console scripts, `.data` directories, compiled extensions, vendored trees,
 * namespace-ish layouts, thousands of files. It must pass with no finding above info.
 *
 * Tests must not depend on the mirror, so this one runs only where it exists (the development and
 * CI machines of this project have it at /opt/pypi).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { engineAvailable, expectNoContainersLeft, runCli } from './helpers.js';

const MIRROR = '/opt/pypi/simple';
const EXTRA = '/opt/pypi-more/simple';

describe.runIf(engineAvailable() && existsSync(MIRROR))('a real 14-package stack from the mirror', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('installs, passes with no finding above info, and imports on the host', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'sandbox-install-real-'));
    const wheels = path.join(dir, 'wheels');
    const indexes = ['--index-url', `file://${MIRROR}`, ...(existsSync(EXTRA) ? ['--extra-index-url', `file://${EXTRA}`] : [])];
    await execa('python3', ['-m', 'pip', 'download', '--quiet', '--only-binary', ':all:', '-d', wheels, ...indexes, 'flask', 'django', 'pandas', 'numpy'], {
      env: { PIP_CONFIG_FILE: '/dev/null' },
    });
    const lines: string[] = [];
    for (const file of (await readdir(wheels)).sort()) {
      const [name, version] = file.split('-');
      const sha = createHash('sha256')
        .update(await readFile(path.join(wheels, file)))
        .digest('hex');
      lines.push(`${name}==${version} --hash=sha256:${sha}`);
    }
    expect(lines.length).toBeGreaterThanOrEqual(12);
    const lock = path.join(dir, 'requirements.lock');
    await writeFile(lock, `${lines.join('\n')}\n`);

    const run = await runCli(lock, `file://${MIRROR}`, indexes.slice(2));
    expect(run.report.findings.filter((f) => f.severity !== 'info').map((f) => [f.rule, f.package, f.evidence])).toEqual([]);
    expect(run.report.verdict).toBe('pass');
    expect(run.exitCode).toBe(0);
    const imported = await execa('python3', [
      '-I',
      '-c',
      `import sys; sys.path.insert(0, ${JSON.stringify(run.output)}); import flask, django, pandas, numpy; print(pandas.DataFrame({"a": [1, 2]}).a.sum())`,
    ]);
    expect(imported.stdout).toBe('3');
    process.stderr.write(`real stack: ${lines.length} wheels, timings ${JSON.stringify(run.report.timings)}\n`);
  });
});
