import { describe, expect, it } from 'vitest';
import { buildFootprint, meddlingFindings } from './meddling.js';
import { parseTrace } from './trace.js';

// The first build (pid 20 pip, 21 aa-planter's setup.py), then the second (pid 30 pip, 31 zz-reacher's setup.py).
const FIRST = parseTrace(
  [
    '20 1.000000 mkdir("/tmp/pip-req-build-aaa", 0700) = 0',
    '20 1.000001 openat(AT_FDCWD, "/tmp/pip-req-build-aaa/setup.py", O_WRONLY|O_CREAT|O_TRUNC, 0644) = 3</tmp/pip-req-build-aaa/setup.py>',
    // pip's wheel dir is every build's pip's: not a footprint of the first.
    '20 1.000002 openat(AT_FDCWD, "/tmp/pip-wheelhouse/aa_planter-1.0-py3-none-any.whl", O_WRONLY|O_CREAT, 0644) = 4</tmp/pip-wheelhouse/aa_planter-1.0-py3-none-any.whl>',
    '21 1.100000 openat(AT_FDCWD, "/home/user/.config/pip/pip.conf", O_WRONLY|O_CREAT, 0644) = 3</home/user/.config/pip/pip.conf>',
    '21 1.100001 mkdir("/tmp/left-behind", 0755) = 0',
    // A refused write plants nothing.
    '21 1.100002 openat(AT_FDCWD, "/home/user/.pydistutils.cfg", O_WRONLY|O_CREAT, 0644) = -1 EACCES (Permission denied)',
  ].join('\n'),
);
const firstOf = (pid: number) => (pid === 21 ? 'aa-planter' : null);

const SECOND = parseTrace(
  [
    // pip reads the config the first build planted.
    '30 2.000000 openat(AT_FDCWD, "/home/user/.config/pip/pip.conf", O_RDONLY|O_CLOEXEC) = 3</home/user/.config/pip/pip.conf>',
    // A config the first build only tried to plant: nothing to charge.
    '30 2.000001 openat(AT_FDCWD, "/home/user/.pydistutils.cfg", O_RDONLY) = -1 ENOENT (No such file or directory)',
    '30 2.000002 mkdir("/tmp/pip-req-build-bbb", 0700) = 0',
    // The reacher: into the first build's temp dir (removed by then: the attempt counts), through a
    // directory fd, and at the kept wheels (refused).
    '31 2.100000 openat(AT_FDCWD, "/tmp/pip-req-build-aaa/setup.py", O_WRONLY|O_APPEND) = -1 ENOENT (No such file or directory)',
    '31 2.100001 openat(AT_FDCWD, "/tmp/left-behind", O_RDONLY|O_DIRECTORY) = 4</tmp/left-behind>',
    '31 2.100002 openat(AT_FDCWD, "/var/lib/sandbox-built/aa_planter-1.0-py3-none-any.whl", O_RDWR) = -1 EACCES (Permission denied)',
    '31 2.100003 unlink("/var/lib/sandbox-built/aa_planter-1.0-py3-none-any.whl") = -1 EACCES (Permission denied)',
    // Its own temp dir, and the shared wheel dir, are its own business.
    '31 2.100004 openat(AT_FDCWD, "/tmp/pip-req-build-bbb/x", O_WRONLY|O_CREAT, 0644) = 5</tmp/pip-req-build-bbb/x>',
    '31 2.100005 openat(AT_FDCWD, "/tmp/pip-wheelhouse", O_RDONLY|O_DIRECTORY) = 6</tmp/pip-wheelhouse>',
  ].join('\n'),
);
const secondOf = (pid: number) => (pid === 31 ? 'zz-reacher' : null);

describe('fs.build-meddling', () => {
  const first = buildFootprint('build', FIRST, firstOf, []);

  it("a build's footprint: the /tmp entries it made, and what its package wrote elsewhere; not the wheel dir, not refused writes", () => {
    expect(FIRST.unparsed).toBe(0);
    expect([...first.tempDirs]).toEqual([
      ['/tmp/pip-req-build-aaa', null],
      ['/tmp/left-behind', 'aa-planter'],
    ]);
    expect([...first.planted]).toEqual([['/home/user/.config/pip/pip.conf', 'aa-planter']]);
  });

  it('a later build: each reach into an earlier build or the kept wheels is charged to the reacher, a planted file read to its planter', () => {
    expect(SECOND.unparsed).toBe(0);
    const found = meddlingFindings({ trace: SECOND, packageOf: secondOf, argvOf: (pid) => (pid === 31 ? ['python', 'setup.py'] : ['pip']), earlier: [first] });
    expect(found.map((f) => [f.rule, f.severity, f.package, f.evidence.syscall, f.evidence.path, f.evidence.ok])).toEqual([
      ['fs.build-meddling', 'high', 'aa-planter', 'openat', '/home/user/.config/pip/pip.conf', true],
      ['fs.build-meddling', 'high', 'zz-reacher', 'openat', '/tmp/pip-req-build-aaa/setup.py', false],
      ['fs.build-meddling', 'high', 'zz-reacher', 'openat', '/tmp/left-behind', true],
      // Once per package and path: the unlink after the open adds nothing.
      ['fs.build-meddling', 'high', 'zz-reacher', 'openat', '/var/lib/sandbox-built/aa_planter-1.0-py3-none-any.whl', false],
    ]);
    expect(found[0]!.evidence).toMatchObject({ plantedIn: 'build', reader: null, pid: 30 });
    expect(found[1]!.evidence).toMatchObject({ ownerPhase: 'build', ownerPackage: null, errno: 'ENOENT', argv: 'python setup.py' });
    expect(found[2]!.evidence).toMatchObject({ ownerPhase: 'build', ownerPackage: 'aa-planter' });
    expect(found[3]!.evidence).toMatchObject({ ownerPhase: 'built wheels', errno: 'EACCES' });
  });

  it('the first build has no one to meddle with; a build meddles with nothing of its own', () => {
    expect(meddlingFindings({ trace: FIRST, packageOf: firstOf, argvOf: () => [], earlier: [] })).toEqual([]);
    const second = buildFootprint('build-2', SECOND, secondOf, [first]);
    // What the first made stays the first's; the second's own temp dir is its own.
    expect([...second.tempDirs.keys()]).toEqual(['/tmp/pip-req-build-bbb']);
    const third = parseTrace('40 3.000000 openat(AT_FDCWD, "/tmp/pip-req-build-bbb/x", O_RDONLY) = -1 ENOENT (No such file or directory)');
    expect(
      meddlingFindings({ trace: third, packageOf: () => 'third', argvOf: () => [], earlier: [first, second] }).map((f) => [f.package, f.evidence.ownerPhase]),
    ).toEqual([['third', 'build-2']]);
  });
});
