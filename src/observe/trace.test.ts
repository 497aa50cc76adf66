import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FORBIDDEN_SYSCALLS } from '../core/seccomp.js';
import { packageOfProcess } from './attribution.js';
import {
  MAX_ARGV_ENTRIES,
  MAX_EVENTS,
  MAX_LINE_CHARS,
  MAX_SEND_PAYLOAD_BYTES,
  MODELLED_SYSCALLS,
  parseTrace,
  TraceParser,
  type Trace,
  type TraceEvent,
} from './trace.js';

/**
 * A trimmed real record: pip installing a hostile sdist (evil-pkg) whose setup.py phones home,
 * probes docker.sock, reads ~/.ssh/id_rsa, appends to ~/.bashrc, runs `sh -c` and kill(1, SIGKILL).
 * setup.py runs three times (get_requires_for_build_wheel, prepare_metadata, build_wheel).
 */
const SAMPLE = readFileSync(new URL('./testdata/strace-sample.txt', import.meta.url), 'utf8');
const BUILD_DIR = '/tmp/pip-install-q8_72yms/evil-pkg_2c8a23b76e77438d94495cc80530245f';

const ofKind = <K extends TraceEvent['kind']>(trace: Trace, kind: K, pid?: number) =>
  trace.events.filter((e): e is Extract<TraceEvent, { kind: K }> => e.kind === kind && (pid === undefined || e.pid === pid));

/** A record from its lines; pid 10 comes first in each, so it is the root. */
const record = (...lines: string[]) => lines.join('\n');

describe('parseTrace on a real record', () => {
  const trace = parseTrace(SAMPLE);

  it('reads every line, and the first line names the root', () => {
    expect(trace.unparsed).toBe(0);
    expect(trace.dropped).toBe(0);
    expect(trace.rootPid).toBe(11);
    expect(trace.processes.get(11)).toMatchObject({ ppid: null, exe: '/usr/bin/python3', cwd: '/home/sandbox', exitCode: 0, end: 1795820990.453931 });
  });

  it('gives the build hook its working directory, and attributes it and its children to the package', () => {
    const hook = ofKind(trace, 'exec').find((e) => e.ok && e.argv[2] === 'get_requires_for_build_wheel');
    expect(hook).toMatchObject({
      pid: 18,
      time: 1795820988.038498, // the unfinished half: when the call started
      path: '/opt/target/bin/python',
      cwd: BUILD_DIR,
      errno: null,
    });
    expect(hook?.argv[1]).toBe('/usr/lib/python3/dist-packages/pip/_vendor/pyproject_hooks/_in_process/_in_process.py');

    // 18 → sh -c (19) → ls (20), three times over.
    for (const pid of [18, 19, 20, 21, 22, 23, 24, 25, 26]) expect(packageOfProcess(trace, pid)).toBe('evil-pkg');
    for (const pid of [11, 12, 13, 14, 15, 16, 17]) expect(packageOfProcess(trace, pid)).toBeNull();
    expect(trace.processes.get(19)).toMatchObject({
      ppid: 18,
      argv: ['sh', '-c', 'echo hi > /tmp/x; cd /tmp && ls'],
      exe: '/usr/bin/sh',
      cwd: '/tmp',
      cwds: [BUILD_DIR, '/tmp'],
    });
    expect(trace.processes.get(20)).toMatchObject({ ppid: 19, argv: ['ls'], cwd: '/tmp', cwds: ['/tmp'] });
  });

  it('reports every connect with its outcome, and no event for a sendto on a connected socket', () => {
    expect(ofKind(trace, 'connect', 18).map(({ syscall, family, address, port, ok, errno }) => ({ syscall, family, address, port, ok, errno }))).toEqual([
      { syscall: 'connect', family: 'unix', address: '/var/run/nscd/socket', port: null, ok: false, errno: 'ENOENT' },
      { syscall: 'connect', family: 'unix', address: '/var/run/nscd/socket', port: null, ok: false, errno: 'ENOENT' },
      { syscall: 'connect', family: 'inet', address: '127.0.0.53', port: 53, ok: true, errno: null },
      { syscall: 'connect', family: 'inet', address: '127.1.0.1', port: 80, ok: false, errno: 'EINPROGRESS' },
      { syscall: 'connect', family: 'inet', address: '10.255.255.1', port: 4444, ok: false, errno: 'ENETUNREACH' },
      { syscall: 'connect', family: 'unix', address: '/var/run/docker.sock', port: null, ok: false, errno: 'ENOENT' },
    ]);
    expect(ofKind(trace, 'connect')).toHaveLength(18);
  });

  it('reports kill(1, SIGKILL) refused with EPERM', () => {
    expect(ofKind(trace, 'kill').map((e) => e.pid)).toEqual([18, 21, 24]);
    expect(ofKind(trace, 'kill', 18)).toEqual([
      { kind: 'kill', pid: 18, time: 1795820988.586773, syscall: 'kill', target: 1, signal: 'SIGKILL', ok: false, errno: 'EPERM' },
    ]);
  });

  it('reports the credential read that failed and the rc file it appended to', () => {
    const opens = ofKind(trace, 'open', 18);
    expect(opens.find((e) => e.path === '/home/sandbox/.ssh/id_rsa')).toMatchObject({
      syscall: 'openat',
      write: false,
      create: false,
      ok: false,
      errno: 'ENOENT',
      relative: false,
    });
    expect(opens.find((e) => e.path === '/home/sandbox/.bashrc')).toMatchObject({ write: true, create: true, ok: true, errno: null });
  });

  it('joins unfinished and resumed halves: vfork returns the child, exec ends in success', () => {
    expect(ofKind(trace, 'spawn', 12).map((e) => e.child)).toEqual([13, 14, 15, 18, 21, 24]);
    expect(ofKind(trace, 'spawn', 12)[3]).toEqual({ kind: 'spawn', pid: 12, time: 1795820988.037959, child: 18, thread: false, ok: true, errno: null });
    // sh is looked up along PATH: five ENOENT tries, then the split execve that worked.
    const shell = ofKind(trace, 'exec', 19);
    expect(shell.map((e) => [e.path, e.ok, e.errno])).toEqual([
      ['/tmp/pip-build-env-e4g603gw/overlay/bin/sh', false, 'ENOENT'],
      ['/tmp/pip-build-env-e4g603gw/normal/bin/sh', false, 'ENOENT'],
      ['/usr/local/sbin/sh', false, 'ENOENT'],
      ['/usr/local/bin/sh', false, 'ENOENT'],
      ['/usr/sbin/sh', false, 'ENOENT'],
      ['/usr/bin/sh', true, null],
    ]);
    // A child seen before its parent's vfork returned still gets the parent's cwd at the fork.
    expect(trace.processes.get(18)).toMatchObject({ ppid: 12, cwds: ['/home/sandbox', BUILD_DIR], start: 1795820988.037959 });
  });

  it('records exit codes', () => {
    expect(trace.processes.get(13)).toMatchObject({ exitCode: 255, signal: null, end: 1795820984.335453 });
    expect(ofKind(trace, 'exit').find((e) => e.pid === 13)).toEqual({ kind: 'exit', pid: 13, time: 1795820984.335453, code: 255, signal: null });
    expect(ofKind(trace, 'exit')).toHaveLength(16);
  });

  it('resolves a relative unlink against the cwd, and keeps dirfd-relative paths as written', () => {
    expect(ofKind(trace, 'unlink', 24).find((e) => e.path.endsWith('dependency_links.txt') && !e.relative)?.path).toBe(
      `${BUILD_DIR}/build/bdist.linux-x86_64/wheel/evil_pkg-1.0.dist-info/dependency_links.txt`,
    );
    expect(ofKind(trace, 'unlink', 12).find((e) => e.path.endsWith('output.json'))).toMatchObject({ path: 'output.json', relative: true, ok: true });
    expect(ofKind(trace, 'open', 12).find((e) => e.path === 'overlay')).toMatchObject({ relative: true });
  });

  it('reports renames with both paths', () => {
    expect(ofKind(trace, 'rename', 12).at(-1)).toMatchObject({
      from: '/opt/target/lib/python3.11/site-packages/evil_pkg-1.0.dist-info/RECORDwtrcyg_c.tmp',
      to: '/opt/target/lib/python3.11/site-packages/evil_pkg-1.0.dist-info/RECORD',
      ok: true,
      relative: false,
    });
  });

  it('streams line by line to the same result', () => {
    const parser = new TraceParser();
    for (const line of SAMPLE.split('\n')) parser.push(line);
    expect(parser.finish()).toEqual(trace);
  });
});

