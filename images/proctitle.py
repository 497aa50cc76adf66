"""A process's name as other processes see it, changed in place: what setproctitle does, stdlib only.

A package's payload can read /proc/1/cmdline, /proc/1/comm and its parent's cmdline; ours named
the tool (`python3 -I -S /opt/sandbox-install/supervisor.py --watch ...`), and a payload that sees
them can stay quiet in the sandbox and fire on a developer's machine. `disguise(title, comm)`
changes both for the calling process:

- comm (/proc/<pid>/comm, `Name:` in /proc/<pid>/status, what `ps -o comm` and `top` show):
  prctl(PR_SET_NAME), at most 15 bytes;
- cmdline (/proc/<pid>/cmdline, what `ps -f` shows): the kernel reads it from the process's own
  memory, the strings the argv array pointed at when the process started. They are overwritten
  with the title (one string, as setproctitle writes it), the rest zeroed, and the area's last
  byte set: the kernel then returns the area up to the title's NUL (`get_mm_proctitle`), not the
  zeroed tail, so no trailing blanks give the rewrite away. A title longer than the old argv is cut.

Past importing ctypes (its extension module and libffi, opened like any stdlib module), it opens
no file and makes no traced call (prctl is not among those the tracer records; the rest is writes
to our own memory), and the execve the tracer recorded keeps the true argv: the monitoring sees
what it saw before.

What it cannot change: /proc/<pid>/exe (prctl(PR_SET_MM) needs CAP_SYS_RESOURCE) and the
environment area; both are unreadable to the sandbox user for a root process (ptrace access mode).

usage (stdlib only; ctypes is imported on the first call), from a script of ours:

    sys.path.insert(0, "/opt/sandbox-install"); import proctitle
    proctitle.disguise("-bash", "bash")

or as a launcher, for a script that does not call it (see main):

    python3 -I -S proctitle.py -bash bash /opt/sandbox-install/importer.py <args...>
"""

import os
import sys

PR_SET_NAME = 15
COMM_MAX = 15


def argv_area(libc, ctypes):
    """(address, length) of the bytes the process's original argv strings occupy, or None when
    they cannot be found where the C runtime left them. glibc's `program_invocation_name` is
    argv[0] as the kernel placed it; the strings follow one another, each ending in a NUL."""
    try:
        start = ctypes.c_void_p.in_dll(libc, "program_invocation_name").value
    except ValueError:
        return None
    original = [os.fsencode(arg) for arg in getattr(sys, "orig_argv", [])]
    if not start or not original:
        return None
    expected = b"".join(arg + b"\0" for arg in original)
    # Only what is there now: if anything moved the strings, leave them alone.
    if ctypes.string_at(start, len(expected)) != expected:
        return None
    return start, len(expected)


def disguise(title, comm):
    """Show `title` (one string, as setproctitle sets it) as this process's cmdline and `comm` as
    its name. Returns True when both were changed, False when the argument area could not be found
    (comm is still set)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_NAME, ctypes.c_char_p(os.fsencode(comm)[:COMM_MAX]), 0, 0, 0)
    area = argv_area(libc, ctypes)
    if area is None:
        return False
    start, length = area
    # The title, its NUL, and the mark below must fit in the old strings' bytes.
    data = os.fsencode(title)[:max(0, length - 2)] + b"\0"
    ctypes.memset(start, 0, length)
    ctypes.memmove(start, data, len(data))
    # A non-NUL last byte: the kernel reads the title up to its first NUL (setproctitle's way),
    # not the zeroed tail.
    ctypes.memset(start + length - 1, 0x20, 1)
    return True


def main():
    """Launcher: `proctitle.py <title> <comm> <script> [args...]` disguises this process, then runs
    the script in it as `__main__` with `[script, args...]` as its argv: the same process (the
    tracer's root pid for its phase), only its name changed. For a script of ours whose body
    another change owns (images/importer.py)."""
    if len(sys.argv) < 4:
        sys.stderr.write("usage: proctitle.py <title> <comm> <script> [args...]\n")
        return 2
    title, comm, script = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        disguise(title, comm)
    except Exception:  # the script runs, and is watched, either way
        pass
    import runpy

    sys.argv = sys.argv[3:]
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
