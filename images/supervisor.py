"""Supervisor for one sandbox run: PID 1 of the sandbox container, running as root with only
SYS_PTRACE, SETUID and SETGID (no-new-privileges).

It starts the tracer, `strace -f -y -u user`, which runs the given command (pip) as
the unprivileged `user` (uid 1000; a neutral name, so a package cannot tell a sandbox by it). The tracer and its output belong to root: the sandbox user can
neither signal the tracer nor touch the trace. When pip's process ends, the supervisor lists every
process the sandbox user still has (lingering daemons), kills them, waits for the tracer, and
writes status.json next to the trace.

The command runs behind tracee-filter.py, which installs the traced processes' own seccomp filter
(no ptrace, no process_vm_readv/writev: the container's profile must leave those to the tracer)
and then executes it. The tracer stops at every syscall, not only at the traced ones
(`--seccomp-bpf` would): a call a seccomp filter refuses never reaches a tracer that relies on
seccomp to stop, and every refused call must be seen (process.forbidden-syscall). That costs
a few percent of an install (README, "The calls the sandbox refuses"). It records native 64-bit
calls (`@64`): a call through another ABI (int 0x80, x32) is killed by the filters before it
runs, and the record shows the death (`+++ killed by SIGSYS +++`, the one signal whose deaths
are printed), not arguments the kernel never acted on.

usage: python3 -I -S supervisor.py [--watch name,name,...] [--deadline <seconds>] --plan <phases.json>
       python3 -I -S supervisor.py [--watch name,name,...] -- <command...>   (one phase, `install`)

A run is one or more phases (`install`, then `import`, ...), each one traced command run to its
end with the same guarantees: its own trace (<state>/<phase>.strace.log), detached processes
killed the moment they appear, every process of the sandbox user listed and killed when the
phase's command ends, the tracer's record of that end checked. A phase whose command fails, or
whose tracer cannot vouch for it, ends the run. status.json holds one entry per phase run.

--deadline is --timeout, in seconds from the supervisor's start: the host stops the container
then too, but an engine under load has taken 9.6 s to do it, and a flood traced on meanwhile. At
the deadline the phase's command and every process of the sandbox user are killed here, the phase
ends as any other (`timedOut` in its status, exit 124), and no later phase starts.

What a package's code can read of us in /proc does not name the tool: PID 1 shows `/bin/bash`
(comm `bash`), the importer runs under proctitle.py's launcher and shows `-bash`, and only the
phases that run pip and the builds are pinned to one CPU (PINNED_PHASES). The trace records every exec as made.

--watch names the programs whose use the policy reports (process.exec). The supervisor finds the
files they are (device and inode, through symlinks and alternatives) and, at the end, names every
executed path that is one of those files under another name (`execAliases` in status.json).
"""

import codecs
import json
import os
import re
import signal
import subprocess
import sys
import time

STATE = "/var/lib/sandbox-install"
STATUS = STATE + "/status.json"
PHASE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
SANDBOX_USER = "user"
SANDBOX_UID = 1000
SANDBOX_GID = 1000
PATH_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
# Run by the interpreter that runs us: root's, in the image.
TRACEE_FILTER = [sys.executable, "-I", "-S", "/opt/sandbox-install/tracee-filter.py"]
TRACED = ",".join([
    "execve", "execveat", "connect", "sendto", "sendmsg", "openat", "openat2", "open", "creat",
    "unlink", "unlinkat", "rename", "renameat", "renameat2", "symlink", "symlinkat",
    "kill", "tkill", "tgkill", "rt_sigqueueinfo", "ptrace", "chdir", "fchdir", "sendmmsg", "link", "linkat", "io_uring_setup", "pidfd_open",
    "clone", "clone3", "fork", "vfork", "access", "faccessat", "faccessat2",
    # Changes to the target that are not an open for writing (fs.target-tamper).
    "mkdir", "mkdirat", "rmdir", "chmod", "fchmodat", "truncate",
    # Attempts count (a denied chown or utime of a protected path is evidence too).
    "chown", "lchown", "fchownat", "utime", "utimes", "futimesat", "utimensat",
    # Probes of a path without opening it (fs.sensitive-read of credentials that are only looked at).
    "stat", "lstat", "newfstatat", "statx", "readlink", "readlinkat",
    # Changes made through an fd (judged by the fd's path), and extended attributes by path.
    "fchmod", "fchown", "ftruncate", "fallocate", "fsetxattr", "fremovexattr",
    "setxattr", "lsetxattr", "removexattr", "lremovexattr",
    # Every call that hands a process a path's fd, so `/proc/self/fd/N/...` and `/dev/fd/N` are
    # judged as the kernel resolves them (-y names each fd returned); unshare splits a shared table.
    "dup", "dup2", "dup3", "fcntl", "open_tree", "recvmsg", "recvmmsg", "unshare",
    # Refused by the sandbox's seccomp filters: every attempt is reported (process.forbidden-syscall).
    "io_uring_enter", "io_uring_register", "pidfd_getfd", "process_vm_readv", "process_vm_writev", "userfaultfd", "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "personality",
])
# The path of an execve (or an execveat relative to the cwd) as strace prints it.
EXEC_PATH = re.compile(r'^\d+ [\d.]+ execve(?:at)?\((?:AT_FDCWD(?:<(?:[^>\\]|\\.)*>)?, )?"((?:[^"\\]|\\.)*)"')
# How often the supervisor looks for detached processes while pip runs. A scan of /proc takes
# about a millisecond with a hundred processes.
DETACH_POLL_S = 0.05
# What a build phase's outputs may hold (keep_outputs): every wheel of one sdist, with room.
KEEP_MAX_FILES = 1000
KEEP_MAX_BYTES = 8 * 1024 ** 3
# How long removing what a build left in /tmp may take (scrub).
SCRUB_TIMEOUT_S = 120


