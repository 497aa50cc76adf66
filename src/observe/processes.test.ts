import { describe, expect, it } from 'vitest';
import { processFindings, type ProcessContext } from './processes.js';
import { parseTrace } from './trace.js';

const WATCH = ['sh', 'bash', 'curl', 'nc'];
const HOOK_ARGV = '/opt/installer/bin/python _in_process.py build_wheel';

/**
 * pid 10 is pip; pid 11 a build hook of evil-pkg, pid 12 one of other-pkg. Lines after the
 * prologue are the case's own.
 */
function context(lines: string[], lingering: ProcessContext['lingering'] = [], execAliases: Record<string, string> = {}): ProcessContext {
  const trace = parseTrace(
    [
      '10 1.000000 execve("/usr/bin/python3", ["python3", "-m", "pip", "install"], 0x7ffd /* 5 vars */) = 0',
      '10 1.000001 vfork() = 11',
      '11 1.000002 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "_in_process.py", "build_wheel"], 0x7ffd /* 5 vars */) = 0',
      '10 1.000003 vfork() = 12',
      '12 1.000004 execve("/opt/installer/bin/python", ["/opt/installer/bin/python", "_in_process.py", "prepare_metadata"], 0x7ffd /* 5 vars */) = 0',
      ...lines,
    ].join('\n'),
  );
  expect(trace.unparsed).toBe(0);
  const owners: Record<number, string> = { 11: 'evil-pkg', 12: 'other-pkg', 13: 'evil-pkg', 14: 'evil-pkg' };
  return { trace, lingering, detached: [], execWatch: WATCH, execAliases, writable: ['/opt/target'], packageOf: (pid) => owners[pid] ?? null };
}

const execve = (pid: number, time: string, file: string, argv: string[], result: string) =>
  `${pid} ${time} execve("${file}", [${argv.map((a) => `"${a}"`).join(', ')}], 0x7ffd /* 5 vars */) = ${result}`;
const ENOENT = '-1 ENOENT (No such file or directory)';

describe('processFindings: process.exec', () => {
  it('reports a watched program that ran, not the PATH lookups that failed before it', () => {
    const { findings } = processFindings(
      context([
        '11 1.100000 vfork() = 13',
        execve(13, '1.100001', '/usr/local/sbin/sh', ['sh', '-c', 'id'], ENOENT),
        execve(13, '1.100002', '/usr/local/bin/sh', ['sh', '-c', 'id'], ENOENT),
        execve(13, '1.100003', '/usr/bin/sh', ['sh', '-c', 'id'], '0'),
      ]),
    );
    expect(findings).toEqual([
      {
        rule: 'process.exec',
        severity: 'high',
        package: 'evil-pkg',
        message: 'ran sh: sh -c id',
        evidence: { path: '/usr/bin/sh', argv: 'sh -c id', ok: true, errno: null, pid: 13 },
      },
    ]);
  });

  it('reports the attempt when nothing by that name ran, once per package and argv', () => {
    const { findings } = processFindings(
      context([
        '11 1.100000 vfork() = 13',
        execve(13, '1.100001', '/usr/local/bin/curl', ['curl', 'http://x.test'], ENOENT),
        execve(13, '1.100002', '/usr/bin/curl', ['curl', 'http://x.test'], ENOENT),
      ]),
    );
    expect(findings).toEqual([
      {
        rule: 'process.exec',
        severity: 'high',
        package: 'evil-pkg',
        message: 'tried to run curl: curl http://x.test',
        evidence: { path: '/usr/local/bin/curl', argv: 'curl http://x.test', ok: false, errno: 'ENOENT', pid: 13 },
      },
    ]);
  });

  it('ignores programs that are not watched, and matches by basename only', () => {
    const { findings } = processFindings(
      context([
        '11 1.100000 vfork() = 13',
        execve(13, '1.100001', '/usr/bin/uname', ['uname', '-rs'], '0'),
        '11 1.100002 vfork() = 14',
        execve(14, '1.100003', '/usr/bin/bash-helper', ['bash-helper'], '0'),
      ]),
    );
    expect(findings).toEqual([]);
  });

  it('keeps different argv and different packages apart, and dedupes identical runs', () => {
    const { findings } = processFindings(
      context([
        '11 1.100000 vfork() = 13',
        execve(13, '1.100001', '/usr/bin/sh', ['sh', '-c', 'a'], '0'),
        '11 1.100002 vfork() = 14',
        execve(14, '1.100003', '/usr/bin/sh', ['sh', '-c', 'a'], '0'),
        execve(11, '1.100004', '/usr/bin/bash', ['bash', '-c', 'b'], '0'),
        execve(12, '1.100005', '/usr/bin/sh', ['sh', '-c', 'a'], '0'),
      ]),
    );
    expect(findings.map((f) => [f.package, f.evidence.argv, f.evidence.pid])).toEqual([
      ['evil-pkg', 'sh -c a', 13],
      ['evil-pkg', 'bash -c b', 11],
      ['other-pkg', 'sh -c a', 12],
    ]);
  });
});

