import { describe, expect, it } from 'vitest';
import { autorunReason, autorunWriteFindings } from './autorun.js';
import { parseTrace } from './trace.js';

describe('autorunWriteFindings', () => {
  const lines = [
    '10 1.000001 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "/opt/installer/pip-runner.py", "install"], 0x7ffd /* 5 vars */) = 0',
    '10 1.000002 vfork() = 11',
    '11 1.000003 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "_in_process.py", "build_wheel"], 0x7ffd /* 5 vars */) = 0',
    // Planted into a build environment's site dir (writable: allowed) and the installer's (refused).
    '11 1.100000 openat(AT_FDCWD, "/tmp/pip-build-env-ab12/overlay/lib/python3.11/site-packages/zz_hook.pth", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 3',
    '11 1.100001 openat(AT_FDCWD, "/opt/installer/lib/python3.11/site-packages/sitecustomize.py", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = -1 EACCES (Permission denied)',
    '11 1.100002 mkdir("/home/user/.local/lib/python3.11/site-packages/json", 0777) = 0',
    '11 1.100003 rename("/tmp/x", "/tmp/pip-build-env-ab12/normal/lib/python3.11/site-packages/usercustomize/__init__.py") = 0',
    '11 1.100004 symlinkat("/tmp/evil.so", AT_FDCWD, "/usr/lib/python3/dist-packages/typing.cpython-311-x86_64-linux-gnu.so") = -1 EACCES (Permission denied)',
    // Not auto-run: ordinary names, reads, removals, the target (fs.target-tamper's), pip itself.
    '11 1.200000 openat(AT_FDCWD, "/tmp/pip-build-env-ab12/overlay/lib/python3.11/site-packages/jsonschema/x.py", O_WRONLY|O_CREAT, 0644) = 3',
    '11 1.200001 openat(AT_FDCWD, "/tmp/pip-build-env-ab12/overlay/lib/python3.11/site-packages/distutils-precedence.pth", O_RDONLY|O_CLOEXEC) = 3',
    '11 1.200002 unlink("/tmp/pip-build-env-ab12/overlay/lib/python3.11/site-packages/zz_other.pth") = 0',
    '11 1.200003 openat(AT_FDCWD, "/opt/target/lib/python3.11/site-packages/evil.pth", O_WRONLY|O_CREAT, 0644) = -1 EACCES (Permission denied)',
    '11 1.200004 openat(AT_FDCWD, "/tmp/pip-install-1/evil/src/site-packages/x.pth", O_WRONLY|O_CREAT, 0644) = 3',
    '10 1.300000 openat(AT_FDCWD, "/tmp/pip-build-env-ab12/overlay/lib/python3.11/site-packages/distutils-precedence.pth", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0644) = 3',
  ];
  const trace = parseTrace(lines.join('\n'));

  it('reports a .pth, startup hook or stdlib name planted in any site dir but the target by anything but pip, refused or not', () => {
    expect(trace.unparsed).toBe(0);
    const found = autorunWriteFindings({
      trace,
      target: '/opt/target',
      pipPids: new Set([10]),
      packageOf: (pid) => (pid === 11 ? 'evil' : null),
      argvOf: () => [],
    });
    expect(found.map((f) => [f.rule, f.package, f.evidence.syscall, f.evidence.entry, f.evidence.reason, f.evidence.denied])).toEqual([
      ['fs.autorun-write', 'evil', 'openat', 'zz_hook.pth', '.pth file', false],
      ['fs.autorun-write', 'evil', 'openat', 'sitecustomize.py', 'startup hook', true],
      ['fs.autorun-write', 'evil', 'mkdir', 'json', 'standard-library name', false],
      ['fs.autorun-write', 'evil', 'rename', 'usercustomize', 'startup hook', false],
      ['fs.autorun-write', 'evil', 'symlink', 'typing.cpython-311-x86_64-linux-gnu.so', 'standard-library name', true],
    ]);
    expect(found[0]?.evidence.siteDir).toBe('/tmp/pip-build-env-ab12/overlay/lib/python3.11/site-packages');
  });
});

describe('autorunWriteFindings: paths as the kernel resolved them', () => {
  it("reports a .pth planted in a site dir through /proc/self/fd or a symlink in pip's temp space, with the path as named", () => {
    const SITE = '/tmp/pip-build-env-ab12/overlay/lib/python3.11/site-packages';
    const trace = parseTrace(
      [
        '10 1.000001 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "/opt/installer/pip-runner.py", "install"], 0x7ffd /* 5 vars */) = 0',
        '10 1.000002 vfork() = 11',
        '11 1.000003 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "_in_process.py", "build_wheel"], 0x7ffd /* 5 vars */) = 0',
        `11 1.100000 openat(AT_FDCWD</tmp>, "${SITE}", O_RDONLY|O_DIRECTORY) = 3<${SITE}>`,
        '11 1.100001 rename("/tmp/pip-install-1/evil/x", "/proc/self/fd/3/zz_fd.pth") = 0',
        '11 1.100002 symlink("/opt/installer/lib/python3.11/site-packages", "/tmp/pip-evil") = 0',
        '11 1.100003 openat(AT_FDCWD</tmp>, "/tmp/pip-evil/sitecustomize.py", O_WRONLY|O_CREAT|O_TRUNC, 0644) = -1 EACCES (Permission denied)',
      ].join('\n'),
    );
    const found = autorunWriteFindings({ trace, target: '/opt/target', pipPids: new Set([10]), packageOf: () => 'evil', argvOf: () => [] });
    expect(found.map((f) => [f.evidence.syscall, f.evidence.path, f.evidence.via, f.evidence.denied])).toEqual([
      ['rename', `${SITE}/zz_fd.pth`, '/proc/self/fd/3/zz_fd.pth', false],
      ['openat', '/opt/installer/lib/python3.11/site-packages/sitecustomize.py', '/tmp/pip-evil/sitecustomize.py', true],
    ]);
  });
});

describe('autorunReason', () => {
  it('names what runs unasked at the top of a site dir, and nothing else', () => {
    expect(['a.pth', 'sitecustomize.py', 'usercustomize', 'json', 'typing.py', 'asyncio.abi3.so', '_thread.py'].map(autorunReason)).toEqual([
      '.pth file',
      'startup hook',
      'startup hook',
      'standard-library name',
      'standard-library name',
      'standard-library name',
      'standard-library name',
    ]);
    expect(['jsonschema', 'typing_extensions.py', '_distutils_hack', 'six.py', 'pth', 'a.pth.txt'].map(autorunReason)).toEqual([
      null,
      null,
      null,
      null,
      null,
      null,
    ]);
  });
});