describe('parseTrace on synthetic lines', () => {
  it('reads IPv6, UDP sendto and sendmsg with an address, and abstract unix sockets', () => {
    const trace = parseTrace(
      record(
        '10 1.000001 connect(3, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = -1 ECONNREFUSED (Connection refused)',
        '10 1.000002 sendto(3, "\\252\\252\\1\\0\\0\\1\\0\\0\\0\\0\\0\\0\\7example\\3com\\0\\0\\1\\0\\1", 29, MSG_NOSIGNAL, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("8.8.8.8")}, 16) = 29',
        '10 1.000003 sendmsg(3, {msg_name={sa_family=AF_INET, sin_port=htons(123), sin_addr=inet_addr("1.2.3.4")}, msg_namelen=16, msg_iov=[{iov_base="x", iov_len=1}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 1',
        '10 1.000004 sendmsg(3, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="x", iov_len=1}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, 0) = 1',
        '10 1.000005 connect(4, {sa_family=AF_UNIX, sun_path=@"/tmp/.X11-unix/X0"}, 20) = 0',
        '10 1.000006 connect(5, {sa_family=AF_NETLINK, nl_pid=0, nl_groups=00000000}, 12) = 0',
      ),
    );
    expect(trace.unparsed).toBe(0);
    expect(ofKind(trace, 'connect').map(({ syscall, family, address, port, ok }) => ({ syscall, family, address, port, ok }))).toEqual([
      { syscall: 'connect', family: 'inet6', address: '::1', port: 443, ok: false },
      { syscall: 'sendto', family: 'inet', address: '8.8.8.8', port: 53, ok: true },
      { syscall: 'sendmsg', family: 'inet', address: '1.2.3.4', port: 123, ok: true },
      { syscall: 'connect', family: 'unix', address: '@/tmp/.X11-unix/X0', port: null, ok: true },
      { syscall: 'connect', family: 'other', address: 'AF_NETLINK', port: null, ok: true },
    ]);
  });

  it('reads tgkill, tkill, ptrace and a failed clone', () => {
    const trace = parseTrace(
      record(
        '10 1.000001 tgkill(1, 1, SIGTERM) = -1 EPERM (Operation not permitted)',
        '10 1.000002 tkill(7, SIGSTOP) = -1 ESRCH (No such process)',
        '10 1.000003 kill(-1, SIGKILL) = -1 EPERM (Operation not permitted)',
        '10 1.000004 ptrace(PTRACE_ATTACH, 1) = -1 EPERM (Operation not permitted)',
        '10 1.000005 ptrace(PTRACE_TRACEME) = 0',
        '10 1.000006 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f0c1c9ffa10) = -1 EAGAIN (Resource temporarily unavailable)',
        '10 1.000007 clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f, parent_tid=0x7f, exit_signal=0, stack=0x7f, stack_size=0x7fff00, tls=0x7f} => {parent_tid=[11]}, 88) = 11',
      ),
    );
    expect(trace.unparsed).toBe(0);
    expect(ofKind(trace, 'kill').map(({ syscall, target, signal, errno }) => [syscall, target, signal, errno])).toEqual([
      ['tgkill', 1, 'SIGTERM', 'EPERM'],
      ['tkill', 7, 'SIGSTOP', 'ESRCH'],
      ['kill', -1, 'SIGKILL', 'EPERM'],
    ]);
    expect(ofKind(trace, 'ptrace').map(({ request, target, ok }) => [request, target, ok])).toEqual([
      ['PTRACE_ATTACH', 1, false],
      ['PTRACE_TRACEME', null, true],
    ]);
    expect(ofKind(trace, 'spawn').map(({ child, thread, ok, errno }) => ({ child, thread, ok, errno }))).toEqual([
      { child: -1, thread: false, ok: false, errno: 'EAGAIN' },
      { child: 11, thread: true, ok: true, errno: null },
    ]);
    expect(trace.processes.get(11)?.ppid).toBe(10);
  });

  it('reads the calls the seccomp filters refuse, with what each asked for', () => {
    const EPERM = '-1 EPERM (Operation not permitted)';
    const trace = parseTrace(
      record(
        `10 1.000001 process_vm_readv(7, [{iov_base=0x7f, iov_len=8}], 1, [{iov_base=0x7f, iov_len=8}], 1, 0) = ${EPERM}`,
        `10 1.000002 pidfd_getfd(3<anon_inode:[pidfd]>, 5, 0) = ${EPERM}`,
        `10 1.000003 bpf(BPF_PROG_LOAD, {prog_type=BPF_PROG_TYPE_SOCKET_FILTER, insn_cnt=2, insns=0x7f, license="GPL"}, 148) = ${EPERM}`,
        `10 1.000004 add_key("user", "a\\"b", NULL, 0, KEY_SPEC_SESSION_KEYRING) = ${EPERM}`,
        '10 1.000005 personality(0xffffffff) = 0 (PER_LINUX)',
        '10 1.000006 personality(0xffffffff /* PER_??? */) = 8 (PER_LINUX32)',
        `10 1.000007 personality(PER_LINUX|ADDR_NO_RANDOMIZE) = ${EPERM}`,
        `10 1.000008 userfaultfd(O_CLOEXEC|O_NONBLOCK) = ${EPERM}`,
      ),
    );
    expect(trace.unparsed).toBe(0);
    expect(ofKind(trace, 'forbidden').map(({ syscall, detail, target, ok, errno }) => [syscall, detail, target, ok, errno])).toEqual([
      ['process_vm_readv', null, 7, false, 'EPERM'],
      ['pidfd_getfd', null, null, false, 'EPERM'],
      ['bpf', 'BPF_PROG_LOAD', null, false, 'EPERM'],
      ['add_key', 'user', null, false, 'EPERM'],
      ['personality', '0xffffffff', null, true, null],
      ['personality', '0xffffffff', null, true, null],
      ['personality', 'PER_LINUX|ADDR_NO_RANDOMIZE', null, false, 'EPERM'],
      ['userfaultfd', null, null, false, 'EPERM'],
    ]);
  });

  it('undoes C escaping exactly, and marks what strace or our caps cut', () => {
    const many = Array.from({ length: 70 }, (_, i) => `"a${i}"`).join(', ');
    const trace = parseTrace(
      record(
        '10 1.000001 execve("/bin/echo", ["echo", "say \\"hi\\"\\n", "\\x1b[31mred\\33[0m", "caf\\303\\251", "bad\\377byte", "tab\\there", "back\\\\slash", ") = 0 <unfinished ...>"], 0x7ffd /* 3 vars */) = 0',
        '10 1.000002 execve("/bin/true", ["true", "aaaaaaaa"..., ...], 0x7ffd /* 3 vars */) = -1 E2BIG (Argument list too long)',
        `10 1.000003 execve("/bin/many", [${many}], 0x7ffd /* 3 vars */) = 0`,
      ),
    );
    expect(trace.unparsed).toBe(0);
    const [echo, big, many70] = ofKind(trace, 'exec');
    expect(echo?.argv).toEqual(['echo', 'say "hi"\n', '\u001b[31mred\u001b[0m', 'café', 'bad\ufffdbyte', 'tab\there', 'back\\slash', ') = 0 <unfinished ...>']);
    expect(echo?.truncated).toBe(false);
    expect(big).toMatchObject({ argv: ['true', 'aaaaaaaa'], truncated: true, ok: false, errno: 'E2BIG' });
    expect(many70?.argv).toHaveLength(MAX_ARGV_ENTRIES);
    expect(many70?.truncated).toBe(true);
    expect(trace.processes.get(10)?.argv).toHaveLength(MAX_ARGV_ENTRIES);
  });

  it('decodes any bytes strace can print back to what the package passed', () => {
    const named: Record<number, string> = { 9: '\\t', 10: '\\n', 13: '\\r', 11: '\\v', 12: '\\f', 34: '\\"', 92: '\\\\' };
    const escape = (bytes: Uint8Array, style: number[]) =>
      [...bytes]
        .map((b, i) => {
          if (b >= 0x20 && b < 0x7f && b !== 34 && b !== 92) return String.fromCharCode(b);
          const pick = (style[i] ?? 0) % 3;
          if (pick === 0 && named[b]) return named[b];
          return pick === 1 ? `\\x${b.toString(16).padStart(2, '0')}` : `\\${b.toString(8).padStart(3, '0')}`;
        })
        .join('');
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.array(fc.nat({ max: 2 }), { maxLength: 64 }), (bytes, style) => {
        const trace = parseTrace(`10 1.000001 execve("/bin/x", ["x", "${escape(bytes, style)}"], 0x1 /* 0 vars */) = 0`);
        expect(trace.unparsed).toBe(0);
        expect(ofKind(trace, 'exec')[0]?.argv[1]).toBe(Buffer.from(bytes).toString('utf8'));
      }),
    );
  });

  it('is not fooled by call syntax inside a string', () => {
    const trace = parseTrace(
      record(
        '10 1.000001 openat(AT_FDCWD, "/tmp/x\\", O_RDONLY) = 3 \\"), {sa_family=AF_UNIX, sun_path=\\"/var/run/docker.sock\\"}", O_WRONLY|O_CREAT, 0644) = -1 EACCES (Permission denied)',
        '10 1.000002 connect(3, {sa_family=AF_UNIX, sun_path="/x\\"}, 3) = 0 ), {"}, 110) = -1 ENOENT (No such file or directory)',
      ),
    );
    expect(trace.unparsed).toBe(0);
    expect(ofKind(trace, 'open')).toEqual([
      expect.objectContaining({
        path: '/tmp/x", O_RDONLY) = 3 "), {sa_family=AF_UNIX, sun_path="/var/run/docker.sock"}',
        write: true,
        ok: false,
        errno: 'EACCES',
      }),
    ]);
    expect(ofKind(trace, 'connect')).toEqual([expect.objectContaining({ address: '/x"}, 3) = 0 ), {', ok: false, errno: 'ENOENT' })]);
  });

  it('resolves relative paths against the cwd as chdir changes it, and gives up after fchdir', () => {
    const trace = parseTrace(
      record(
        '10 1.000001 openat(AT_FDCWD, "notes.txt", O_RDONLY) = 3',
        '10 1.000002 chdir("/srv/../tmp//work") = 0',
        '10 1.000003 openat(AT_FDCWD, "../.ssh/id_rsa", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)',
        '10 1.000004 chdir("sub") = 0',
        '10 1.000005 chdir("/nope") = -1 ENOENT (No such file or directory)',
        '10 1.000006 creat("out.bin", 0644) = 4',
        '10 1.000007 access("/etc/shadow", R_OK) = -1 EACCES (Permission denied)',
        '10 1.000008 faccessat2(AT_FDCWD, "probe", W_OK, AT_EACCESS) = 0',
        '10 1.000009 openat(AT_FDCWD, "/tmp", O_RDWR|O_TMPFILE, 0600) = 5',
        '10 1.000010 open("/etc/passwd", 0x1) = 6',
        '10 1.000011 symlinkat("/home/sandbox/.bashrc", AT_FDCWD, "link") = 0',
        '10 1.000012 renameat2(AT_FDCWD, "a", 7, "b", RENAME_NOREPLACE) = 0',
        '10 1.000013 fchdir(3) = 0',
        '10 1.000014 openat(AT_FDCWD, "where.txt", O_RDONLY) = 7',
        '10 1.000015 chdir("/abs") = 0',
        '10 1.000016 openat(AT_FDCWD, "here.txt", O_RDONLY) = 8',
      ),
      { initialCwd: '/home/sandbox' },
    );
    expect(trace.unparsed).toBe(0);
    expect(ofKind(trace, 'open').map(({ syscall, path, relative, write, create }) => [syscall, path, relative, write, create])).toEqual([
      ['openat', '/home/sandbox/notes.txt', false, false, false],
      ['openat', '/tmp/.ssh/id_rsa', false, false, false],
      ['creat', '/tmp/work/sub/out.bin', false, true, true],
      ['access', '/etc/shadow', false, false, false],
      ['faccessat2', '/tmp/work/sub/probe', false, false, false],
      ['openat', '/tmp', false, true, true],
      ['open', '/etc/passwd', false, true, false],
      ['openat', 'where.txt', true, false, false],
      ['openat', '/abs/here.txt', false, false, false],
    ]);
    expect(ofKind(trace, 'symlink')).toEqual([expect.objectContaining({ target: '/home/sandbox/.bashrc', path: '/tmp/work/sub/link', relative: false })]);
    expect(ofKind(trace, 'rename')).toEqual([expect.objectContaining({ from: '/tmp/work/sub/a', to: 'b', relative: true })]);
    expect(trace.processes.get(10)?.cwds).toEqual(['/home/sandbox', '/tmp/work', '/tmp/work/sub', '/abs']);
  });

  it('sees through /proc/<pid>/root and /proc/self/cwd', () => {
    const trace = parseTrace(
      record(
        '10 1.000001 chdir("/home/sandbox/work") = 0',
        '10 1.000002 openat(AT_FDCWD, "/proc/self/root/home/sandbox/.ssh/id_rsa", O_RDONLY) = -1 ENOENT (No such file or directory)',
        '10 1.000003 openat(AT_FDCWD, "/proc/self/cwd/../.aws/credentials", O_RDONLY) = -1 ENOENT (No such file or directory)',
        '10 1.000004 openat(AT_FDCWD, "//proc/1/root/proc/thread-self/root/etc/shadow", O_RDONLY) = -1 EACCES (Permission denied)',
        '10 1.000005 chdir("/proc/self/root/tmp") = 0',
        '10 1.000006 openat(AT_FDCWD, "/proc/99/cwd/x", O_RDONLY) = -1 ENOENT (No such file or directory)',
      ),
    );
    expect(ofKind(trace, 'open').map((e) => e.path)).toEqual(['/home/sandbox/.ssh/id_rsa', '/home/sandbox/.aws/credentials', '/etc/shadow', '/proc/99/cwd/x']);
    expect(trace.processes.get(10)?.cwd).toBe('/tmp');
  });

  it('reads deaths by signal, and ends a call its process died in with an unknown result', () => {
    const trace = parseTrace(
      record(
        '10 1.000001 vfork( <unfinished ...>',
        '11 1.000002 connect(3, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("10.0.0.1")}, 16 <unfinished ...>',
        '10 1.000003 <... vfork resumed>) = 11',
        '11 1.000004 +++ killed by SIGKILL +++',
        '10 1.000005 +++ killed by SIGSEGV (core dumped) +++',
      ),
    );
    expect(trace.unparsed).toBe(0);
    expect(trace.processes.get(11)).toMatchObject({ ppid: 10, exitCode: null, signal: 'SIGKILL', end: 1.000004 });
    expect(trace.processes.get(10)).toMatchObject({ signal: 'SIGSEGV' });
    expect(ofKind(trace, 'connect')).toEqual([
      { kind: 'connect', pid: 11, time: 1.000002, syscall: 'connect', family: 'inet', address: '10.0.0.1', port: 80, ok: false, errno: null },
    ]);
    expect(ofKind(trace, 'exit').map((e) => [e.pid, e.code, e.signal])).toEqual([
      [11, null, 'SIGKILL'],
      [10, null, 'SIGSEGV'],
    ]);
  });

  it('gives a reused pid a fresh process', () => {
    const trace = parseTrace(
      record(
        '10 1.000001 vfork() = 11',
        '11 1.000002 execve("/bin/a", ["a"], 0x1 /* 0 vars */) = 0',
        '11 1.000003 +++ exited with 0 +++',
        '10 1.000004 chdir("/tmp") = 0',
        '10 1.000005 vfork() = 11',
        '11 1.000006 +++ exited with 3 +++',
      ),
    );
    expect(trace.processes.get(11)).toMatchObject({ ppid: 10, argv: [], cwd: '/tmp', exitCode: 3, start: 1.000005 });
  });

  it('counts what it cannot read and carries on', () => {
    const trace = parseTrace(
      record(
        '10 1.000001 openat(AT_FDCWD, "/ok/1", O_RDONLY) = 3',
        'strace: Process 12 attached',
        'garbage',
        '10 notatime openat(AT_FDCWD, "/x", O_RDONLY) = 3',
        '10 1.000002 openat(AT_FDCWD, "/unterminated, O_RDONLY) = 3',
        '10 1.000003 <... openat resumed>) = 3',
        '10 1.000004 +++ exited sideways +++',
        '10 1.000005 connect(3, {sa_family=AF_INET, sin_port=htons(80)}, 16) = 0',
        '10 1.000006 openat(AT_FDCWD, "/x", O_RDONLY) =',
        '10 1.000007 kill(pid, SIGKILL) = 0',
        '10 1.000008 openat(AT_FDCWD, 0x1, O_RDONLY) = -1 EFAULT (Bad address)',
        '10 1.000009 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=11, si_uid=1000, si_status=0} ---',
        '',
        '10 1.000010 openat(AT_FDCWD, "/ok/2", O_RDONLY) = 3',
      ),
    );
    expect(trace.unparsed).toBe(10);
    expect(ofKind(trace, 'open').map((e) => e.path)).toEqual(['/ok/1', '/ok/2']);
  });

  it('caps the events it keeps and counts the rest', () => {
    const parser = new TraceParser();
    for (let i = 0; i < MAX_EVENTS + 5; i++) parser.push(`10 1.${String(i).padStart(6, '0')} access("/f${i}", F_OK) = 0`);
    const trace = parser.finish();
    expect(trace.events).toHaveLength(MAX_EVENTS);
    expect(trace.dropped).toBe(5);
  });
});