describe('processFindings: monitor.tampered', () => {
  it('reports kill aimed at pid 1 and at every process (-1), with the outcome', () => {
    const { findings } = processFindings(
      context(['11 1.100000 kill(1, SIGKILL) = -1 EPERM (Operation not permitted)', '11 1.100001 kill(-1, SIGTERM) = -1 EPERM (Operation not permitted)']),
    );
    expect(findings).toEqual([
      {
        rule: 'monitor.tampered',
        severity: 'critical',
        package: 'evil-pkg',
        message: 'kill(1, SIGKILL) aimed at a process outside the sandbox (EPERM)',
        evidence: { syscall: 'kill', target: 1, signal: 'SIGKILL', ok: false, errno: 'EPERM', pid: 11, argv: HOOK_ARGV },
      },
      {
        rule: 'monitor.tampered',
        severity: 'critical',
        package: 'evil-pkg',
        message: 'kill(-1, SIGTERM) aimed at a process outside the sandbox (EPERM)',
        evidence: { syscall: 'kill', target: -1, signal: 'SIGTERM', ok: false, errno: 'EPERM', pid: 11, argv: HOOK_ARGV },
      },
    ]);
  });

  it('reports tgkill and tkill on pids the tracer never saw', () => {
    const { findings } = processFindings(context(['12 1.100000 tgkill(7, 7, SIGSTOP) = 0', '12 1.100001 tkill(8, SIGKILL) = -1 ESRCH (No such process)']));
    expect(findings.map((f) => [f.rule, f.package, f.message])).toEqual([
      ['monitor.tampered', 'other-pkg', 'tgkill(7, SIGSTOP) aimed at a process outside the sandbox'],
      ['monitor.tampered', 'other-pkg', 'tkill(8, SIGKILL) aimed at a process outside the sandbox (ESRCH)'],
    ]);
  });

  it("leaves signals between the sandbox's own processes (and to a traced process group) alone", () => {
    const { findings } = processFindings(
      context(['11 1.100000 vfork() = 13', '11 1.100001 kill(13, SIGTERM) = 0', '10 1.100002 kill(11, SIGKILL) = 0', '11 1.100003 kill(-13, SIGTERM) = 0']),
    );
    expect(findings).toEqual([]);
  });

  it('reports a signal to a process group the tracer never saw, and leaves kill(0) (its own group) alone', () => {
    const { findings } = processFindings(context(['11 1.100000 kill(-7, SIGKILL) = -1 EPERM (Operation not permitted)', '11 1.100001 kill(0, SIGTERM) = 0']));
    expect(findings.map((f) => [f.rule, f.evidence.target, f.evidence.signal])).toEqual([['monitor.tampered', -7, 'SIGKILL']]);
  });

  it('reports the same kill from one process once', () => {
    const { findings } = processFindings(
      context(['11 1.100000 kill(1, SIGKILL) = -1 EPERM (Operation not permitted)', '11 1.100001 kill(1, SIGKILL) = -1 EPERM (Operation not permitted)']),
    );
    expect(findings).toHaveLength(1);
  });

  it('reports any ptrace: a refused one as a forbidden call, one that went through as tampering too', () => {
    const { findings } = processFindings(
      context(['11 1.100000 ptrace(PTRACE_ATTACH, 1) = -1 EPERM (Operation not permitted)', '12 1.100001 ptrace(PTRACE_TRACEME) = 0']),
    );
    expect(findings).toEqual([
      {
        rule: 'process.forbidden-syscall',
        severity: 'high',
        package: 'evil-pkg',
        message: "ptrace(PTRACE_ATTACH): refused by the sandbox's seccomp filter (EPERM)",
        evidence: { syscall: 'ptrace', detail: 'PTRACE_ATTACH', target: 1, errno: 'EPERM', ok: false, pid: 11, argv: HOOK_ARGV },
      },
      {
        rule: 'process.forbidden-syscall',
        severity: 'high',
        package: 'other-pkg',
        message: 'ptrace(PTRACE_TRACEME): a call the sandbox refuses went through',
        evidence: {
          syscall: 'ptrace',
          detail: 'PTRACE_TRACEME',
          target: null,
          errno: null,
          ok: true,
          pid: 12,
          argv: '/opt/installer/bin/python _in_process.py prepare_metadata',
        },
      },
      {
        rule: 'monitor.tampered',
        severity: 'critical',
        package: 'other-pkg',
        message: 'ptrace(PTRACE_TRACEME, ?)',
        evidence: { request: 'PTRACE_TRACEME', target: null, ok: true, pid: 12, argv: '/opt/installer/bin/python _in_process.py prepare_metadata' },
      },
    ]);
  });
});

