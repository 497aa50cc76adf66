/**
 * What the sandbox's seccomp filters refuse, shared by the profile (runtime/seccomp.ts builds
 * images/seccomp/sandbox.json from the engine's default), the tracer's own filter in the traced
 * processes (images/tracee-filter.py) and the detector that reports every attempt
 * (observe/processes.ts, `process.forbidden-syscall`).
 *
 * Two filters, because the tracer needs some of these calls itself. The container's profile holds
 * for every process of the container, strace and the supervisor included, and strace cannot trace
 * without ptrace or read a tracee's memory without process_vm_readv. So the profile allows those
 * two families and images/tracee-filter.py, the first program strace runs in each phase, installs a
 * second filter in itself before it executes the phase's command: seccomp filters are inherited by
 * every child and cannot be removed, so pip and everything it starts are refused them, while strace
 * (its parent, never under that filter) keeps them. Everything else on the list is refused by the
 * profile, to every process of the container.
 *
 * A refused call returns EPERM to its caller. The tracer runs without `--seccomp-bpf` so that it
 * sees the attempt: it stops at every syscall before seccomp judges it, where with strace's own
 * seccomp filter a call another filter refuses never reaches the tracer (SECCOMP_RET_ERRNO takes
 * precedence over SECCOMP_RET_TRACE).
 */

/**
 * Refused to the traced processes, and recorded by the tracer (each is in images/supervisor.py
 * TRACED and modelled in observe/trace.ts): io_uring does opens and sends in the kernel with no
 * syscall the tracer sees; pidfd_getfd takes another process's file descriptor (pip's socket to the
 * index relay); process_vm_readv/writev read and write another process's memory (pip's); ptrace
 * makes a tracer; userfaultfd stalls the kernel on a page fault at a chosen moment; bpf and
 * perf_event_open load or attach code and probes in the kernel; the keyring calls reach state
 * outside the container's namespaces; personality() switches the process's ABI flavour.
 */
export const FORBIDDEN_SYSCALLS = [
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  'pidfd_getfd',
  'process_vm_readv',
  'process_vm_writev',
  'ptrace',
  'userfaultfd',
  'bpf',
  'perf_event_open',
  'keyctl',
  'add_key',
  'request_key',
  'personality',
] as const;
export type ForbiddenSyscall = (typeof FORBIDDEN_SYSCALLS)[number];

/**
 * The forbidden calls the tracer needs: the profile allows them (to strace), and the filter
 * images/tracee-filter.py installs in the traced command refuses them (to everything strace runs).
 */
export const TRACER_SYSCALLS: readonly ForbiddenSyscall[] = ['ptrace', 'process_vm_readv', 'process_vm_writev'];

/**
 * personality(0xffffffff) asks for the current persona and changes nothing: allowed. Any other
 * argument is a change, refused.
 */
export const PERSONALITY_QUERY = 0xffffffff;

/**
 * The only architectures the profile allows: the 64-bit native ABIs of the hosts the image is
 * built for. A call through another ABI (i386 with `int 0x80`, x32) is outside the profile, and the
 * engine kills the calling process with SIGSYS before the call runs (runc's choice for an
 * architecture a profile does not name, which a profile cannot change); the tracer's own filter does
 * the same, so this holds whichever engine ran the container. The trace shows the death.
 */
export const PROFILE_ARCHITECTURES = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'] as const;