describe('parseTrace on hostile input', () => {
  const sampleLines = SAMPLE.split('\n');

  const checkInvariants = (trace: Trace) => {
    expect(trace.events.length).toBeLessThanOrEqual(MAX_EVENTS);
    if (trace.rootPid !== null) expect(trace.processes.has(trace.rootPid)).toBe(true);
    for (const pid of trace.processes.keys()) packageOfProcess(trace, pid);
  };

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), (text) => {
        checkInvariants(parseTrace(text));
      }),
    );
  });

  it('never throws on lines built from strace syntax', () => {
    const token = fc.constantFrom(
      '10 ',
      '11 ',
      '1.5 ',
      'openat(',
      'AT_FDCWD',
      'execve(',
      'vfork(',
      'connect(',
      '{sa_family=AF_UNIX, sun_path=',
      '"',
      '\\',
      '\\"',
      '\\x',
      '\\377',
      '...',
      ', ',
      ')',
      ']',
      '}',
      '[',
      '{',
      ' = ',
      '-1 ',
      'ENOENT ',
      '0',
      ' <unfinished ...>',
      '<... vfork resumed>',
      '<... execve resumed>',
      '+++ exited with 1 +++',
      '\n',
      '/* */',
      // fd decorations, fd and symlink paths: the fd table and the symlink walk take anything.
      '3</tmp>',
      '</opt/target (deleted)>',
      '"/proc/self/fd/3/',
      '"/dev/fd/3/',
      '../',
      'symlink("/tmp/a", "/tmp/b") = 0',
      'symlink("../a/b", "/tmp/a") = 0',
      'rename(',
      'dup2(',
      'fchmod(',
      'recvmsg(',
      'clone3({flags=CLONE_FILES} => {parent_tid=[11]}, 88) = 11',
    );
    fc.assert(
      fc.property(fc.array(token, { maxLength: 60 }), (tokens) => {
        checkInvariants(parseTrace(tokens.join('')));
      }),
    );
  });

  it('never throws on random mutations of the real record', () => {
    const mutation = fc.oneof(
      fc.record({ op: fc.constant('cut' as const), line: fc.nat(), at: fc.nat(), len: fc.nat({ max: 40 }) }),
      fc.record({ op: fc.constant('insert' as const), line: fc.nat(), at: fc.nat(), text: fc.string({ unit: 'binary', maxLength: 20 }) }),
      fc.record({ op: fc.constant('swap' as const), line: fc.nat(), other: fc.nat() }),
      fc.record({ op: fc.constant('drop' as const), line: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 20 }), (mutations) => {
        const lines = [...sampleLines];
        for (const m of mutations) {
          const i = m.line % lines.length;
          const line = lines[i] ?? '';
          if (m.op === 'cut') lines[i] = line.slice(0, m.at % (line.length + 1)) + line.slice((m.at % (line.length + 1)) + m.len);
          else if (m.op === 'insert') lines[i] = line.slice(0, m.at % (line.length + 1)) + m.text + line.slice(m.at % (line.length + 1));
          else if (m.op === 'swap') [lines[i], lines[m.other % lines.length]] = [lines[m.other % lines.length] ?? '', line];
          else lines.splice(i, 1);
        }
        checkInvariants(parseTrace(lines.join('\n')));
      }),
      { numRuns: 60 },
    );
  });
});