describe('processFindings: process.forbidden-syscall', () => {
  const EPERM = '-1 EPERM (Operation not permitted)';

  it('reports every call the seccomp filters refuse, with what it asked for', () => {
    const { findings } = processFindings(
      context([
        `11 1.100000 io_uring_setup(8, NULL) = ${EPERM}`,
        `11 1.100001 io_uring_enter(0</dev/null>, 0, 0, 0, NULL, 7) = ${EPERM}`,
        `11 1.100002 io_uring_register(0</dev/null>, IORING_REGISTER_BUFFERS, NULL, 0) = ${EPERM}`,
        `11 1.100003 pidfd_getfd(3<anon_inode:[pidfd]>, 4, 0) = ${EPERM}`,
        `11 1.100004 process_vm_readv(10, [{iov_base=0x7f, iov_len=8}], 1, [{iov_base=0x7f, iov_len=8}], 1, 0) = ${EPERM}`,
        `11 1.100005 process_vm_writev(10, NULL, 0, NULL, 0, 0) = ${EPERM}`,
        `11 1.100006 userfaultfd(0) = ${EPERM}`,
        `11 1.100007 bpf(BPF_PROG_LOAD, NULL, 0) = ${EPERM}`,
        `11 1.100008 perf_event_open(NULL, 0, 0, 0</dev/null>, 0) = ${EPERM}`,
        `11 1.100009 keyctl(KEYCTL_GET_KEYRING_ID, 0, 0) = ${EPERM}`,
        `11 1.100010 add_key("user", "k", NULL, 0, KEY_SPEC_SESSION_KEYRING) = ${EPERM}`,
        `11 1.100011 request_key(NULL, NULL, NULL, 0) = ${EPERM}`,
        `11 1.100012 personality(PER_LINUX32) = ${EPERM}`,
      ]),
    );
    expect(findings.map((f) => [f.rule, f.package, f.evidence.syscall, f.evidence.detail, f.evidence.target, f.evidence.errno])).toEqual([
      ['process.forbidden-syscall', 'evil-pkg', 'io_uring_setup', null, null, 'EPERM'],
      ['process.forbidden-syscall', 'evil-pkg', 'io_uring_enter', null, null, 'EPERM'],
      ['process.forbidden-syscall', 'evil-pkg', 'io_uring_register', null, null, 'EPERM'],
      ['process.forbidden-syscall', 'evil-pkg', 'pidfd_getfd', null, null, 'EPERM'],
      ['process.forbidden-syscall', 'evil-pkg', 'process_vm_readv', null, 10, 'EPERM'],
      ['process.forbidden-syscall', 'evil-pkg', 'process_vm_writev', null, 10, 'EPERM'],
      ['process.forbidden-syscall', 'evil-pkg', 'userfaultfd', null, null, 'EPERM'],
      ['process.forbidden-syscall', 'evil-pkg', 'bpf', 'BPF_PROG_LOAD', null, 'EPERM'],
      ['process.forbidden-syscall', 'evil-pkg', 'perf_event_open', null, null, 'EPERM'],
      ['process.forbidden-syscall', 'evil-pkg', 'keyctl', 'KEYCTL_GET_KEYRING_ID', null, 'EPERM'],
      ['process.forbidden-syscall', 'evil-pkg', 'add_key', 'user', null, 'EPERM'],
      ['process.forbidden-syscall', 'evil-pkg', 'request_key', 'NULL', null, 'EPERM'],
      ['process.forbidden-syscall', 'evil-pkg', 'personality', 'PER_LINUX32', null, 'EPERM'],
    ]);
    expect(findings[0]).toMatchObject({
      severity: 'high',
      message: "io_uring_setup: refused by the sandbox's seccomp filter (EPERM)",
      evidence: { ok: false, pid: 11, argv: HOOK_ARGV },
    });
  });

  it('lets the persona query pass, and reports a persona change even when it was not refused', () => {
    const { findings } = processFindings(
      context([
        '12 1.100000 personality(0xffffffff) = 0 (PER_LINUX)',
        '12 1.100001 personality(0xffffffff /* PER_??? */) = 0 (PER_LINUX)',
        '11 1.100002 personality(PER_LINUX32) = 0 (PER_LINUX)',
      ]),
    );
    expect(findings.map((f) => [f.rule, f.package, f.severity, f.evidence.syscall, f.evidence.ok])).toEqual([
      ['process.forbidden-syscall', 'evil-pkg', 'high', 'personality', true],
      // A forbidden call that went through: the filter was not in force, so the run cannot be vouched for.
      ['monitor.tampered', 'evil-pkg', 'critical', 'personality', true],
    ]);
  });

  it('reports a process killed by SIGSYS nobody sent: a call through a non-native ABI', () => {
    const { findings } = processFindings(
      context([
        '11 1.100000 vfork() = 13',
        '13 1.100001 +++ killed by SIGSYS (core dumped) +++',
        '11 1.100002 vfork() = 14',
        '14 1.100003 kill(14, SIGSYS) = 0',
        '14 1.100004 +++ killed by SIGSYS +++',
      ]),
    );
    expect(findings).toEqual([
      {
        rule: 'process.forbidden-syscall',
        severity: 'high',
        package: 'evil-pkg',
        message: 'a syscall through a non-native ABI (int 0x80, x32): the process was killed (SIGSYS) before it ran',
        evidence: { syscall: 'non-native-abi', errno: null, ok: false, signal: 'SIGSYS', pid: 13, argv: HOOK_ARGV },
      },
    ]);
  });

  it('reports the same refused call of one process once', () => {
    const { findings } = processFindings(
      context([
        '11 1.100000 bpf(BPF_MAP_CREATE, NULL, 0) = -1 EPERM (Operation not permitted)',
        '11 1.100001 bpf(BPF_MAP_CREATE, NULL, 0) = -1 EPERM (Operation not permitted)',
      ]),
    );
    expect(findings).toHaveLength(1);
  });
});

