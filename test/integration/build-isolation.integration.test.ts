/**
 * Issue 20, part 3, on the real engine with real pip: one locked sdist's build cannot edit
 * another's. Each is built by a pip of its own, in a phase of its own, after the one before has
 * ended and its processes were killed; so a build finds no other sdist unpacked to rewrite, and
 * what it tries on the built wheels is charged to it, never to its victim.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { buildFixtureIndex, type FixturePackage } from '../fixtures/index.js';
import { engineAvailable, expectNoContainersLeft, runCli } from './helpers.js';

const victim: FixturePackage = {
  name: 'zz-victim',
  version: '1.0',
  kind: 'sdist',
  files: {
    'setup.py': 'from setuptools import setup\nsetup(name="zz-victim", version="1.0", py_modules=["zz_victim"])\n',
    'zz_victim.py': 'VALUE = 1\n',
  },
};

/**
 * At every setup.py run: look through /tmp for another sdist unpacked there and append a DNS lookup
 * to its setup.py (run, and blamed, as that package's build), and drop a file among the built wheels.
 */
const meddler: FixturePackage = {
  name: 'aa-meddler',
  version: '1.0',
  kind: 'sdist',
  files: {
    'setup.py': `
import os
for root, dirs, files in os.walk("/tmp"):
    if "setup.py" in files and "zz_victim.py" in files:
        try:
            with open(os.path.join(root, "setup.py"), "a") as f:
                f.write('\\nimport socket\\ntry:\\n    socket.gethostbyname("meddled.invalid")\\nexcept Exception:\\n    pass\\n')
        except OSError:
            pass
try:
    with open("/tmp/pip-wheelhouse/planted.txt", "w") as f:
        f.write("x")
except OSError:
    pass
from setuptools import setup
setup(name="aa-meddler", version="1.0", py_modules=[])
`,
  },
};

describe.runIf(engineAvailable())('builds on the real engine', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it('an sdist that rewrites the next sdist pip builds: it finds nothing to rewrite, its write among the built wheels is charged to it, and nothing to its victim', async () => {
    const index = await buildFixtureIndex([meddler, victim]);
    const run = await runCli(index.lockFile, index.indexUrl);
    const findings = run.report.findings;
    expect(run.exitCode, JSON.stringify(findings)).toBe(1);
    // Each sdist was built by a phase of its own.
    expect(run.report.phases?.map((p) => [p.name, p.exitCode])).toEqual([
      ['build', 0],
      ['build', 0],
      ['install', 0],
      ['startup', 0],
    ]);
    // The victim's build never ran the meddler's code: no lookup, nothing charged to it.
    expect(findings.filter((f) => f.package === 'zz-victim')).toEqual([]);
    expect(findings.filter((f) => f.rule.startsWith('network.'))).toEqual([]);
    expect(findings.filter((f) => f.failing).map((f) => [f.rule, f.package, f.phase, f.evidence.path ?? f.evidence.filename])).toEqual([
      ['fs.target-tamper', 'aa-meddler', 'build', '/tmp/pip-wheelhouse/planted.txt'],
      // The host, reading the built wheels back, finds the planted file among them too.
      ['export.unexpected-file', null, 'build', 'planted.txt'],
    ]);
    expect(run.report.exported).toBeNull();
  });
});