describe('parseTrace: batched sends and queued signals', () => {
  it('reads every destination of a sendmmsg batch', () => {
    const msg = (addr: string, port: number) =>
      `{msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(${port}), sin_addr=inet_addr("${addr}")}, msg_namelen=16, msg_iov=[{iov_base="x", iov_len=1}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=1}`;
    const trace = parseTrace(
      [
        '11 1.000000 execve("/usr/bin/python3", ["python3"], 0x7ffd /* 4 vars */) = 0',
        `11 1.100000 sendmmsg(3<socket:[77]>, [${msg('127.0.0.53', 53)}, ${msg('127.9.9.9', 9999)}, ${msg('10.0.0.1', 7)}], 3, 0) = 3`,
      ].join('\n'),
    );
    expect(trace.unparsed).toBe(0);
    expect(trace.events.filter((e) => e.kind === 'connect').map((e) => e.kind === 'connect' && `${e.syscall} ${e.address}:${e.port}`)).toEqual([
      'sendmmsg 127.0.0.53:53',
      'sendmmsg 127.9.9.9:9999',
      'sendmmsg 10.0.0.1:7',
    ]);
  });

  it('reads the first destination of a sendmmsg batch, and nothing for a connected socket', () => {
    const trace = parseTrace(
      [
        '11 1.000000 execve("/usr/bin/python3", ["python3"], 0x7ffd /* 4 vars */) = 0',
        '11 1.100000 sendmmsg(3, [{msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("8.8.8.8")}, msg_namelen=16, msg_iov=[{iov_base="\\x12\\x34", iov_len=2}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=2}], 1, MSG_NOSIGNAL) = -1 ENETUNREACH (Network is unreachable)',
        '11 1.200000 sendmmsg(4, [{msg_hdr={msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="x", iov_len=1}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=1}], 1, MSG_NOSIGNAL) = 1',
      ].join('\n'),
    );
    expect(trace.events.filter((e) => e.kind === 'connect')).toEqual([
      expect.objectContaining({ pid: 11, syscall: 'sendmmsg', family: 'inet', address: '8.8.8.8', port: 53, ok: false, errno: 'ENETUNREACH' }),
    ]);
  });

  it('reads rt_sigqueueinfo as a kill of its target', () => {
    const trace = parseTrace(
      [
        '11 1.000000 execve("/usr/bin/python3", ["python3"], 0x7ffd /* 4 vars */) = 0',
        '11 1.100000 rt_sigqueueinfo(1, SIGKILL, {si_signo=SIGKILL, si_code=SI_QUEUE, si_pid=11, si_uid=1000}) = -1 EPERM (Operation not permitted)',
      ].join('\n'),
    );
    expect(trace.events.filter((e) => e.kind === 'kill')).toEqual([
      expect.objectContaining({ pid: 11, syscall: 'kill', target: 1, signal: 'SIGKILL', ok: false, errno: 'EPERM' }),
    ]);
  });
});

