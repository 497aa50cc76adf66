import { describe, expect, it } from 'vitest';
import type { FsChange } from '../core/outcome.js';
import { installerPids } from './attribution.js';
import {
  filesystemFindings,
  isBytecodeFile,
  isExpectedChange,
  isSensitivePath,
  refusedWriteFindings,
  targetTamperFindings,
  writersOf,
  type FsContext,
  type FsLayout,
} from './filesystem.js';
import { parseTrace } from './trace.js';

// The layout observe() passes: the venv, the sandbox user's home, our state dir, and the input mounts.
const LAYOUT: FsLayout = {
  target: '/opt/target',
  home: '/home/sandbox',
  state: '/var/lib/sandbox-install',
  mounts: ['/input', '/input/requirements.lock', '/input/build/'],
  allowed: [],
};
const HOMES = ['/home/sandbox', '/root'];

const added = (path: string): FsChange => ({ path, kind: 'added' });
const modified = (path: string): FsChange => ({ path, kind: 'modified' });
const deleted = (path: string): FsChange => ({ path, kind: 'deleted' });

describe('isExpectedChange', () => {
  it.each([
    added('/opt/target'),
    added('/opt/target/lib/python3.11/site-packages/six.py'),
    modified('/opt/target/bin'),
    added('/tmp/pip-install-q8_72yms'),
    added('/tmp/pip-build-env-e4g603gw/overlay/bin/sh'),
    deleted('/tmp/pip-unpack-x/six.whl'),
    added('/var/lib/sandbox-install'),
    added('/var/lib/sandbox-install/strace.log'),
    added('/input'),
    added('/input/requirements.lock'),
    // A directory of ours, the build phases' locks: itself and all in it.
    added('/input/build'),
    added('/input/build/2.lock'),
  ])('accepts $kind $path', (change) => {
    expect(isExpectedChange(change, LAYOUT)).toBe(true);
  });

  it.each([
    modified('/home/sandbox/.bashrc'),
    added('/opt/target2/x'),
    added('/opt/targetx'),
    added('/tmp/pip'),
    added('/tmp/pip-'),
    added('/tmp/x/pip-install-1/y'),
    added('/var/lib/sandbox-installer'),
    added('/inputs'),
    added('/input/evil.py'),
    added('/input/buildx'),
    added('/input/build.lock'),
    added('/etc/cron.d/evil'),
    deleted('/usr/bin/pip'),
  ])('rejects $kind $path', (change) => {
    expect(isExpectedChange(change, LAYOUT)).toBe(false);
  });
});