describe('processFindings: resource.pids', () => {
  const EAGAIN =
    'clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = -1 EAGAIN (Resource temporarily unavailable)';

  it('reports a fork that failed with EAGAIN, once per package', () => {
    const { findings } = processFindings(context([`11 1.100000 ${EAGAIN}`, `11 1.100001 ${EAGAIN}`, `12 1.100002 ${EAGAIN}`]));
    expect(findings).toEqual([
      {
        rule: 'resource.pids',
        severity: 'high',
        package: 'evil-pkg',
        message: 'a fork failed with EAGAIN: the pids limit was hit',
        evidence: { pid: 11, argv: HOOK_ARGV },
      },
      expect.objectContaining({ rule: 'resource.pids', package: 'other-pkg', evidence: expect.objectContaining({ pid: 12 }) }),
    ]);
  });

  it('ignores forks that failed for another reason', () => {
    const { findings } = processFindings(context(['11 1.100000 clone(child_stack=NULL, flags=SIGCHLD) = -1 ENOMEM (Cannot allocate memory)']));
    expect(findings).toEqual([]);
  });
});

describe('processFindings: process.lingering', () => {
  it('reports what the supervisor found alive after pip, attributed only when the tracer saw that pid', () => {
    const { findings } = processFindings(
      context(
        ['11 1.100000 vfork() = 13', execve(13, '1.100001', '/usr/bin/sleep', ['sleep', '1000'], '0')],
        [
          { pid: 13, ppid: 1, argv: ['sleep', '1000'] },
          { pid: 99, ppid: 1, argv: ['python3', '-c', 'import time; time.sleep(99)'] },
        ],
      ),
    );
    expect(findings).toEqual([
      {
        rule: 'process.lingering',
        severity: 'high',
        package: 'evil-pkg',
        message: 'still alive after pip ended, killed: sleep 1000',
        evidence: { pid: 13, ppid: 1, argv: 'sleep 1000' },
      },
      {
        rule: 'process.lingering',
        severity: 'high',
        package: null,
        message: 'still alive after pip ended, killed: python3 -c import time; time.sleep(99)',
        evidence: { pid: 99, ppid: 1, argv: 'python3 -c import time; time.sleep(99)' },
      },
    ]);
  });
});

