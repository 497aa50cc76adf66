import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ancestry, attributeProcess, buildDirOf, importedBy, packageOfProcess, pipPids, startupOwners } from './attribution.js';
import { parseTrace, type ProcessInfo, type Trace } from './trace.js';

const SAMPLE = readFileSync(new URL('./testdata/strace-sample.txt', import.meta.url), 'utf8');
const HEX = '2c8a23b76e77438d94495cc80530245f';

describe('packageOfProcess', () => {
  const sample = parseTrace(SAMPLE);

  it('names the package whose build dir a process or its ancestor worked in', () => {
    expect(attributeProcess(sample, 20)).toEqual({ package: 'evil-pkg', buildDir: `/tmp/pip-install-q8_72yms/evil-pkg_${HEX}`, pid: 18 });
    expect(packageOfProcess(sample, 12)).toBeNull();
    expect(packageOfProcess(sample, 999)).toBeNull();
  });

  it('keeps blaming the package whose build started a process, whatever dir it moves to', () => {
    const trace = parseTrace(
      [
        '10 1.000001 vfork() = 11',
        `11 1.000002 chdir("/tmp/pip-install-abc/evil_${HEX}") = 0`,
        // evil's build moves into another package's build dir before forking, to pin it on requests.
        `11 1.000003 chdir("/tmp/pip-install-abc/requests_${'f'.repeat(32)}") = 0`,
        '11 1.000004 fork() = 12',
        '12 1.000005 execve("/usr/bin/curl", ["curl", "http://x"], 0x1 /* 0 vars */) = 0',
      ].join('\n'),
    );
    expect(packageOfProcess(trace, 12)).toBe('evil');
    expect(trace.processes.get(12)?.cwd).toBe(`/tmp/pip-install-abc/requests_${'f'.repeat(32)}`);
  });

  it('returns no name for a pip-req-build dir, but still says it is a build', () => {
    const trace = parseTrace(['10 1.000001 vfork() = 11', '11 1.000002 chdir("/tmp/pip-req-build-k2j3h4") = 0'].join('\n'));
    expect(packageOfProcess(trace, 11)).toBeNull();
    expect(attributeProcess(trace, 11)).toEqual({ package: null, buildDir: '/tmp/pip-req-build-k2j3h4', pid: 11 });
    expect(attributeProcess(trace, 10)).toBeNull();
  });
});

describe('buildDirOf', () => {
  it.each([
    [`/tmp/pip-install-q8_72yms/evil-pkg_${HEX}`, 'evil-pkg'],
    [`/tmp/pip-install-q8_72yms/evil-pkg_${HEX}/build/lib`, 'evil-pkg'],
    [`/tmp/pip-install-x/Zope.Interface__Extra_${HEX}`, 'zope-interface-extra'],
    [`/tmp/pip-install-x/my_pkg_${HEX.slice(1)}`, `my-pkg-${HEX.slice(1)}`], // 31 hex digits: part of the name
    ['/tmp/pip-install-x/requests', 'requests'], // no parallel builds: no suffix
    [`/var/tmp/pip-wheel-abc/Some_Name_${HEX}`, 'some-name'],
  ])('%s names %s', (dir, name) => {
    expect(buildDirOf(dir)?.package).toBe(name);
  });

  it.each([
    ['/tmp/pip-wheel-_qh3wmij/.tmp-m5nq13pu'],
    ['/tmp/pip-wheel-_qh3wmij'],
    ['/tmp/pip-install-x'],
    ['/tmp/pip-build-env-e4g603gw/overlay'],
    ['/home/sandbox'],
    ['/tmp/pip-install-x/-bad-_' + HEX],
  ])('%s is no build dir', (dir) => {
    expect(buildDirOf(dir)).toBeNull();
  });
});