describe('parseTrace: what sends carried', () => {
  const EXEC = '11 1.000000 execve("/usr/bin/python3", ["python3"], 0x7ffd /* 4 vars */) = 0';
  const sends = (trace: Trace) => ofKind(trace, 'send').map(({ syscall, to, payload, truncated }) => ({ syscall, to, payload, truncated }));

  it("keeps the bytes of every send as bytes, with where they went: the address given, else the socket's connect", () => {
    const trace = parseTrace(
      record(
        EXEC,
        '11 1.100000 connect(3<socket:[77]>, {sa_family=AF_INET, sin_port=htons(4444), sin_addr=inet_addr("127.1.0.2")}, 16) = 0',
        // A connected socket's send: no connect event of its own, its bytes and the connect's address.
        '11 1.200000 sendto(3<socket:[77]>, "GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n\\377\\x00", 29, MSG_NOSIGNAL, NULL, 0) = 29',
        '11 1.300000 sendto(4<socket:[78]>, "\\252\\252\\1\\0", 4, 0, {sa_family=AF_INET, sin_port=htons(9999), sin_addr=inet_addr("127.1.0.3")}, 16) = 4',
        '11 1.400000 sendmsg(5<socket:[79]>, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="ab", iov_len=2}, {iov_base="cd"..., iov_len=4096}], msg_iovlen=2, msg_controllen=0, msg_flags=0}, 0) = 6',
        '11 1.500000 sendmmsg(6<socket:[80]>, [{msg_hdr={msg_name={sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, msg_namelen=16, msg_iov=[{iov_base="q1", iov_len=2}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=2}, {msg_hdr={msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="q2", iov_len=2}, ...], msg_iovlen=9, msg_controllen=0, msg_flags=0}, msg_len=2}], 2, 0) = 2',
        // Nothing to keep: an unreadable buffer, an empty one.
        '11 1.600000 sendto(7, 0x7ffd0000, 10, 0, NULL, 0) = -1 EFAULT (Bad address)',
        '11 1.700000 sendto(7, "", 0, 0, NULL, 0) = 0',
      ),
    );
    expect(trace.unparsed).toBe(0);
    expect(sends(trace)).toEqual([
      { syscall: 'sendto', to: { family: 'inet', address: '127.1.0.2', port: 4444 }, payload: 'GET / HTTP/1.1\r\nHost: x\r\n\r\n\xff\x00', truncated: false },
      { syscall: 'sendto', to: { family: 'inet', address: '127.1.0.3', port: 9999 }, payload: '\xaa\xaa\x01\x00', truncated: false },
      { syscall: 'sendmsg', to: null, payload: 'abcd', truncated: true },
      { syscall: 'sendmmsg', to: { family: 'inet', address: '127.0.0.53', port: 53 }, payload: 'q1', truncated: false },
      { syscall: 'sendmmsg', to: null, payload: 'q2', truncated: true },
    ]);
    // The connects stay what they were: one per call that names an address.
    expect(ofKind(trace, 'connect').map((e) => `${e.syscall} ${e.address}:${e.port}`)).toEqual([
      'connect 127.1.0.2:4444',
      'sendto 127.1.0.3:9999',
      'sendmmsg 127.0.0.53:53',
    ]);
  });

  it(`keeps at most ${MAX_SEND_PAYLOAD_BYTES / 1024 ** 2} MiB of sent bytes and counts the rest`, () => {
    const parser = new TraceParser();
    parser.push(EXEC);
    const chunk = 'x'.repeat(4096);
    const calls = MAX_SEND_PAYLOAD_BYTES / 4096 + 3;
    for (let i = 0; i < calls; i++) parser.push(`11 1.${String(i).padStart(6, '0')} sendto(3, "${chunk}", 4096, 0, NULL, 0) = 4096`);
    const trace = parser.finish();
    const kept = ofKind(trace, 'send').reduce((sum, e) => sum + e.payload.length, 0);
    expect(kept).toBe(MAX_SEND_PAYLOAD_BYTES);
    expect(trace.payloadDropped).toBe(3 * 4096);
    expect(trace.dropped).toBe(0);
  });
});