describe('processFindings: events', () => {
  it('lists every process with its package', () => {
    const { events } = processFindings(context(['11 1.100000 +++ exited with 0 +++']));
    expect(events).toEqual([
      { pid: 10, ppid: null, argv: ['python3', '-m', 'pip', 'install'], cwd: '/home/sandbox', exitCode: null, signal: null, package: null },
      {
        pid: 11,
        ppid: 10,
        argv: ['/opt/installer/bin/python', '_in_process.py', 'build_wheel'],
        cwd: '/home/sandbox',
        exitCode: 0,
        signal: null,
        package: 'evil-pkg',
      },
      {
        pid: 12,
        ppid: 10,
        argv: ['/opt/installer/bin/python', '_in_process.py', 'prepare_metadata'],
        cwd: '/home/sandbox',
        exitCode: null,
        signal: null,
        package: 'other-pkg',
      },
    ]);
  });
});

describe('processFindings: ways around the tracer and renamed tools', () => {
  it('reports an io_uring_setup that went through and a pidfd_open of a process the tracer never saw, not one of its own', () => {
    const { findings } = processFindings(
      context([
        '11 1.100000 io_uring_setup(8, {flags=0, sq_thread_cpu=0, sq_thread_idle=0}) = 5',
        '11 1.100001 pidfd_open(1, 0) = 6',
        '11 1.100002 pidfd_open(12, 0) = 7',
      ]),
    );
    expect(findings.map((f) => [f.rule, f.package, f.evidence.syscall, f.evidence.target])).toEqual([
      ['process.forbidden-syscall', 'evil-pkg', 'io_uring_setup', null],
      ['monitor.tampered', 'evil-pkg', 'io_uring_setup', null],
      ['monitor.tampered', 'evil-pkg', 'pidfd_open', 1],
    ]);
  });

  it('reports a program run from a writable place whatever its name, and not one from /usr', () => {
    const { findings } = processFindings(
      context([
        '11 1.100000 vfork() = 13',
        execve(13, '1.100001', '/tmp/x/py', ['py', '-c', 'id'], '0'),
        execve(11, '1.100002', '/usr/bin/uname', ['uname', '-rs'], '0'),
      ]),
    );
    expect(findings.map((f) => [f.rule, f.package, f.evidence.path, f.evidence.argv])).toEqual([['process.exec', 'evil-pkg', '/tmp/x/py', 'py -c id']]);
  });

  it('skips a PATH search missing in writable dirs before the program runs from /usr, but not a miss with nothing found after', () => {
    const { findings } = processFindings(
      context([
        '11 1.100000 vfork() = 13',
        execve(13, '1.100001', '/tmp/pip-build-env-a1/overlay/bin/x86_64-linux-gnu-gcc', ['x86_64-linux-gnu-gcc', '-c', 'x.c'], ENOENT),
        execve(13, '1.100002', '/tmp/pip-build-env-a1/normal/bin/x86_64-linux-gnu-gcc', ['x86_64-linux-gnu-gcc', '-c', 'x.c'], ENOENT),
        execve(13, '1.100003', '/usr/bin/x86_64-linux-gnu-gcc', ['x86_64-linux-gnu-gcc', '-c', 'x.c'], '0'),
        '11 1.200000 vfork() = 14',
        execve(14, '1.200001', '/tmp/pip-build-env-a1/overlay/bin/stage2', ['stage2'], ENOENT),
        '11 1.300000 vfork() = 15',
        execve(15, '1.300001', '/tmp/pip-build-env-a1/overlay/bin/tool', ['tool'], '-1 EACCES (Permission denied)'),
        execve(15, '1.300002', '/usr/bin/tool', ['tool'], '0'),
      ]),
    );
    expect(findings.map((f) => [f.rule, f.evidence.path, f.evidence.errno])).toEqual([
      ['process.exec', '/tmp/pip-build-env-a1/overlay/bin/stage2', 'ENOENT'],
      ['process.exec', '/tmp/pip-build-env-a1/overlay/bin/tool', 'EACCES'],
    ]);
  });

  it("skips a PATH search that finds the program nowhere (poetry-core's `git check-ignore` with no git), but not one that only looked in writable places", () => {
    const { findings } = processFindings(
      context([
        '11 1.100000 vfork() = 13',
        execve(13, '1.100001', '/tmp/pip-build-env-a1/overlay/bin/git', ['git', 'check-ignore', '.'], ENOENT),
        execve(13, '1.100002', '/tmp/pip-build-env-a1/normal/bin/git', ['git', 'check-ignore', '.'], ENOENT),
        execve(13, '1.100003', '/usr/local/bin/git', ['git', 'check-ignore', '.'], ENOENT),
        execve(13, '1.100004', '/usr/bin/git', ['git', 'check-ignore', '.'], ENOENT),
        '11 1.200000 vfork() = 14',
        execve(14, '1.200001', '/tmp/pip-build-env-a1/overlay/bin/stage2', ['stage2'], ENOENT),
        execve(14, '1.200002', '/tmp/pip-build-env-a1/normal/bin/stage2', ['stage2'], ENOENT),
      ]),
    );
    expect(findings.map((f) => [f.rule, f.evidence.path, f.evidence.errno])).toEqual([
      ['process.exec', '/tmp/pip-build-env-a1/overlay/bin/stage2', 'ENOENT'],
      ['process.exec', '/tmp/pip-build-env-a1/normal/bin/stage2', 'ENOENT'],
    ]);
  });
});