def proc_stat(pid):
    """(state, ppid) of a process, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    return fields[0].decode(), int(fields[1])


def alive(pid):
    stat = proc_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


def trace_path(phase):
    return "%s/%s.strace.log" % (STATE, phase)


def traced_root(trace, tracer, deadline):
    """pid of the traced command: the pid on the first line strace writes (its first execve).
    strace forks short-lived helpers of its own first, so the tracer's first child is not it."""
    while time.time() < deadline and tracer.poll() is None:
        try:
            with open(trace, "r", encoding="latin-1") as f:
                line = f.readline()
            if line.endswith("\n"):
                return int(line.split(None, 1)[0])
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    return None


def processes_of(uid):
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            # The real uid from status, not the owner of /proc/<pid>: a process that made itself
            # non-dumpable has a root-owned /proc entry but still runs as the sandbox user.
            with open("/proc/%d/status" % pid, "rb") as f:
                uids = [line.split()[1:] for line in f if line.startswith(b"Uid:")]
            if not uids or uid not in {int(u) for u in uids[0]}:
                continue
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = [a.decode("utf-8", "backslashreplace") for a in f.read().split(b"\0") if a]
            stat = proc_stat(pid)
        except OSError:
            continue
        if stat and stat[0] not in ("Z", "X"):
            found.append({"pid": pid, "ppid": stat[1], "argv": argv[:64]})
    return found