describe('parseTrace: -y fd paths, probes and fd execs', () => {
  const exec = '11 1.000000 execve("/usr/bin/python3", ["python3"], 0x7ffd /* 4 vars */) = 0';

  it('resolves opens relative to a directory fd through the path -y printed', () => {
    const trace = parseTrace(
      [
        exec,
        '11 1.1 openat(AT_FDCWD</home/sandbox>, "/home/sandbox", O_RDONLY|O_CLOEXEC) = 3</home/sandbox>',
        '11 1.2 openat(3</home/sandbox>, ".ssh/id_rsa", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file or directory)',
        '11 1.3 openat(4</etc>, "shadow", O_RDONLY) = -1 EACCES (Permission denied)',
        '11 1.4 openat(5</proc/11>, "environ", O_RDONLY) = 6</proc/11/environ>',
        // A directory name with every character a package may use to confuse a scanner.
        '11 1.5 openat(7</tmp/a,b(c\\"d[e{f\\\\g\\76h>, "x", O_RDONLY) = -1 ENOENT (No such file or directory)',
      ].join('\n'),
    );
    expect(trace.unparsed).toBe(0);
    expect(trace.events.filter((e) => e.kind === 'open').map((e) => e.kind === 'open' && [e.path, e.relative])).toEqual([
      ['/home/sandbox', false],
      ['/home/sandbox/.ssh/id_rsa', false],
      ['/etc/shadow', false],
      ['/proc/11/environ', false],
      ['/tmp/a,b(c"d[e{f\\g>h/x', false],
    ]);
  });

  it('reads stat-family and readlink probes, keeping only what keepProbe wants', () => {
    const lines = [
      exec,
      '11 1.1 newfstatat(AT_FDCWD</home/sandbox>, ".aws/credentials", 0x7ffc, 0) = -1 ENOENT (No such file or directory)',
      '11 1.2 stat("/etc/shadow", {st_mode=S_IFREG|0640, st_size=631, ...}) = 0',
      '11 1.3 statx(3</etc>, "gshadow", AT_STATX_SYNC_AS_STAT, STATX_ALL, 0x7ffc) = 0',
      '11 1.4 readlink("/home/sandbox/.netrc", 0x7ffc, 4096) = -1 ENOENT (No such file or directory)',
      '11 1.5 newfstatat(3</usr/lib>, "", {st_mode=S_IFDIR|0755, st_size=4096, ...}, AT_EMPTY_PATH) = 0',
      '11 1.6 lstat("/usr/lib/python3", {st_mode=S_IFDIR|0755, ...}) = 0',
    ].join('\n');
    const all = parseTrace(lines);
    expect(all.unparsed).toBe(0);
    expect(all.events.filter((e) => e.kind === 'open').map((e) => e.kind === 'open' && `${e.syscall} ${e.path} ${e.ok}`)).toEqual([
      'newfstatat /home/sandbox/.aws/credentials false',
      'stat /etc/shadow true',
      'statx /etc/gshadow true',
      'readlink /home/sandbox/.netrc false',
      'newfstatat /usr/lib true',
      'lstat /usr/lib/python3 true',
    ]);
    const kept = parseTrace(lines, { keepProbe: (p) => !p.startsWith('/usr/') });
    expect(kept.events.filter((e) => e.kind === 'open')).toHaveLength(4);
  });

  it('marks an execveat of an fd, and names the memfd it ran', () => {
    const trace = parseTrace([exec, '11 1.1 execveat(3</memfd:x (deleted)>, "", ["harmless"], 0x7ffd /* 4 vars */, AT_EMPTY_PATH) = 0'].join('\n'));
    expect(trace.unparsed).toBe(0);
    expect(trace.events.filter((e) => e.kind === 'exec').map((e) => e.kind === 'exec' && [e.path, e.viaFd])).toEqual([
      ['/usr/bin/python3', false],
      ['/memfd:x (deleted)', true],
    ]);
  });

  it('follows fchdir through the path -y printed', () => {
    const trace = parseTrace([exec, '11 1.1 fchdir(3</tmp/pip-install-x/evil_1234>) = 0', '11 1.2 openat(AT_FDCWD, "setup.py", O_RDONLY) = 4'].join('\n'));
    expect(trace.processes.get(11)?.cwd).toBe('/tmp/pip-install-x/evil_1234');
    expect(trace.events.find((e) => e.kind === 'open')).toMatchObject({ path: '/tmp/pip-install-x/evil_1234/setup.py', relative: false });
  });
});

describe('parseTrace: oversized lines', () => {
  const exec = '11 1.000000 execve("/usr/bin/python3", ["python3"], 0x7ffd /* 4 vars */) = 0';
  const big = '\\x01'.repeat(1024);

  it('reads an oversized execve from its head: the program, the first arguments, the result', () => {
    const argv = Array.from({ length: 1400 }, () => `"${big}"...`).join(', ');
    const line = `11 1.1 execve("/bin/sh", ["sh", "-c", ${argv}], 0x7ffd /* 4 vars */) = 0`;
    expect(line.length).toBeGreaterThan(MAX_LINE_CHARS);
    const trace = parseTrace([exec, line].join('\n'));
    expect(trace.oversized).toBe(1);
    expect(trace.heads[0]?.startsWith('11 1.1 execve("/bin/sh"')).toBe(true);
    const run = trace.events.filter((e) => e.kind === 'exec').at(-1);
    expect(run).toMatchObject({ path: '/bin/sh', ok: true, truncated: true });
    expect(run?.kind === 'exec' && run.argv.slice(0, 2)).toEqual(['sh', '-c']);
    expect(trace.processes.get(11)?.exe).toBe('/bin/sh');
  });

  it('reads an oversized unfinished execve when it resumes', () => {
    const argv = Array.from({ length: 1400 }, () => `"${big}"...`).join(', ');
    const trace = parseTrace(
      [exec, `11 1.1 execve("/bin/sh", ["sh", ${argv}], 0x7ffd /* 4 vars */ <unfinished ...>`, '11 1.2 <... execve resumed>) = 0'].join('\n'),
    );
    expect(trace.oversized).toBe(1);
    expect(trace.unparsed).toBe(0);
    expect(trace.events.filter((e) => e.kind === 'exec').at(-1)).toMatchObject({ path: '/bin/sh', ok: true });
  });

  it('reads the destination of an oversized sendmsg (MSG_FASTOPEN with a thousand buffers)', () => {
    const iov = Array.from({ length: 1100 }, () => `{iov_base="${big}"..., iov_len=4096}`).join(', ');
    const line = `11 1.1 sendmsg(3<socket:[9]>, {msg_name={sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.1.0.1")}, msg_namelen=16, msg_iov=[${iov}], msg_iovlen=1100, msg_controllen=0, msg_flags=0}, MSG_FASTOPEN) = 4505600`;
    expect(line.length).toBeGreaterThan(MAX_LINE_CHARS);
    const trace = parseTrace([exec, line].join('\n'));
    expect(trace.oversized).toBe(1);
    expect(trace.events.filter((e) => e.kind === 'connect')).toEqual([
      expect.objectContaining({ syscall: 'sendmsg', address: '127.1.0.1', port: 80, ok: true }),
    ]);
  });

  it('keeps the heads of lines it cannot read', () => {
    const trace = parseTrace([exec, '11 1.1 openat(AT_FDCWD, "unterminated'].join('\n'));
    expect(trace.unparsed).toBe(1);
    expect(trace.heads).toEqual(['11 1.1 openat(AT_FDCWD, "unterminated']);
  });
});

describe('what the supervisor traces', () => {
  it('is exactly what the parser models, and each modelled call reaches dispatch', () => {
    const supervisor = readFileSync(new URL('../../images/supervisor.py', import.meta.url), 'utf8');
    const block = /TRACED = ",".join\(\[([\s\S]*?)\]\)/.exec(supervisor)?.[1] ?? '';
    const traced = [...block.matchAll(/"([a-z0-9_]+)"/g)].map((m) => m[1]);
    expect(traced.length).toBeGreaterThan(30);
    expect([...traced].sort()).toEqual([...MODELLED_SYSCALLS].sort());
    const source = readFileSync(new URL('./trace.ts', import.meta.url), 'utf8');
    for (const name of MODELLED_SYSCALLS) expect(source, name).toContain(`case '${name}':`);
  });

  it('holds every call the seccomp filters refuse: each attempt is seen', () => {
    expect(FORBIDDEN_SYSCALLS.filter((name) => !MODELLED_SYSCALLS.includes(name))).toEqual([]);
  });
});