describe('processFindings: detached processes', () => {
  it('reports what the supervisor killed the moment it detached, with its argv', () => {
    const ctx = context(['11 1.100000 vfork() = 13', execve(13, '1.100001', '/usr/bin/python3', ['python3', '-c', 'helper'], '0')]);
    const { findings } = processFindings({ ...ctx, detached: [{ pid: 13, ppid: 1, argv: ['python3', '-c', 'helper'] }] });
    expect(findings).toEqual([
      {
        rule: 'process.lingering',
        severity: 'high',
        package: 'evil-pkg',
        message: 'detached from the process that started it, killed at once: python3 -c helper',
        evidence: { pid: 13, ppid: 1, argv: 'python3 -c helper', detached: true },
      },
    ]);
  });

  it('finds in the trace a process that outlived its parent and ended before anyone looked, but not a thread', () => {
    const { findings } = processFindings(
      context([
        '11 1.100000 vfork() = 13',
        execve(13, '1.100001', '/usr/bin/python3', ['python3', '-c', 'quick'], '0'),
        '11 1.100002 clone(child_stack=0x7f00, flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, parent_tid=[14], tls=0x7f01, child_tidptr=0x7f02) = 14',
        '11 1.200000 +++ exited with 0 +++',
        '14 1.200001 +++ exited with 0 +++',
        '13 1.300000 +++ exited with 0 +++',
      ]),
    );
    expect(findings).toEqual([
      {
        rule: 'process.lingering',
        severity: 'high',
        package: 'evil-pkg',
        message: 'outlived the process that started it: python3 -c quick',
        evidence: { pid: 13, ppid: 11, argv: 'python3 -c quick', detached: true },
      },
    ]);
  });
});