describe('ancestry', () => {
  const proc = (pid: number, ppid: number | null): ProcessInfo => ({
    pid,
    ppid,
    argv: [],
    exe: null,
    cwd: '/',
    cwds: ['/'],
    start: 0,
    end: null,
    exitCode: null,
    signal: null,
  });
  const traceOf = (...procs: ProcessInfo[]): Trace => ({
    events: [],
    processes: new Map(procs.map((p) => [p.pid, p])),
    rootPid: procs[0]?.pid ?? null,
    unparsed: 0,
    oversized: 0,
    heads: [],
    dropped: 0,
    payloadDropped: 0,
  });

  it('lists self first and the root last', () => {
    expect(ancestry(parseTrace(SAMPLE), 20).map((p) => p.pid)).toEqual([20, 19, 18, 12, 11]);
  });

  it('stops at a cycle or an unknown parent', () => {
    expect(ancestry(traceOf(proc(1, 3), proc(2, 1), proc(3, 2)), 1).map((p) => p.pid)).toEqual([1, 3, 2]);
    expect(ancestry(traceOf(proc(5, 5)), 5).map((p) => p.pid)).toEqual([5]);
    expect(ancestry(traceOf(proc(1, 42)), 1).map((p) => p.pid)).toEqual([1]);
    expect(ancestry(traceOf(), 1)).toEqual([]);
    expect(packageOfProcess(traceOf(proc(1, 3), proc(2, 1), proc(3, 2)), 2)).toBeNull();
  });
});

describe('pipPids', () => {
  const RUNNER = '/usr/lib/python3/dist-packages/pip/__pip-runner__.py';
  const lines = [
    // The traced root: pip's runner on the installer interpreter.
    `11 1.2 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "${RUNNER}", "install"], 0x7ffd /* 5 vars */) = 0`,
    // pip installing build requirements: a runner started by the installer, in the installer's cwd.
    '11 1.3 vfork() = 12',
    `12 1.4 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "${RUNNER}", "install", "--ignore-installed", "setuptools"], 0x7ffd /* 5 vars */) = 0`,
    // A build hook in its build dir that execs itself into a pip runner to pass for pip.
    '11 1.5 vfork() = 13',
    '13 1.6 chdir("/tmp/pip-install-abc/evil-pkg_0123456789abcdef0123456789abcdef") = 0',
    '13 1.7 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "_in_process.py", "build_wheel"], 0x7ffd /* 5 vars */) = 0',
    '13 1.8 chdir("/home/user") = 0',
    `13 1.9 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "${RUNNER}", "install"], 0x7ffd /* 5 vars */) = 0`,
  ];

  it("is pip's installer and its build-requirement runners, never a hook dressed as one", () => {
    const trace = parseTrace(lines.join('\n'));
    expect([...pipPids(trace, '/opt/installer/bin/python')].sort()).toEqual([11, 12]);
  });
});

describe('importedBy (the import phase)', () => {
  const child = (pid: number, module: string, dist: string) =>
    `${pid} 2.0${pid} execve("/usr/bin/python3", ["python3", "-I", "-S", "-B", "-c", "import …", "/opt/target/lib/python3.11/site-packages", "${module}", "${dist}"], 0x1 /* 0 vars */) = 0`;
  const trace = parseTrace(
    [
      '20 1.000000 execve("/usr/bin/python3", ["python3", "-I", "-S", "/opt/sandbox-install/importer.py"], 0x1 /* 0 vars */) = 0',
      '20 1.100000 vfork() = 21',
      child(21, 'sneaky', 'Sneaky_Pkg'),
      // sneaky's import re-executes itself claiming to be victim's import, and forks a helper.
      '21 2.100000 execve("/usr/bin/python3", ["python3", "-I", "-S", "-B", "-c", "x", "/s", "victim", "victim-lib"], 0x1 /* 0 vars */) = 0',
      '21 2.200000 fork() = 22',
      // It also starts a grandchild that looks exactly like an import child.
      '22 2.300000 fork() = 23',
      child(23, 'victim', 'victim-lib'),
      '20 3.000000 vfork() = 24',
      child(24, 'victim', 'victim-lib'),
    ].join('\n'),
  );
  const of = importedBy(trace);

  it("credits each of the importer's children, and everything below it, to the distribution the importer named", () => {
    expect([21, 22, 23, 24].map(of)).toEqual(['sneaky-pkg', 'sneaky-pkg', 'sneaky-pkg', 'victim-lib']);
  });

  it('credits the importer itself to no one', () => {
    expect(of(20)).toBeNull();
  });

  it("keeps the launcher's name after it execs the application (python3 main.py), for the process and its threads", () => {
    const app = parseTrace(
      [
        '20 1.000000 execve("/usr/bin/python3", ["python3", "-I", "-S", "/opt/sandbox-install/importer.py"], 0x1 /* 0 vars */) = 0',
        '20 1.100000 vfork() = 31',
        '31 1.200000 execve("/usr/bin/python3", ["python3", "-I", "-S", "-B", "-c", "import os…", "/opt/target/lib/python3.11/site-packages", "later_timer", "later-timer", "/tmp/tmpa/tmpb"], 0x1 /* 0 vars */) = 0',
        '31 1.300000 execve("/usr/bin/python3", ["python3", "main.py"], 0x1 /* 5 vars */) = 0',
        '31 1.400000 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f, parent_tid=0x7f, exit_signal=0, stack=0x7f, stack_size=0x7ff, tls=0x7f} => {parent_tid=[32]}, 88) = 32',
        '20 3.000000 vfork() = 33',
        '33 3.100000 execve("/usr/bin/python3", ["python3", "-I", "-S", "-B", "-c", "import os…", "/opt/target/lib/python3.11/site-packages", "plain", "plain-lib", "/tmp/tmpa/tmpc"], 0x1 /* 0 vars */) = 0',
        '33 3.200000 execve("/usr/bin/python3", ["python3", "main.py"], 0x1 /* 5 vars */) = 0',
      ].join('\n'),
    );
    const owner = importedBy(app);
    expect([31, 32, 33, 20].map(owner)).toEqual(['later-timer', 'later-timer', 'plain-lib', null]);
  });
});