describe('parseTrace: paths as the kernel resolved them', () => {
  const exec = '11 1.000000 execve("/usr/bin/python3", ["python3", "setup.py"], 0x7ffd /* 4 vars */) = 0';
  const SITE = '/opt/target/lib/python3.11/site-packages';
  const paths = (trace: Trace) =>
    trace.events.flatMap((e) =>
      e.kind === 'rename'
        ? [`${e.kind} ${e.from} -> ${e.to}`]
        : e.kind === 'open' || e.kind === 'unlink' || e.kind === 'symlink'
          ? [`${e.kind === 'open' ? e.syscall : e.kind} ${e.path}`]
          : e.kind === 'fsop'
            ? [`${e.syscall} ${e.path}${e.from === null ? '' : ` <- ${e.from}`}`]
            : [],
    );

  it('judges a create, an append, a rename and a link through /proc/self/fd/<dirfd> or /dev/fd/N as the directory the fd holds', () => {
    const trace = parseTrace(
      [
        exec,
        `11 1.1 openat(AT_FDCWD</tmp/pip-install-x/evil_1>, "${SITE}", O_RDONLY|O_CLOEXEC|O_DIRECTORY) = 3<${SITE}>`,
        // A create the kernel refused: no fd returned, so the fd table is what names the directory.
        '11 1.2 openat(AT_FDCWD</tmp/pip-install-x/evil_1>, "/proc/self/fd/3/zz.pth", O_WRONLY|O_CREAT|O_EXCL|O_CLOEXEC, 0644) = -1 EACCES (Permission denied)',
        '11 1.3 rename("/tmp/pip-install-x/evil_1/payload.py", "/proc/self/fd/3/victim_lib/core.py") = 0',
        '11 1.4 fcntl(3</opt/target/lib/python3.11/site-packages>, F_DUPFD_CLOEXEC, 0) = 4</opt/target/lib/python3.11/site-packages>',
        '11 1.5 dup2(4, 20) = 20</opt/target/lib/python3.11/site-packages>',
        '11 1.6 link("/tmp/pip-install-x/evil_1/payload.py", "/dev/fd/20/linked.py") = 0',
        '11 1.7 mkdir("/dev/fd/4/../../../share/x", 0777) = 0',
        // dup2 over a number the table knew: the number now names what it duplicated.
        '11 1.8 openat(AT_FDCWD, "/tmp", O_RDONLY|O_DIRECTORY) = 5</tmp>',
        '11 1.9 dup2(3</opt/target/lib/python3.11/site-packages>, 5</tmp>) = 5</opt/target/lib/python3.11/site-packages>',
        '11 2.0 unlinkat(5, "victim_lib/__init__.py", 0) = 0',
      ].join('\n'),
    );
    expect(trace.unparsed).toBe(0);
    expect(paths(trace)).toEqual([
      `openat ${SITE}`,
      `openat ${SITE}/zz.pth`,
      `rename /tmp/pip-install-x/evil_1/payload.py -> ${SITE}/victim_lib/core.py`,
      `link ${SITE}/linked.py <- /tmp/pip-install-x/evil_1/payload.py`,
      'mkdir /opt/target/share/x',
      'openat /tmp',
      `unlink ${SITE}/victim_lib/__init__.py`,
    ]);
    expect(trace.events.find((e) => e.kind === 'rename')).toMatchObject({ toVia: '/proc/self/fd/3/victim_lib/core.py', relative: false });
    expect(trace.events.find((e) => e.kind === 'open' && !e.ok)).toMatchObject({ via: '/proc/self/fd/3/zz.pth', write: true, create: true });
    expect(trace.events.find((e) => e.kind === 'fsop' && e.syscall === 'link')).toMatchObject({ via: '/dev/fd/20/linked.py' });
  });

  it("takes an open's path from the fd it returned, and strips a deleted file's mark", () => {
    const trace = parseTrace(
      [
        exec,
        `11 1.1 openat(AT_FDCWD</home/user>, "/tmp/pip-x/innocent/evil.pth", O_WRONLY|O_CREAT|O_APPEND|O_CLOEXEC, 0666) = 4<${SITE}/evil.pth>`,
        '11 1.2 openat(AT_FDCWD</home/user>, "/tmp/gone", O_RDWR|O_CREAT, 0600) = 5</tmp/gone (deleted)>',
        // A name built to look like an errno after the decoration is still a name.
        '11 1.3 openat(AT_FDCWD</home/user>, "x", O_RDONLY) = 6</home/user/x EACCES (y)>',
        '11 1.4 openat(AT_FDCWD</home/user>, "/dev/stdout", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 7<pipe:[1234]>',
      ].join('\n'),
    );
    expect(trace.unparsed).toBe(0);
    expect(trace.events.filter((e) => e.kind === 'open').map((e) => e.kind === 'open' && [e.path, e.via, e.ok, e.errno])).toEqual([
      [`${SITE}/evil.pth`, '/tmp/pip-x/innocent/evil.pth', true, null],
      ['/tmp/gone', undefined, true, null],
      ['/home/user/x EACCES (y)', '/home/user/x', true, null],
      ['/dev/stdout', undefined, true, null],
    ]);
  });

  it('reads credentials through /proc/self/fd/<home fd> in a child, and /proc/<pid>/fd of another process', () => {
    const trace = parseTrace(
      [
        exec,
        '11 1.1 openat(AT_FDCWD</tmp/b>, "/home/user", O_RDONLY|O_DIRECTORY|O_CLOEXEC) = 3</home/user>',
        '11 1.2 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 12',
        '12 1.3 openat(AT_FDCWD</tmp/b>, "/proc/self/fd/3/.aws/credentials", O_RDONLY|O_CLOEXEC) = 4</home/user/.aws/credentials>',
        '12 1.4 newfstatat(AT_FDCWD</tmp/b>, "/proc/self/fd/3/.ssh/id_rsa", 0x7ffc, 0) = -1 ENOENT (No such file or directory)',
        '12 1.5 openat(AT_FDCWD</tmp/b>, "/tmp/b", O_RDONLY|O_DIRECTORY) = 5</tmp/b>',
        // The parent's fd 5 is not the child's: not resolved, kept as named.
        '11 1.6 openat(AT_FDCWD</tmp/b>, "/proc/self/fd/5/x", O_RDONLY) = -1 ENOENT (No such file or directory)',
        '11 1.7 openat(AT_FDCWD</tmp/b>, "/proc/12/fd/5/y", O_RDONLY) = -1 ENOENT (No such file or directory)',
        '12 1.8 +++ exited with 0 +++',
        // An ended process has no fds.
        '11 1.9 openat(AT_FDCWD</tmp/b>, "/proc/12/fd/5/z", O_RDONLY) = -1 ENOENT (No such file or directory)',
      ].join('\n'),
    );
    expect(trace.unparsed).toBe(0);
    expect(paths(trace)).toEqual([
      'openat /home/user',
      'openat /home/user/.aws/credentials',
      'newfstatat /home/user/.ssh/id_rsa',
      'openat /tmp/b',
      'openat /proc/self/fd/5/x',
      'openat /tmp/b/y',
      'openat /proc/12/fd/5/z',
    ]);
  });

  it('shares one fd table between threads, copies it at fork, and splits it at unshare(CLONE_FILES)', () => {
    const thread =
      'clone3({flags=CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID, child_tid=0x7f, parent_tid=0x7f, exit_signal=0, stack=0x7f, stack_size=0x7fff00, tls=0x7f} => {parent_tid=[12]}, 88) = 12';
    const trace = parseTrace(
      [
        exec,
        `11 1.1 ${thread}`,
        // The thread opens the target; the leader uses the fd by number.
        '12 1.2 openat(AT_FDCWD</tmp>, "/opt/target", O_RDONLY|O_DIRECTORY) = 3</opt/target>',
        '11 1.3 mkdir("/proc/self/fd/3/planted", 0755) = 0',
        '12 1.4 unshare(CLONE_FILES) = 0',
        '12 1.5 openat(AT_FDCWD</tmp>, "/tmp", O_RDONLY|O_DIRECTORY) = 3</tmp>',
        // The leader's fd 3 is still the target.
        '11 1.6 mkdir("/proc/self/fd/3/again", 0755) = 0',
        '12 1.7 mkdir("/proc/thread-self/fd/3/mine", 0755) = 0',
      ].join('\n'),
    );
    expect(trace.unparsed).toBe(0);
    expect(paths(trace)).toEqual(['openat /opt/target', 'mkdir /opt/target/planted', 'openat /tmp', 'mkdir /opt/target/again', 'mkdir /tmp/mine']);
  });

  it('learns the fds a recvmsg received with SCM_RIGHTS', () => {
    const trace = parseTrace(
      [
        exec,
        '11 1.1 recvmsg(5<socket:[77]>, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="cmsg_data=[7</tmp/decoy>]", iov_len=24}], msg_iovlen=1, msg_control=[{cmsg_len=20, cmsg_level=SOL_SOCKET, cmsg_type=SCM_RIGHTS, cmsg_data=[7</opt/target>]}], msg_controllen=24, msg_flags=MSG_CMSG_CLOEXEC}, MSG_CMSG_CLOEXEC) = 24',
        '11 1.2 rename("/tmp/a", "/proc/self/fd/7/a.pth") = 0',
      ].join('\n'),
    );
    expect(trace.unparsed).toBe(0);
    expect(paths(trace)).toEqual(['rename /tmp/a -> /opt/target/a.pth']);
  });

  it('judges fchmod, fchown, ftruncate, fallocate and fsetxattr by the path of their fd', () => {
    const trace = parseTrace(
      [
        exec,
        `11 1.1 openat(AT_FDCWD</tmp>, "${SITE}/victim_lib/core.py", O_RDONLY|O_CLOEXEC) = 3<${SITE}/victim_lib/core.py>`,
        `11 1.2 fchmod(3<${SITE}/victim_lib/core.py>, 0666) = 0`,
        '11 1.3 ftruncate(3, 0) = -1 EINVAL (Invalid argument)',
        `11 1.4 fchown(3<${SITE}/victim_lib/core.py>, 1000, 1000) = 0`,
        `11 1.5 fallocate(3<${SITE}/victim_lib/core.py>, 0, 0, 10) = -1 EBADF (Bad file descriptor)`,
        `11 1.6 fsetxattr(3<${SITE}/victim_lib/core.py>, "user.x", "1", 1, 0) = 0`,
        `11 1.7 setxattr("/proc/self/fd/3", "user.y", "1", 1, 0) = 0`,
        `11 1.8 lsetxattr("/proc/self/fd/3", "user.z", "1", 1, 0) = -1 EPERM (Operation not permitted)`,
        '11 1.9 fchmod(9<pipe:[5]>, 0666) = 0',
        '11 2.0 fremovexattr(42, "user.x") = -1 EBADF (Bad file descriptor)',
      ].join('\n'),
    );
    expect(trace.unparsed).toBe(0);
    expect(ofKind(trace, 'fsop').map(({ syscall, path, relative, ok }) => [syscall, path, relative, ok])).toEqual([
      ['fchmod', `${SITE}/victim_lib/core.py`, false, true],
      ['ftruncate', `${SITE}/victim_lib/core.py`, false, false],
      ['fchown', `${SITE}/victim_lib/core.py`, false, true],
      ['fallocate', `${SITE}/victim_lib/core.py`, false, false],
      ['fsetxattr', `${SITE}/victim_lib/core.py`, false, true],
      // setxattr follows the fd link to the file; lsetxattr acts on the /proc link itself.
      ['setxattr', `${SITE}/victim_lib/core.py`, false, true],
      ['lsetxattr', '/proc/self/fd/3', false, false],
      ['fchmod', '9<pipe:[5]>', true, true],
      ['fremovexattr', '42', true, false],
    ]);
  });

  it('sees through symlinks made during the run, following the last component only where the call does', () => {
    const trace = parseTrace(
      [
        exec,
        `11 1.1 symlink("${SITE}", "/tmp/pip-build-x/site") = 0`,
        '11 1.2 symlinkat("../../opt/target/bin", AT_FDCWD</tmp/pip-build-x>, "bin") = 0',
        // Through the link: the target.
        '11 1.3 openat(AT_FDCWD</tmp/pip-build-x>, "site/zz.pth", O_WRONLY|O_CREAT|O_EXCL, 0644) = -1 EACCES (Permission denied)',
        '11 1.4 rename("/tmp/pip-build-x/payload", "/tmp/pip-build-x/bin/python3") = 0',
        // `..` after a link is taken from where the link led, not lexically.
        '11 1.5 mkdir("/tmp/pip-build-x/site/../evil", 0755) = 0',
        // The link itself, not its target: lstat, unlink, and an open with O_NOFOLLOW.
        '11 1.6 lstat("/tmp/pip-build-x/site", 0x7ffc) = 0',
        '11 1.7 chmod("/tmp/pip-build-x/site", 0777) = 0',
        '11 1.8 rename("/tmp/pip-build-x", "/tmp/pip-build-y") = 0',
        '11 1.9 truncate("/tmp/pip-build-y/site/victim_lib/core.py", 0) = 0',
        '11 2.0 unlink("/tmp/pip-build-y/site") = 0',
        '11 2.1 truncate("/tmp/pip-build-y/site/victim_lib/core.py", 0) = -1 ENOENT (No such file or directory)',
        // A loop ends where the kernel would give up (ELOOP).
        '11 2.2 symlink("/tmp/l2", "/tmp/l1") = 0',
        '11 2.3 symlink("/tmp/l1/x", "/tmp/l2") = 0',
        '11 2.4 openat(AT_FDCWD</tmp>, "/tmp/l1/f", O_RDONLY) = -1 ELOOP (Too many levels of symbolic links)',
        // A refused symlink made nothing to follow.
        '11 2.5 symlink("/opt/target", "/usr/local/lnk") = -1 EACCES (Permission denied)',
        '11 2.6 mkdir("/usr/local/lnk/x", 0755) = -1 ENOENT (No such file or directory)',
      ].join('\n'),
    );
    expect(trace.unparsed).toBe(0);
    expect(paths(trace).filter((p) => !p.startsWith('symlink'))).toEqual([
      `openat ${SITE}/zz.pth`,
      'rename /tmp/pip-build-x/payload -> /opt/target/bin/python3',
      'mkdir /opt/target/lib/python3.11/evil',
      'lstat /tmp/pip-build-x/site',
      `chmod ${SITE}`,
      'rename /tmp/pip-build-x -> /tmp/pip-build-y',
      `truncate ${SITE}/victim_lib/core.py`,
      'unlink /tmp/pip-build-y/site',
      'truncate /tmp/pip-build-y/site/victim_lib/core.py',
      expect.stringMatching(/^openat \/tmp\/l[12]\//),
      'mkdir /usr/local/lnk/x',
    ]);
    expect(trace.events.find((e) => e.kind === 'fsop' && e.syscall === 'mkdir')).toMatchObject({ via: '/tmp/pip-build-x/evil' });
  });

  it('keeps an openat2 with RESOLVE_IN_ROOT under its directory fd', () => {
    const trace = parseTrace(
      [
        exec,
        '11 1.1 openat2(3</opt/target>, "/../../etc/evil.pth", {flags=O_WRONLY|O_CREAT, mode=0644, resolve=RESOLVE_IN_ROOT}, 24) = -1 EACCES (Permission denied)',
        '11 1.2 openat2(3</opt/target>, "/etc/x", {flags=O_RDONLY, resolve=RESOLVE_NO_SYMLINKS}, 24) = -1 ENOENT (No such file or directory)',
      ].join('\n'),
    );
    expect(trace.unparsed).toBe(0);
    expect(paths(trace)).toEqual(['openat2 /opt/target/etc/evil.pth', 'openat2 /etc/x']);
  });

  it('resolves /dev/stdin-style names only to a path the fd table holds', () => {
    const trace = parseTrace(
      [
        exec,
        '11 1.1 openat(AT_FDCWD</tmp>, "/dev/stdout", O_WRONLY|O_CREAT|O_TRUNC, 0666) = -1 EACCES (Permission denied)',
        '11 1.2 dup2(4</opt/target/x.py>, 1<pipe:[9]>) = 1</opt/target/x.py>',
        '11 1.3 truncate("/dev/stdout", 0) = 0',
        '11 1.4 truncate("/dev/fd/1", 0) = 0',
      ].join('\n'),
    );
    expect(paths(trace)).toEqual(['openat /dev/stdout', 'truncate /opt/target/x.py', 'truncate /opt/target/x.py']);
  });
});