describe('processFindings: process.exec that dodges by name or place', () => {
  const execs = (findings: ReturnType<typeof processFindings>['findings']) =>
    findings.filter((f) => f.rule === 'process.exec').map((f) => [f.package, f.evidence.path, f.evidence.viaFd ?? false, f.evidence.ok]);

  it('reports a program run from the install target under a harmless name', () => {
    const { findings } = processFindings(
      context(['11 1.100000 vfork() = 13', execve(13, '1.100001', '/opt/target/share/harmless', ['harmless', '-c', 'id'], '0')]),
    );
    expect(execs(findings)).toEqual([['evil-pkg', '/opt/target/share/harmless', false, true]]);
  });

  it('reports an execveat of a memfd and a run through /proc/self/fd', () => {
    const { findings } = processFindings(
      context([
        '11 1.100000 vfork() = 13',
        '13 1.100001 execveat(4</memfd:x (deleted)>, "", ["harmless"], 0x7ffd /* 5 vars */, AT_EMPTY_PATH) = 0',
        '11 1.200000 vfork() = 14',
        execve(14, '1.200001', '/proc/self/fd/4', ['harmless'], '0'),
      ]),
    );
    expect(execs(findings)).toEqual([
      ['evil-pkg', '/memfd:x (deleted)', true, true],
      ['evil-pkg', '/proc/self/fd/4', false, true],
    ]);
  });

  it('reports the dynamic loader run by name, which runs whatever file it is handed', () => {
    const { findings } = processFindings(
      context(['11 1.100000 vfork() = 13', execve(13, '1.100001', '/usr/lib64/ld-linux-x86-64.so.2', ['ld-linux-x86-64.so.2', '/opt/target/x'], '0')]),
    );
    expect(execs(findings)).toEqual([['evil-pkg', '/usr/lib64/ld-linux-x86-64.so.2', false, true]]);
  });

  it('matches a watched program by argv[0] and by the file it is, not only by its path', () => {
    const { findings } = processFindings(
      context(
        [
          '11 1.100000 vfork() = 13',
          execve(13, '1.100001', '/usr/bin/python3', ['sh', '-c', 'id'], '0'),
          '11 1.200000 vfork() = 14',
          execve(14, '1.200001', '/usr/bin/nc.openbsd', ['listener', '-l'], '0'),
          '12 1.300000 vfork() = 15',
          execve(15, '1.300001', '/usr/bin/gcc', ['gcc', '-c', 'x.c'], '0'),
        ],
        [],
        { '/usr/bin/nc.openbsd': 'nc' },
      ),
    );
    expect(execs(findings)).toEqual([
      ['evil-pkg', '/usr/bin/python3', false, true],
      ['evil-pkg', '/usr/bin/nc.openbsd', false, true],
    ]);
  });
});