describe('isExpectedChange: writes.allow', () => {
  it('accepts a write under an allowed directory, but not under a sibling that shares its prefix', () => {
    const layout: FsLayout = { ...LAYOUT, allowed: ['/data', '/srv/cache'] };
    expect([added('/data'), added('/data/x/y.bin'), modified('/srv/cache/index'), deleted('/data/old')].map((c) => isExpectedChange(c, layout))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect([added('/data2'), added('/data2/x'), added('/datax'), added('/srv/cache2/index'), modified('/srv')].map((c) => isExpectedChange(c, layout))).toEqual(
      [false, false, false, false, false],
    );
    // Without the policy's allow list, the same write is a finding.
    expect(isExpectedChange(added('/data/x/y.bin'), LAYOUT)).toBe(false);
  });
});

describe('isSensitivePath', () => {
  it.each([
    '/home/sandbox/.ssh',
    '/home/sandbox/.ssh/id_rsa',
    '/root/.ssh/authorized_keys',
    '/home/sandbox/.aws/credentials',
    '/home/sandbox/.netrc',
    '/home/sandbox/.pypirc',
    '/home/sandbox/.config/gh/hosts.yml',
    '/home/sandbox/.docker/config.json',
    '/home/sandbox/.git-credentials',
    '/home/sandbox/.gnupg/private-keys-v1.d/x.key',
    '/home/sandbox/.kube/config',
    '/home/sandbox/.config/gcloud/credentials.db',
    '/home/sandbox/.azure/accessTokens.json',
    '/home/sandbox/.npmrc',
    '/home/sandbox/.mozilla/firefox/profiles.ini',
    '/home/sandbox/.config/google-chrome/Default/Cookies',
    '/home/sandbox/.config/BraveSoftware/Brave-Browser/Default/Login Data',
    '/home/sandbox/.bash_history',
    '/etc/shadow',
    '/etc/shadow-',
    '/etc/gshadow',
    '/etc/sudoers',
    '/proc/1/environ',
    '/proc/self/environ',
  ])('flags %s', (file) => {
    expect(isSensitivePath(file, HOMES)).toBe(true);
  });

  it.each([
    '/home/sandbox/.bashrc',
    '/home/sandbox/.sshx',
    '/home/sandbox/.netrc.bak',
    '/home/sandbox/.docker/other.json',
    '/home/sandbox/.config/ghx/hosts.yml',
    '/home/other/.ssh/id_rsa',
    '/home/sandbox2/.ssh/id_rsa',
    '/tmp/.ssh/id_rsa',
    '/etc/passwd',
    '/etc/shadowx',
    '/proc/1/cmdline',
    '/proc/self/environment',
  ])('does not flag %s', (file) => {
    expect(isSensitivePath(file, HOMES)).toBe(false);
  });

  it('reads credential paths relative to the homes it is given', () => {
    expect(isSensitivePath('/srv/app/.aws/config', ['/srv/app'])).toBe(true);
    expect(isSensitivePath('/root/.aws/config', ['/srv/app'])).toBe(false);
  });
});

describe('writersOf', () => {
  it('keeps the last pid that wrote, created, unlinked, linked or renamed each path; reads and failures do not count', () => {
    const trace = parseTrace(
      [
        '10 1.000001 openat(AT_FDCWD, "/etc/hosts", O_RDONLY|O_CLOEXEC) = 3',
        '10 1.000002 openat(AT_FDCWD, "/home/sandbox/.bashrc", O_WRONLY|O_CREAT|O_APPEND, 0666) = 3',
        '10 1.000003 vfork() = 11',
        '11 1.000004 openat(AT_FDCWD, "/home/sandbox/.bashrc", O_WRONLY|O_APPEND) = 3',
        '11 1.000005 openat(AT_FDCWD, "/etc/profile", O_WRONLY|O_APPEND) = -1 EACCES (Permission denied)',
        '11 1.000006 unlink("/tmp/gone") = 0',
        '11 1.000007 symlink("/etc/passwd", "/tmp/link") = 0',
        '10 1.000008 rename("/tmp/a", "/tmp/b") = 0',
      ].join('\n'),
    );
    expect(trace.unparsed).toBe(0);
    expect(Object.fromEntries(writersOf(trace))).toEqual({
      '/home/sandbox/.bashrc': 11,
      '/tmp/gone': 11,
      '/tmp/link': 11,
      '/tmp/a': 10,
      '/tmp/b': 10,
    });
  });
});

/** pid 10 is pip, pid 11 a build hook of evil-pkg that sits in the package's build dir. */
function context(changes: FsChange[], lines: string[]): FsContext {
  const trace = parseTrace(
    [
      '10 1.000000 execve("/usr/bin/python3", ["python3", "-m", "pip", "install"], 0x7ffd /* 5 vars */) = 0',
      '10 1.000001 vfork() = 11',
      '11 1.000002 execve("/opt/target/bin/python", ["/opt/target/bin/python", "_in_process.py", "build_wheel"], 0x7ffd /* 5 vars */) = 0',
      ...lines,
    ].join('\n'),
  );
  return {
    changes,
    trace,
    layout: LAYOUT,
    packageOf: (pid) => (pid === 11 ? 'evil-pkg' : null),
    argvOf: (pid) => trace.processes.get(pid)?.argv ?? [],
  };
}

describe('filesystemFindings: writes outside the target', () => {
  it('reports only the leaves outside the expected places, attributed to the process that wrote them', () => {
    const ctx = context(
      [
        modified('/home'),
        modified('/home/sandbox'),
        modified('/home/sandbox/.bashrc'),
        modified('/opt'),
        added('/opt/target/lib/python3.11/site-packages/six.py'),
        modified('/tmp'),
        added('/tmp/pip-install-abc'),
        added('/tmp/x'),
        added('/input'),
        added('/input/requirements.lock'),
        modified('/var'),
        added('/var/lib/sandbox-install/status.json'),
      ],
      [
        '11 1.000010 openat(AT_FDCWD, "/home/sandbox/.bashrc", O_WRONLY|O_CREAT|O_APPEND, 0666) = 3',
        '11 1.000011 openat(AT_FDCWD, "/opt/target/lib/python3.11/site-packages/six.py", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3',
      ],
    );
    const { findings, events } = filesystemFindings(ctx);
    expect(findings).toEqual([
      {
        rule: 'fs.write-outside-target',
        severity: 'high',
        package: 'evil-pkg',
        message: 'modified /home/sandbox/.bashrc outside the install target',
        evidence: { path: '/home/sandbox/.bashrc', kind: 'modified', pid: 11, argv: '/opt/target/bin/python _in_process.py build_wheel' },
      },
      {
        rule: 'fs.write-outside-target',
        severity: 'high',
        package: null,
        message: 'added /tmp/x outside the install target',
        evidence: { path: '/tmp/x', kind: 'added', pid: null, argv: null },
      },
    ]);
    // Every change is listed for the report, with whether it was expected.
    expect(events).toHaveLength(12);
    expect(events.find((e) => e.path === '/home/sandbox/.bashrc')).toEqual({ path: '/home/sandbox/.bashrc', kind: 'modified', expected: false });
    expect(events.find((e) => e.path === '/input')).toEqual({ path: '/input', kind: 'added', expected: true });
  });

  it('reports a modified directory with no listed children, and a deleted file', () => {
    const { findings } = filesystemFindings(context([modified('/etc'), deleted('/usr/bin/pip')], ['10 1.000010 unlink("/usr/bin/pip") = 0']));
    expect(findings.map((f) => [f.rule, f.package, f.evidence.path, f.evidence.kind, f.evidence.pid])).toEqual([
      ['fs.write-outside-target', null, '/etc', 'modified', null],
      ['fs.write-outside-target', null, '/usr/bin/pip', 'deleted', 10],
    ]);
  });

  it('attributes a file a package renamed into place to that package', () => {
    const { findings } = filesystemFindings(context([added('/etc/cron.d/job')], ['11 1.000010 rename("/tmp/pip-install-abc/job", "/etc/cron.d/job") = 0']));
    expect(findings).toEqual([
      expect.objectContaining({
        rule: 'fs.write-outside-target',
        package: 'evil-pkg',
        evidence: expect.objectContaining({ path: '/etc/cron.d/job', pid: 11 }),
      }),
    ]);
  });
});

describe('filesystemFindings: credential reads', () => {
  it('reports every attempt, failed ones too, once per package and path', () => {
    const { findings } = filesystemFindings(
      context(
        [],
        [
          '11 1.000010 openat(AT_FDCWD, "/home/sandbox/.ssh/id_rsa", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)',
          '11 1.000011 openat(AT_FDCWD, "/home/sandbox/.ssh/id_rsa", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)',
          '11 1.000012 access("/root/.aws/credentials", R_OK) = -1 EACCES (Permission denied)',
          '11 1.000013 openat(AT_FDCWD, "/proc/self/environ", O_RDONLY) = 3',
          '10 1.000014 openat(AT_FDCWD, "/home/sandbox/.ssh/id_rsa", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)',
          '11 1.000015 openat(AT_FDCWD, "/home/sandbox/.bashrc", O_RDONLY) = 3',
        ],
      ),
    );
    const argv = '/opt/target/bin/python _in_process.py build_wheel';
    expect(findings).toEqual([
      {
        rule: 'fs.sensitive-read',
        severity: 'high',
        package: 'evil-pkg',
        message: 'tried to open /home/sandbox/.ssh/id_rsa (ENOENT)',
        evidence: { path: '/home/sandbox/.ssh/id_rsa', syscall: 'openat', ok: false, errno: 'ENOENT', write: false, pid: 11, argv },
      },
      {
        rule: 'fs.sensitive-read',
        severity: 'high',
        package: 'evil-pkg',
        message: 'probed (access) /root/.aws/credentials (EACCES)',
        evidence: { path: '/root/.aws/credentials', syscall: 'access', ok: false, errno: 'EACCES', write: false, pid: 11, argv },
      },
      {
        rule: 'fs.sensitive-read',
        severity: 'high',
        package: 'evil-pkg',
        message: 'tried to open /proc/self/environ',
        evidence: { path: '/proc/self/environ', syscall: 'openat', ok: true, errno: null, write: false, pid: 11, argv },
      },
      {
        rule: 'fs.sensitive-read',
        severity: 'high',
        package: null,
        message: 'tried to open /home/sandbox/.ssh/id_rsa (ENOENT)',
        evidence: { path: '/home/sandbox/.ssh/id_rsa', syscall: 'openat', ok: false, errno: 'ENOENT', write: false, pid: 10, argv: 'python3 -m pip install' },
      },
    ]);
  });

  it("resolves dirfd-relative opens and probes; pip's own probes and reads of ~/.netrc (requests' index auth) are not findings, a write is", () => {
    const { findings } = filesystemFindings({
      ...context(
        [],
        [
          '11 1.000010 openat(3</home/sandbox>, ".ssh/id_rsa", O_RDONLY) = -1 ENOENT (No such file or directory)',
          '11 1.000011 openat(4</etc>, "shadow", O_RDONLY) = -1 EACCES (Permission denied)',
          '11 1.000012 openat(5</proc/self>, "environ", O_RDONLY) = 6</proc/self/environ>',
          '11 1.000013 newfstatat(AT_FDCWD</tmp>, "/home/sandbox/.aws/credentials", 0x7ffc, 0) = -1 ENOENT (No such file or directory)',
          '11 1.000014 readlink("/home/sandbox/.docker/config.json", 0x7ffc, 4096) = -1 ENOENT (No such file or directory)',
          '10 1.000015 newfstatat(AT_FDCWD</home/sandbox>, "/home/sandbox/.netrc", 0x7ffc, 0) = -1 ENOENT (No such file or directory)',
          '10 1.000015 openat(AT_FDCWD</home/sandbox>, "/home/sandbox/.netrc", O_RDONLY|O_CLOEXEC) = 3</home/sandbox/.netrc>',
          '10 1.000015 openat(AT_FDCWD</home/sandbox>, "/home/sandbox/.pypirc", O_RDONLY|O_CLOEXEC) = 3</home/sandbox/.pypirc>',
          '10 1.000015 openat(AT_FDCWD</home/sandbox>, "/home/sandbox/.netrc", O_WRONLY|O_APPEND) = 3</home/sandbox/.netrc>',
          // A directory fd strace could not name: judged by the relative path's own shape.
          '11 1.000016 openat(7, ".aws/credentials", O_RDONLY) = -1 ENOENT (No such file or directory)',
          '11 1.000017 openat(8, "gshadow", O_RDONLY) = -1 EACCES (Permission denied)',
          '11 1.000018 openat(9, "setup.cfg", O_RDONLY) = -1 ENOENT (No such file or directory)',
        ],
      ),
      pipPids: new Set([10]),
    });
    expect(findings.map((f) => [f.package, f.evidence.syscall, f.evidence.path])).toEqual([
      ['evil-pkg', 'openat', '/home/sandbox/.ssh/id_rsa'],
      ['evil-pkg', 'openat', '/etc/shadow'],
      ['evil-pkg', 'openat', '/proc/self/environ'],
      ['evil-pkg', 'newfstatat', '/home/sandbox/.aws/credentials'],
      ['evil-pkg', 'readlink', '/home/sandbox/.docker/config.json'],
      [null, 'openat', '/home/sandbox/.pypirc'],
      [null, 'openat', '/home/sandbox/.netrc'],
      ['evil-pkg', 'openat', '.aws/credentials'],
      ['evil-pkg', 'openat', 'gshadow'],
    ]);
  });

  it('sees a relative open through the working directory', () => {
    const { findings } = filesystemFindings(
      context(
        [],
        ['11 1.000010 chdir("/home/sandbox") = 0', '11 1.000011 openat(AT_FDCWD, ".ssh/id_ed25519", O_RDONLY) = -1 ENOENT (No such file or directory)'],
      ),
    );
    expect(findings.map((f) => [f.rule, f.package, f.evidence.path])).toEqual([['fs.sensitive-read', 'evil-pkg', '/home/sandbox/.ssh/id_ed25519']]);
  });
});

describe('targetTamperFindings', () => {
  // pid 15 is pip's runner on the installer venv (the traced root), 16 a thread of it; 11 a build
  // hook that the installer started.
  const SITE = '/opt/target/lib/python3.11/site-packages';
  const trace = parseTrace(
    [
      '15 1.000002 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "/usr/lib/python3/dist-packages/pip/__pip-runner__.py", "install"], 0x7ffd /* 5 vars */) = 0',
      '15 1.000003 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f, parent_tid=0x7f, exit_signal=0, stack=0x7f, stack_size=0x7fff, tls=0x7f} => {parent_tid=[16]}, 88) = 16',
      '15 1.000004 vfork() = 11',
      '11 1.000005 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "_in_process.py", "build_wheel"], 0x7ffd /* 5 vars */) = 0',
      `15 1.100000 openat(AT_FDCWD, "${SITE}/six.py", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0644) = 3`,
      `16 1.100001 mkdir("${SITE}/six-1.16.0.dist-info", 0777) = 0`,
      `11 1.200000 openat(AT_FDCWD, "${SITE}/zz_pivot.pth", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3`,
      `11 1.200001 mkdir("${SITE}/forged-1.0.dist-info", 0777) = 0`,
      `11 1.200002 chmod("${SITE}/six.py", 0755) = -1 ENOENT (No such file or directory)`,
      `11 1.200003 linkat(AT_FDCWD, "/tmp/evil.py", AT_FDCWD, "${SITE}/six.py", 0) = 0`,
      `11 1.200004 rename("/tmp/x", "${SITE}/y.py") = 0`,
      `11 1.200005 truncate("${SITE}/y.py", 0) = 0`,
      `11 1.200006 openat(AT_FDCWD, "${SITE}/six.py", O_RDONLY|O_CLOEXEC) = 3`,
      '11 1.200007 openat(AT_FDCWD, "/tmp/pip-build/out.whl", O_WRONLY|O_CREAT, 0644) = 4',
    ].join('\n'),
  );

  it('parses every kind of change to a path', () => {
    expect(trace.unparsed).toBe(0);
    expect(trace.events.filter((e) => e.kind === 'fsop').map((e) => e.kind === 'fsop' && [e.syscall, e.path, e.from, e.ok])).toEqual([
      ['mkdir', `${SITE}/six-1.16.0.dist-info`, null, true],
      ['mkdir', `${SITE}/forged-1.0.dist-info`, null, true],
      ['chmod', `${SITE}/six.py`, null, false],
      ['linkat', `${SITE}/six.py`, '/tmp/evil.py', true],
      ['truncate', `${SITE}/y.py`, null, true],
    ]);
  });

  it('reports every change under the target by anything but the installer and its threads, once per process and path', () => {
    const installers = installerPids(trace);
    expect([...installers].sort()).toEqual([15, 16]);
    const found = targetTamperFindings({
      trace,
      target: '/opt/target',
      installers,
      packageOf: (pid) => (pid === 11 ? 'pth-pivot' : null),
      argvOf: () => ['setup.py'],
    });
    expect(found.map((f) => [f.rule, f.package, f.evidence.syscall, f.evidence.path, f.evidence.ok])).toEqual([
      ['fs.target-tamper', 'pth-pivot', 'openat', `${SITE}/zz_pivot.pth`, true],
      ['fs.target-tamper', 'pth-pivot', 'mkdir', `${SITE}/forged-1.0.dist-info`, true],
      ['fs.target-tamper', 'pth-pivot', 'chmod', `${SITE}/six.py`, false],
      ['fs.target-tamper', 'pth-pivot', 'rename', `${SITE}/y.py`, true],
    ]);
    expect(found[0]).toEqual({
      rule: 'fs.target-tamper',
      severity: 'high',
      package: 'pth-pivot',
      message: `openat ${SITE}/zz_pivot.pth in the install target by a process that is not pip's installer`,
      evidence: { path: `${SITE}/zz_pivot.pth`, syscall: 'openat', ok: true, denied: false, pid: 11, argv: 'setup.py' },
    });
  });

  it('marks an attempt the kernel refused as denied', () => {
    const refused = parseTrace(
      [
        '15 1.000002 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "/usr/lib/python3/dist-packages/pip/__pip-runner__.py", "install"], 0x7ffd /* 5 vars */) = 0',
        '15 1.000004 vfork() = 11',
        `11 1.200000 openat(AT_FDCWD, "${SITE}/zz_pivot.pth", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = -1 EACCES (Permission denied)`,
        `11 1.200001 symlinkat("/tmp/evil", AT_FDCWD, "${SITE}/evil.py") = -1 EACCES (Permission denied)`,
      ].join('\n'),
    );
    const found = targetTamperFindings({
      trace: refused,
      target: '/opt/target',
      installers: installerPids(refused),
      packageOf: () => 'evil',
      argvOf: () => [],
    });
    expect(found.map((f) => [f.evidence.syscall, f.evidence.path, f.evidence.ok, f.evidence.denied])).toEqual([
      ['openat', `${SITE}/zz_pivot.pth`, false, true],
      ['symlink', `${SITE}/evil.py`, false, true],
    ]);
    expect(found[0]?.message).toMatch(/\(refused\)$/);
  });

  it('caps the findings and counts the rest', () => {
    const found = targetTamperFindings({
      trace,
      target: '/opt/target',
      installers: new Set([10, 15, 16]),
      packageOf: () => 'x',
      argvOf: () => [],
      maxFindings: 2,
    });
    expect(found.map((f) => f.evidence.path)).toEqual([`${SITE}/zz_pivot.pth`, `${SITE}/forged-1.0.dist-info`]);
    expect(found[1]?.evidence.more).toBe(2);
  });
});

describe('refusedWriteFindings', () => {
  const layout = { target: '/opt/target', home: '/home/user', state: '/var/lib/sandbox-install', mounts: [], allowed: ['/srv/allowed'] };
  // 10 is pip's installer, 11 a build hook it started.
  const lines = [
    '10 1.000001 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "/opt/installer/pip-runner.py", "install"], 0x7ffd /* 5 vars */) = 0',
    '10 1.000002 vfork() = 11',
    '11 1.000003 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "_in_process.py", "build_wheel"], 0x7ffd /* 5 vars */) = 0',
    // Refused attempts outside where an install may write: each is a finding.
    '11 1.100000 openat(AT_FDCWD, "/opt/installer/lib/python3.11/site-packages/zz.pth", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = -1 EACCES (Permission denied)',
    '11 1.100001 symlinkat("/opt/target/lib/python3.11/site-packages", AT_FDCWD, "/usr/local/lib/python3.11/dist-packages/x") = -1 EACCES (Permission denied)',
    '11 1.100002 rename("/tmp/pip-install-1/evil/x.py", "/etc/profile.d/x.sh") = -1 EACCES (Permission denied)',
    '11 1.100003 fchownat(AT_FDCWD, "/etc/passwd", 0, 0, 0) = -1 EPERM (Operation not permitted)',
    '11 1.100004 utimensat(3</usr/bin/pip>, NULL, NULL, 0) = -1 EPERM (Operation not permitted)',
    '11 1.100005 mkdir("/usr/share/evil", 0777) = -1 EROFS (Read-only file system)',
    '11 1.100006 unlink("/etc/hosts") = -1 EACCES (Permission denied)',
    // Not refusals, or not outside: none is a finding.
    '11 1.200000 mkdir("/usr/lib/python3.11/__pycache__", 0777) = -1 EACCES (Permission denied)',
    '11 1.200001 openat(AT_FDCWD, "/usr/lib/python3.11/__pycache__/abc.cpython-311.pyc.140231", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0644) = -1 EACCES (Permission denied)',
    '11 1.200002 openat(AT_FDCWD, "/etc/motd", O_WRONLY|O_CREAT, 0644) = -1 ENOENT (No such file or directory)',
    '11 1.200003 openat(AT_FDCWD, "/etc/hostname", O_RDONLY) = -1 EACCES (Permission denied)',
    '11 1.200004 openat(AT_FDCWD, "/dev/tty", O_RDWR|O_NOCTTY) = -1 EACCES (Permission denied)',
    '11 1.200005 openat(AT_FDCWD, "/tmp/pip-install-1/x", O_WRONLY|O_CREAT, 0644) = -1 EACCES (Permission denied)',
    '11 1.200006 openat(AT_FDCWD, "/srv/allowed/x", O_WRONLY|O_CREAT, 0644) = -1 EACCES (Permission denied)',
    '11 1.200007 openat(AT_FDCWD, "/opt/target/x.py", O_WRONLY|O_CREAT, 0644) = -1 EACCES (Permission denied)',
    // A second attempt at a path already reported for this package.
    '11 1.200008 openat(AT_FDCWD, "/etc/passwd", O_WRONLY) = -1 EACCES (Permission denied)',
    // pip's own refusals are pip's.
    '10 1.300000 openat(AT_FDCWD, "/etc/pip.conf", O_WRONLY|O_CREAT, 0644) = -1 EACCES (Permission denied)',
  ];
  const trace = parseTrace(lines.join('\n'));

  it('reports every refused change outside where an install may write, once per package and path, pip aside', () => {
    expect(trace.unparsed).toBe(0);
    const found = refusedWriteFindings({ trace, layout, pipPids: new Set([10]), packageOf: (pid) => (pid === 11 ? 'evil' : null), argvOf: () => ['setup.py'] });
    expect(found.map((f) => [f.rule, f.package, f.evidence.syscall, f.evidence.path, f.evidence.errno, f.evidence.denied])).toEqual([
      ['fs.write-outside-target', 'evil', 'openat', '/opt/installer/lib/python3.11/site-packages/zz.pth', 'EACCES', true],
      ['fs.write-outside-target', 'evil', 'symlink', '/usr/local/lib/python3.11/dist-packages/x', 'EACCES', true],
      ['fs.write-outside-target', 'evil', 'rename', '/etc/profile.d/x.sh', 'EACCES', true],
      ['fs.write-outside-target', 'evil', 'fchownat', '/etc/passwd', 'EPERM', true],
      ['fs.write-outside-target', 'evil', 'utimensat', '/usr/bin/pip', 'EPERM', true],
      ['fs.write-outside-target', 'evil', 'mkdir', '/usr/share/evil', 'EROFS', true],
      ['fs.write-outside-target', 'evil', 'unlink', '/etc/hosts', 'EACCES', true],
    ]);
    expect(found[0]).toEqual({
      rule: 'fs.write-outside-target',
      severity: 'high',
      package: 'evil',
      message: 'tried to openat /opt/installer/lib/python3.11/site-packages/zz.pth outside the install target (refused: EACCES)',
      evidence: {
        path: '/opt/installer/lib/python3.11/site-packages/zz.pth',
        kind: 'attempted',
        syscall: 'openat',
        denied: true,
        errno: 'EACCES',
        pid: 11,
        argv: 'setup.py',
      },
    });
  });
});

describe('paths judged as the kernel resolved them', () => {
  // 15 is pip's installer (the traced root), 11 a build hook it started.
  const SITE = '/opt/target/lib/python3.11/site-packages';
  const HOME = '/home/sandbox';
  const lines = [
    '15 1.000001 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "/usr/lib/python3/dist-packages/pip/__pip-runner__.py", "install"], 0x7ffd /* 5 vars */) = 0',
    '15 1.000002 vfork() = 11',
    '11 1.000003 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "_in_process.py", "build_wheel"], 0x7ffd /* 5 vars */) = 0',
    `11 1.100000 openat(AT_FDCWD</tmp/pip-install-1/evil>, "${SITE}", O_RDONLY|O_CLOEXEC|O_DIRECTORY) = 3<${SITE}>`,
    `11 1.100001 openat(AT_FDCWD</tmp/pip-install-1/evil>, "/proc/self/fd/3/zz.pth", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 4<${SITE}/zz.pth>`,
    '11 1.100002 rename("/tmp/pip-install-1/evil/x.py", "/dev/fd/3/victim_lib/core.py") = 0',
    '11 1.100003 link("/tmp/pip-install-1/evil/x.py", "/proc/self/fd/3/victim_lib/extra.py") = 0',
    `11 1.100004 openat(AT_FDCWD</tmp/pip-install-1/evil>, "${SITE}/victim_lib/__init__.py", O_RDONLY|O_CLOEXEC) = 5<${SITE}/victim_lib/__init__.py>`,
    `11 1.100005 fchmod(5<${SITE}/victim_lib/__init__.py>, 0666) = 0`,
    '11 1.100006 ftruncate(5, 0) = -1 EINVAL (Invalid argument)',
    `11 1.100007 symlink("${SITE}", "/tmp/pip-evil/site") = 0`,
    '11 1.100008 openat(AT_FDCWD</tmp/pip-install-1/evil>, "/tmp/pip-evil/site/yy.pth", O_WRONLY|O_CREAT|O_EXCL, 0644) = -1 EACCES (Permission denied)',
    // A symlink in pip's temp space that leads out of it, to a root-owned site dir.
    '11 1.100009 symlink("/usr/local/lib/python3.11/dist-packages", "/tmp/pip-evil/sys") = 0',
    '11 1.100010 openat(AT_FDCWD</tmp/pip-install-1/evil>, "/tmp/pip-evil/sys/sitecustomize.py", O_WRONLY|O_CREAT|O_TRUNC, 0644) = -1 EACCES (Permission denied)',
    // Credentials through a home directory's fd: one read whole, one that is not there.
    `11 1.100011 openat(AT_FDCWD</tmp/pip-install-1/evil>, "${HOME}", O_RDONLY|O_DIRECTORY) = 6<${HOME}>`,
    `11 1.100012 openat(AT_FDCWD</tmp/pip-install-1/evil>, "/proc/self/fd/6/.aws/credentials", O_RDONLY|O_CLOEXEC) = 7<${HOME}/.aws/credentials>`,
    '11 1.100013 openat(AT_FDCWD</tmp/pip-install-1/evil>, "/dev/fd/6/.ssh/id_rsa", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)',
    // pip's installer changes the target as it installs: not a finding, fd or not.
    `15 1.200000 openat(AT_FDCWD</tmp>, "${SITE}/six.py", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0644) = 3<${SITE}/six.py>`,
    `15 1.200001 fchmod(3<${SITE}/six.py>, 0644) = 0`,
  ];
  const trace = parseTrace(lines.join('\n'));
  const packageOf = (pid: number) => (pid === 11 ? 'evil' : null);
  const argvOf = () => ['setup.py'];

  it('reports each change in the target made through an fd path, a symlink or an fd, with the path as named', () => {
    expect(trace.unparsed).toBe(0);
    const found = targetTamperFindings({ trace, target: '/opt/target', installers: installerPids(trace), packageOf, argvOf });
    expect(found.map((f) => [f.rule, f.package, f.evidence.syscall, f.evidence.path, f.evidence.via, f.evidence.ok])).toEqual([
      ['fs.target-tamper', 'evil', 'openat', `${SITE}/zz.pth`, '/proc/self/fd/3/zz.pth', true],
      ['fs.target-tamper', 'evil', 'rename', `${SITE}/victim_lib/core.py`, '/dev/fd/3/victim_lib/core.py', true],
      ['fs.target-tamper', 'evil', 'link', `${SITE}/victim_lib/extra.py`, '/proc/self/fd/3/victim_lib/extra.py', true],
      ['fs.target-tamper', 'evil', 'fchmod', `${SITE}/victim_lib/__init__.py`, undefined, true],
      ['fs.target-tamper', 'evil', 'openat', `${SITE}/yy.pth`, '/tmp/pip-evil/site/yy.pth', false],
    ]);
    // ftruncate of the same file by the same process is the same finding (one per process and path).
    expect(trace.events).toContainEqual(expect.objectContaining({ kind: 'fsop', syscall: 'ftruncate', path: `${SITE}/victim_lib/__init__.py`, ok: false }));
  });

  it('reports a refused write through a symlink in pip’s temp space where the kernel refused it', () => {
    const layout = { ...LAYOUT, home: HOME };
    const found = refusedWriteFindings({ trace, layout, pipPids: new Set([15]), packageOf, argvOf });
    expect(found.map((f) => [f.evidence.syscall, f.evidence.path, f.evidence.via, f.evidence.errno])).toEqual([
      ['openat', '/usr/local/lib/python3.11/dist-packages/sitecustomize.py', '/tmp/pip-evil/sys/sitecustomize.py', 'EACCES'],
    ]);
  });

  it('reports credentials read through /proc/self/fd/<home fd> and /dev/fd/<home fd>', () => {
    const { findings } = filesystemFindings({ changes: [], trace, layout: LAYOUT, packageOf, argvOf, pipPids: new Set([15]) });
    expect(findings.map((f) => [f.rule, f.package, f.evidence.path, f.evidence.via, f.evidence.ok])).toEqual([
      ['fs.sensitive-read', 'evil', `${HOME}/.aws/credentials`, '/proc/self/fd/6/.aws/credentials', true],
      ['fs.sensitive-read', 'evil', `${HOME}/.ssh/id_rsa`, '/dev/fd/6/.ssh/id_rsa', false],
    ]);
  });

  it('attributes a file changed through an fd outside the target to the process that changed it', () => {
    const changed = parseTrace(
      [
        '10 1.000000 execve("/usr/bin/python3", ["python3"], 0x7ffd /* 5 vars */) = 0',
        '10 1.000001 openat(AT_FDCWD</tmp>, "/home/sandbox/.bashrc", O_RDONLY) = 3</home/sandbox/.bashrc>',
        '10 1.000002 fchmod(3</home/sandbox/.bashrc>, 0666) = 0',
      ].join('\n'),
    );
    expect(Object.fromEntries(writersOf(changed))).toEqual({ '/home/sandbox/.bashrc': 10 });
  });
});

describe('isBytecodeFile', () => {
  it('is what the import system writes under a pycache prefix or __pycache__, and nothing else', () => {
    expect(isBytecodeFile('/tmp/tmpab/x/.cache/opt/target/lib/python3.11/site-packages/pkg/__init__.cpython-311.pyc')).toBe(true);
    expect(isBytecodeFile('/tmp/tmpab/x/.cache/usr/lib/python3.11/json/decoder.cpython-311.pyc.140234')).toBe(true);
    expect(isBytecodeFile('/opt/target/lib/python3.11/site-packages/pkg/__pycache__/core.cpython-311.opt-1.pyc')).toBe(true);
    for (const other of ['/home/user/.bashrc', '/tmp/x.pyc', '/tmp/evil.cpython-311.pyc.sh', '/tmp/a.cpython-311.so', '/tmp/cpython-311.pyc/x'])
      expect(isBytecodeFile(other), other).toBe(false);
  });
});