def kill_as_sandbox_user(target):
    """kill(target, SIGKILL) as the sandbox user: we hold no CAP_KILL, so only that uid can.
    target -1 is every process it can signal, and nothing of ours."""
    child = os.fork()
    if child == 0:
        try:
            as_sandbox_user()
            os.kill(target, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def kill_all_of_sandbox_user():
    kill_as_sandbox_user(-1)


def as_sandbox_user():
    """preexec_fn: drop to the sandbox user, with no groups besides its own."""
    os.setgroups([])
    os.setgid(SANDBOX_GID)
    os.setuid(SANDBOX_UID)


def keep_outputs(source, dest, limit_files=KEEP_MAX_FILES, limit_bytes=KEEP_MAX_BYTES):
    """Copy the regular files at the top of `source` (a build's wheel dir, the sandbox user's) into
    `dest`, ours: root-owned, 0755, files 0644. The sandbox user can read the copies and change
    none of them, so no later build can rewrite what an earlier one built. Every process of the
    sandbox user is dead when this runs, so `source` holds still. Symlinks and anything else that
    is not a regular file are left (the host judges what the dir held, from the copies: a planted
    regular file is copied and found there). Returns what was kept, for status.json."""
    kept = {"files": 0, "bytes": 0}
    try:
        os.makedirs(dest, mode=0o755, exist_ok=True)
        os.chmod(dest, 0o755)
        entries = sorted(os.scandir(source), key=lambda e: e.name)
    except FileNotFoundError:
        return kept
    except OSError as error:
        kept["error"] = str(error)[:500]
        return kept
    for entry in entries:
        if kept["files"] >= limit_files:
            kept["error"] = "more than %d files" % limit_files
            break
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            src = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                dst = os.open(os.path.join(dest, entry.name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
                try:
                    while True:
                        chunk = os.read(src, 1 << 20)
                        if not chunk:
                            break
                        kept["bytes"] += len(chunk)
                        if kept["bytes"] > limit_bytes:
                            raise OSError("more than %d bytes" % limit_bytes)
                        os.write(dst, chunk)
                finally:
                    os.close(dst)
            finally:
                os.close(src)
            kept["files"] += 1
        except OSError as error:
            kept["error"] = ("%s: %s" % (entry.name, error))[:500]
            break
    return kept


def scrub(prefix):
    """Remove every entry of /tmp named `prefix`* that the sandbox user owns: what a build left
    in pip's temp dirs (sources, build envs, its wheel dir) is gone before the next build starts,
    so no build finds another's files to read or rewrite. Removed as that user (we hold no
    CAP_FOWNER for a sticky /tmp), by rm, which neither follows symlinks nor leaves its file
    system. Returns how many entries were removed, or an error, for status.json."""
    try:
        entries = [e for e in os.scandir("/tmp") if e.name.startswith(prefix) and e.stat(follow_symlinks=False).st_uid == SANDBOX_UID]
        names = [e.path for e in entries]
        # Directories only, never through a symlink: chmod would follow one named on its command line.
        dirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
    except OSError as error:
        return {"removed": 0, "error": str(error)[:500]}
    if not names:
        return {"removed": 0}
    try:
        # A directory its owner made read-only is made writable again first (chmod -R ignores the
        # symlinks it meets inside), so nothing the build could do to its own files keeps them here.
        for argv in ([["chmod", "-R", "u+rwx", "--"] + dirs] if dirs else []) + [["rm", "-rf", "--one-file-system", "--"] + names]:
            subprocess.run(argv, preexec_fn=as_sandbox_user, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=SCRUB_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"removed": 0, "error": str(error)[:500]}
    left = [n for n in names if os.path.lexists(n)]
    return {"removed": len(names) - len(left), **({"error": "%d entries left" % len(left)} if left else {})}


def reap(pids):
    """Detached processes are re-parented to us (PID 1): collect the ones that have ended."""
    for pid in list(pids):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done == pid:
            pids.discard(pid)


def kill_detached(seen, unreaped):
    """A sandbox process whose parent is us was re-parented: its parent exited without waiting
    for it (a double fork, a daemon). pip never does that, and such a process could outlive the
    build that started it and change what pip installs later. Record it and kill it at once."""
    me = os.getpid()
    for proc in processes_of(SANDBOX_UID):
        if proc["ppid"] != me or proc["pid"] in unreaped:
            continue
        proc["detached"] = True
        proc["at"] = time.time()
        seen.append(proc)
        kill_as_sandbox_user(proc["pid"])
        unreaped.add(proc["pid"])
    reap(unreaped)


def watched_files(names):
    """(device, inode) of every file a watched name runs from PATH, to the name."""
    files = {}
    for name in names:
        for directory in PATH_DIRS:
            try:
                st = os.stat(os.path.join(directory, name))
            except OSError:
                continue
            files.setdefault((st.st_dev, st.st_ino), name)
    return files


def exec_alias(path, watched, names):
    """The watched name of the file at `path`, when it is one under another name."""
    if os.path.basename(path) in names or not path.startswith("/"):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return watched.get((st.st_dev, st.st_ino))


def read_trace(trace, root_pid, watched, names):
    """One pass over the trace: pip's end as strace recorded it (('exited', code), ('killed',
    signal name) or None), and the executed paths that are watched programs under other names."""
    prefix = "%d " % root_pid
    result = None
    aliases = {}
    try:
        with open(trace, "r", encoding="latin-1") as f:
            for line in f:
                if watched and "execve" in line[:64]:
                    match = EXEC_PATH.match(line)
                    if match and len(aliases) < 256:
                        try:
                            path = codecs.escape_decode(match.group(1).encode("latin-1"))[0].decode("utf-8", "replace")
                        except ValueError:
                            path = None
                        name = exec_alias(path, watched, names) if path else None
                        if name:
                            aliases[path] = name
                if line.startswith(prefix) and "+++ " in line:
                    tail = line.split("+++ ", 1)[1]
                    if tail.startswith("exited with "):
                        result = ("exited", int(tail.split()[2]))
                    elif tail.startswith("killed by "):
                        result = ("killed", tail.split()[2])
    except (OSError, ValueError, IndexError):
        return None, aliases
    return result, aliases


def native_only(names):
    """The trace expression for these syscalls in the native 64-bit ABI only (`?` for a name a
    machine's native ABI lacks, as aarch64 lacks open and stat)."""
    return ",".join("?%s@64" % name for name in names.split(","))


def program_path(name):
    """What execv runs for a command's argv[0]: the file PATH finds for a bare name, as strace and
    a shell would (the command's argv[0] stays as given)."""
    if "/" in name:
        return name
    for directory in PATH_DIRS:
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return name


# The phases pinned to one CPU: pip's own work and the builds, where the tracer's switches
# dominate (a build's setup.py unpinned took 1.8 to 2.4 times as long). The import and startup
# phases' short runs of a package's code keep every CPU allowed: one CPU in a process's affinity
# mask is a sign of a sandbox an import-time payload can read (Cpus_allowed_list in
# /proc/self/status, os.sched_getaffinity), and those are the phases investigate watches it in.
PINNED_PHASES = ("install", "resolve", "build")


def pinned(phase):
    """Whether a phase (`build-2` is a build) runs on one CPU."""
    return phase in PINNED_PHASES or phase.startswith("build-")


def one_cpu():
    """Pin the tracer, and so everything it runs, to one CPU of those allowed (the last: the host's
    proxy and the monitor's relay keep the others). ptrace stops each syscall twice, and each
    stop is a switch between tracer and tracee; on one CPU that switch needs no cross-CPU wakeup:
    an install under the tracer takes about 16% less time (15.0 s against 12.6 s for 50 packages).
    The cost: a build that compiles in parallel gets one core, and a payload can see one CPU; so
    only PINNED_PHASES are pinned."""
    allowed = sorted(os.sched_getaffinity(0))
    if allowed:
        os.sched_setaffinity(0, {allowed[-1]})


# Our scripts whose processes a package's code sees as its parent, and what they show instead
# (images/proctitle.py). startup.py renames itself; importer.py runs under proctitle.py's launcher,
# in the same process (the phase's traced root), until it calls proctitle.disguise itself.
HERE = os.path.dirname(os.path.abspath(__file__))
DISGUISED = {os.path.join(HERE, "importer.py"): ("-bash", "bash")}


def disguised(command):
    """`python3 -I -S <script of ours> args...` run through proctitle.py's launcher when the script
    is in DISGUISED; any other command as it is."""
    if len(command) > 3 and command[1:3] == ["-I", "-S"] and command[3] in DISGUISED:
        title, comm = DISGUISED[command[3]]
        return command[:3] + [os.path.join(HERE, "proctitle.py"), title, comm] + command[3:]
    return command


def run_phase(name, command, watched, names, deadline=None):
    """One phase: its command under the tracer as the sandbox user, to the end or to `deadline`
    (epoch seconds). Returns its status."""
    command = disguised(command)
    trace = trace_path(name)
    started = time.time()
    tracer = subprocess.Popen(
        # -y prints the path of every fd argument: opens relative to a directory fd, fchdir and
        # execveat of an fd are judged by what they name, not by a number.
        ["strace", "-f", "-y", "-ttt", "-s", "4096", "-u", SANDBOX_USER,
         "-e", "trace=" + native_only(TRACED), "-e", "signal=SIGSYS", "-o", trace, "--"]
        + TRACEE_FILTER + [program_path(command[0])] + command,
        stdin=subprocess.DEVNULL,
        # A session of its own: kill(0) or kill(-pgid) from pip's side can never reach us.
        start_new_session=True,
        preexec_fn=one_cpu if pinned(name) else None,
    )
    root_pid = traced_root(trace, tracer, time.time() + 30)
    status = {"phase": name, "tracerPid": tracer.pid, "rootPid": root_pid, "started": started}

    # Wait for the command (the tracer's first child) to end, or for the tracer to end first,
    # killing every detached process the moment it appears.
    detached, unreaped = [], set()
    while root_pid is not None and alive(root_pid) and tracer.poll() is None:
        if deadline is not None and time.time() >= deadline:
            # Past the run's deadline: everything of the sandbox user dies below, as at any end.
            status["timedOut"] = True
            break
        kill_detached(detached, unreaped)
        time.sleep(DETACH_POLL_S)
    status["pipEnded"] = time.time()
    status["detached"] = detached[:256]

    if status.get("timedOut"):
        # Cut short: what still runs is the command itself, not something it left behind.
        kill_all_of_sandbox_user()
        lingering = []
    else:
        time.sleep(0.2)  # let anything the command started settle before we look
        known = {proc["pid"] for proc in detached}
        lingering = [proc for proc in processes_of(SANDBOX_UID) if proc["pid"] not in known]
    status["lingering"] = lingering
    # Always: whatever hid from the listing above still dies here, so nothing outlives its phase.
    kill_all_of_sandbox_user()

    try:
        tracer.wait(timeout=10)
    except subprocess.TimeoutExpired:
        tracer.kill()
        tracer.wait()
        status["tracerForcedStop"] = True
    status["tracerExit"] = tracer.returncode
    end, aliases = read_trace(trace, root_pid, watched, names) if root_pid is not None else (None, {})
    status["execAliases"] = aliases
    status["pip"] = None if end is None else {"how": end[0], "value": end[1]}
    # The command's end must be in the trace. If it is not, the tracer died or lost it: tampered.
    status["tracerIntact"] = end is not None
    status["ended"] = time.time()
    return status


def read_plan(options):
    """[(phase, argv, after)] from --plan (a JSON list of {"name", "argv", "after"?}), or the command
    after --. `after` is what is done once the phase succeeded and every process of the sandbox
    user is dead: {"keep": {"from", "to"}} copies its outputs out of the user's reach (keep_outputs),
    {"scrub": prefix} removes the user's /tmp/<prefix>* entries (scrub); keep first."""
    if "--plan" in options:
        with open(options[options.index("--plan") + 1]) as f:
            plan = json.load(f)
        phases = [(p["name"], [str(a) for a in p["argv"]], p.get("after") or {}) for p in plan]
    else:
        phases = [("install", sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else [], {})]
    if not phases or any(not PHASE_NAME.match(name) or not argv for name, argv, _ in phases):
        return None
    return phases


def after_phase(after):
    """What `after` asks once a phase has succeeded (read_plan), as status.json reports it."""
    done = {}
    if "keep" in after:
        done["kept"] = keep_outputs(str(after["keep"]["from"]), str(after["keep"]["to"]))
    if "scrub" in after:
        done["scrubbed"] = scrub(str(after["scrub"]))
    return done


def look_like_a_shell():
    """PID 1 shows `/bin/bash` (comm `bash`), as a container started with a shell does, not this
    script and its options: a payload reading /proc/1/cmdline or /proc/1/comm must not learn that a
    tool watches it (proctitle.py). Our argv is parsed from sys.argv, Python's copy, which stays."""
    sys.path.insert(0, HERE)
    try:
        import proctitle
        proctitle.disguise("/bin/bash", "bash")
    except Exception as error:  # never a reason not to run: the run is as watched either way
        sys.stderr.write("supervisor: cannot rename itself: %r\n" % (error,))
    finally:
        del sys.path[0]


def main():
    look_like_a_shell()
    options = sys.argv[1:sys.argv.index("--")] if "--" in sys.argv else sys.argv[1:]
    phases = read_plan(options)
    if phases is None:
        sys.stderr.write("supervisor: no phases to run\n")
        return 2
    names = set(options[options.index("--watch") + 1].split(",")) if "--watch" in options else set()
    deadline = time.time() + float(options[options.index("--deadline") + 1]) if "--deadline" in options else None
    names.discard("")
    watched = watched_files(names)

    statuses = []
    code = 0
    for name, command, after in phases:
        status = run_phase(name, command, watched, names, deadline)
        end = status["pip"]
        if after and not status.get("timedOut") and end == {"how": "exited", "value": 0}:
            status.update(after_phase(after))
        statuses.append(status)
        # Written after every phase: a run cut short still tells what its finished phases did.
        with open(STATUS + ".tmp", "w") as f:
            json.dump({"phases": statuses}, f)
        os.replace(STATUS + ".tmp", STATUS)
        if status.get("timedOut"):
            return 124
        if end is None:
            return 125
        code = end["value"] if end["how"] == "exited" else 128 + getattr(signal, end["value"], signal.SIGKILL)
        if code != 0:
            break
    return code


if __name__ == "__main__":
    sys.exit(main())
