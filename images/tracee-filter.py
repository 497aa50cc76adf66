"""The first program the tracer runs in each phase: installs the tracees' seccomp filter in itself,
then executes the phase's command, which inherits the filter with everything it starts.

usage: python3 -I -S tracee-filter.py <path> <argv0> [args...]   (execv(path, [argv0, args...]))

The container's seccomp profile (images/seccomp/sandbox.json) holds for strace too, so it must
allow what strace needs: ptrace to trace, process_vm_readv to read a tracee's memory. This filter
refuses those calls (and process_vm_writev) with EPERM to every traced process: pip, its build
hooks, whatever they start. A build would otherwise read or write pip's memory (same uid), or
take pip's socket to the index relay with pidfd_getfd, which the profile refuses outright. A
seccomp filter cannot be removed and passes to every child, and the tracer is this process's
parent, never under it. A call through a non-native ABI (int 0x80, x32) kills the process with
SIGSYS, as the engine's filter does for an architecture the profile does not name.

No filter, no command: if the kernel refuses the filter, the phase fails (exit 126).
Keep REFUSED equal to TRACER_SYSCALLS in src/core/seccomp.ts (src/runtime/seccomp.test.ts checks).
"""

import ctypes
import os
import struct
import sys

REFUSED = ["ptrace", "process_vm_readv", "process_vm_writev"]
# Per machine: the audit architecture of its native ABI and its syscall numbers (x86_64 from
# arch/x86/entry/syscalls/syscall_64.tbl; aarch64 from the asm-generic table).
NATIVE = {
    "x86_64": (0xC000003E, {"ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311}),
    "aarch64": (0xC00000B7, {"ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271}),
}
# x32 shares x86_64's audit architecture and sets this bit in the syscall number.
X32_SYSCALL_BIT = 0x40000000

# Classic BPF over struct seccomp_data {int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]}.
LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
RET_K = 0x06  # BPF_RET | BPF_K
OFFSET_NR, OFFSET_ARCH = 0, 4
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
RET_KILL_PROCESS = 0x80000000
EPERM = 1

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def program(machine):
    """The filter as (code, jt, jf, k) instructions. Every test that matches jumps to its verdict,
    counted from the instruction after it."""
    arch, numbers = NATIVE[machine]
    tests = [(JGE_K, X32_SYSCALL_BIT, "kill")] if machine == "x86_64" else []
    tests += [(JEQ_K, numbers[name], "refuse") for name in REFUSED]
    # Layout: arch check, load nr, the tests, ALLOW, REFUSE, KILL.
    verdict_at = {"allow": 3 + len(tests), "refuse": 4 + len(tests), "kill": 5 + len(tests)}
    insns = [(LD_W_ABS, 0, 0, OFFSET_ARCH), (JEQ_K, 0, verdict_at["kill"] - 2, arch), (LD_W_ABS, 0, 0, OFFSET_NR)]
    for code, k, verdict in tests:
        insns.append((code, verdict_at[verdict] - len(insns) - 1, 0, k))
    insns += [(RET_K, 0, 0, RET_ALLOW), (RET_K, 0, 0, RET_ERRNO | EPERM), (RET_K, 0, 0, RET_KILL_PROCESS)]
    return insns


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def install(insns):
    code = b"".join(struct.pack("=HBBI", *insn) for insn in insns)
    libc = ctypes.CDLL(None, use_errno=True)
    prog = SockFprog(len(insns), code)
    # Docker's no-new-privileges sets this already; an unprivileged filter needs it.
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return ctypes.get_errno()
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return ctypes.get_errno()
    return 0


def main():
    if len(sys.argv) < 3:
        sys.stderr.write("tracee-filter: usage: tracee-filter.py <path> <argv0> [args...]\n")
        return 126
    machine = os.uname().machine
    if machine not in NATIVE:
        sys.stderr.write("tracee-filter: no filter for machine %s\n" % machine)
        return 126
    error = install(program(machine))
    if error:
        sys.stderr.write("tracee-filter: the kernel refused the filter: %s\n" % os.strerror(error))
        return 126
    try:
        os.execv(sys.argv[1], sys.argv[2:])
    except OSError as e:
        sys.stderr.write("tracee-filter: cannot run %s: %s\n" % (sys.argv[1], e.strerror))
    return 127


if __name__ == "__main__":
    sys.exit(main())
