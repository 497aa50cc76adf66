/**
 * Issue 19, parts 1 and 4: ordinary sdists built with the common PEP 517 backends — hatchling,
 * flit-core and poetry-core (real wheels, test/fixtures/build-backends) — stay at zero findings
 * above info, with their build requirements pinned: `lock` resolves in the sandbox and writes the
 * pins beside the lock; the main job then builds each sdist once from those pins alone, and no
 * build requirement is served unpinned.
 */
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseBuildPins } from '../../src/lock/build-pins.js';
import { BUILD_BACKENDS_DIR, buildFixtureIndex, type FixturePackage } from '../fixtures/index.js';
import { engineAvailable, expectNoContainersLeft, runCli, runLock } from './helpers.js';

/** An sdist built by `backend` (its build-system table), with one module that says which it is. */
function backendSdist(name: string, buildSystem: string, extra = ''): FixturePackage {
  const module = name.replaceAll('-', '_');
  return {
    name,
    version: '1.0',
    kind: 'sdist',
    files: {
      'pyproject.toml': `${buildSystem}\n[project]\nname = "${name}"\nversion = "1.0"\ndescription = "built by ${name}"\n${extra}`,
      [`${module}/__init__.py`]: `"""${name}."""\nBACKEND = ${JSON.stringify(name)}\n`,
    },
  };
}

const sdists = [
  backendSdist('bb-hatch', '[build-system]\nrequires = ["hatchling"]\nbuild-backend = "hatchling.build"\n'),
  backendSdist('bb-flit', '[build-system]\nrequires = ["flit_core>=3.2,<5"]\nbuild-backend = "flit_core.buildapi"\n'),
  backendSdist(
    'bb-poetry',
    '[build-system]\nrequires = ["poetry-core>=2.0"]\nbuild-backend = "poetry.core.masonry.api"\n',
    '[tool.poetry]\npackages = [{ include = "bb_poetry" }]\n',
  ),
];

describe.runIf(engineAvailable())('sdists of the common build backends, on the real engine', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('hatchling, flit-core and poetry-core: locked with their build pins, then installed from them with zero findings above info', async () => {
    const backends = (await readdir(BUILD_BACKENDS_DIR)).filter((name) => name.endsWith('.whl'));
    const index = await buildFixtureIndex(sdists, { extraWheels: backends.map((name) => path.join(BUILD_BACKENDS_DIR, name)) });
    const work = await mkdtemp(path.join(tmpdir(), 'sandbox-install-backends-it-'));
    await writeFile(path.join(work, 'requirements.in'), sdists.map((s) => `${s.name}\n`).join(''));
    const lockFile = path.join(work, 'requirements.lock');

    const locked = await runLock(path.join(work, 'requirements.in'), index.indexUrl, lockFile, ['--timeout', '240']);
    expect(
      locked.report.findings.filter((f) => f.severity !== 'info'),
      JSON.stringify(locked.report.findings),
    ).toEqual([]);
    expect(locked.exitCode).toBe(0);
    // Each backend and what it needs, pinned to the file the upstream has.
    const pins = parseBuildPins(await readFile(`${lockFile}.build.txt`, 'utf8'), 'pins');
    const sha = (name: string) => index.files.find((f) => f.name === name)!.sha256;
    for (const [name, file] of [
      ['hatchling', 'hatchling'],
      ['flit-core', 'flit_core'],
      ['poetry-core', 'poetry_core'],
      ['pathspec', 'pathspec'],
      ['pluggy', 'pluggy'],
    ]) {
      expect(pins.find((pin) => pin.name === name)?.sha256, name).toEqual([sha(file!)]);
    }

    const installed = await runCli(lockFile, index.indexUrl, ['--timeout', '240']);
    expect(
      installed.report.findings.filter((f) => f.severity !== 'info'),
      JSON.stringify(installed.report.findings),
    ).toEqual([]);
    expect(installed.exitCode).toBe(0);
    expect(installed.report.phases?.map((p) => [p.name, p.exitCode])).toEqual([
      ['build', 0],
      ['build', 0],
      ['build', 0],
      ['install', 0],
      ['startup', 0],
    ]);
    // Every build requirement came from the pins: none was served as the unpinned opt-in.
    expect(installed.report.findings.filter((f) => f.rule === 'integrity.build-requirement')).toEqual([]);
    for (const s of sdists) {
      const module = s.name.replaceAll('-', '_');
      expect(await readFile(path.join(installed.output, module, '__init__.py'), 'utf8')).toContain(`BACKEND = ${JSON.stringify(s.name)}`);
    }
  });
});