describe('startupOwners (the startup phase)', () => {
  const SITE = '/opt/target/lib/python3.11/site-packages/';
  // 30 is the startup runner; 31 the interpreter it starts, which reads evil's .pth, makes a query,
  // reads the victim's .pth, and had started 32 from evil's code before that.
  const trace = parseTrace(
    [
      '30 1.000000 execve("/usr/bin/python3", ["python3", "-I", "-S", "/opt/sandbox-install/startup.py"], 0x7ffd /* 5 vars */) = 0',
      '30 1.000001 vfork() = 31',
      '31 1.000002 execve("/usr/bin/python3", ["/usr/bin/python3", "-c", "pass"], 0x7ffd /* 5 vars */) = 0',
      `31 1.100000 openat(AT_FDCWD, "${SITE}aa_evil.pth", O_RDONLY|O_CLOEXEC) = 3`,
      `31 1.100001 openat(AT_FDCWD, "${SITE}evil-1.0.dist-info/METADATA", O_RDONLY|O_CLOEXEC) = 3`,
      '31 1.100002 connect(3, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0',
      '31 1.100003 vfork() = 32',
      '32 1.100004 execve("/bin/true", ["true"], 0x7ffd /* 5 vars */) = 0',
      `31 1.200000 openat(AT_FDCWD, "${SITE}zz_victim.pth", O_RDONLY|O_CLOEXEC) = 3`,
      `31 1.200001 openat(AT_FDCWD, "${SITE}unowned.py", O_RDONLY|O_CLOEXEC) = 3`,
    ].join('\n'),
  );
  const owners = new Map([
    ['aa_evil.pth', 'evil'],
    ['evil-1.0.dist-info/METADATA', 'victim'],
    ['zz_victim.pth', 'victim'],
  ]);
  const ownerAt = startupOwners(trace, SITE, (rel) => owners.get(rel) ?? null);

  it('names the owner of the code a process last loaded before the moment it acted', () => {
    expect(ownerAt(31, 1.05)).toBeNull();
    // Metadata read in between names nobody: the query is still evil's.
    expect(ownerAt(31, 1.100002)).toBe('evil');
    expect(ownerAt(31, 1.3)).toBe('victim');
    expect(ownerAt(31)).toBe('victim');
  });

  it("gives a child its parent's owner at the moment it was started", () => {
    expect(ownerAt(32, 1.100004)).toBe('evil');
    expect(ownerAt(32)).toBe('evil');
    expect(ownerAt(30)).toBeNull();
  });
});
