"""The import phase of `sandbox-install investigate`: import every module and submodule of every
installed distribution the way an application would, under the tracer, as the sandbox user.

usage: python3 -I -S importer.py <site-packages> <seconds per module>
           [--linger <seconds>] [--max-modules <count>] [--clock-skew <seconds>] [--reap]

The modules are what site-packages holds, not what a distribution says it holds: every package
directory, module file and extension at the top (a PEP 420 namespace directory stands for the
packages inside it), and below each package every submodule, found by a bounded walk over its
files (nothing is imported to find them). Each top-level module is credited to the distribution
whose RECORD lists it, and imported with its submodules in a process of its own, started as

    python3 -I -S -B -c <LAUNCH> <site-packages> <module> <distribution> <app dir>

so the trace shows whose import every process serves (observe/attribution.ts, importedBy reads
that first exec). LAUNCH (ours, isolated) then execs the interpreter again as an application:
`python3 main.py` in a fresh directory, site on, not isolated, bytecode writing on, with the
common stdlib modules loaded before the package's. main.py (written here, one per process) appends
site-packages to sys.path after the stdlib, as a venv has it, imports the module and each
submodule in turn, touches every name in `__all__` and `dir()` and one that does not exist (a PEP
562 `__getattr__` runs), then stays alive `--linger` seconds so timers and threads act, traced.

Why not the target venv's interpreter: its site.py would run every `.pth` of the target in every
import process, each charged to the distribution that process imports. The startup phase runs the
`.pth` files, credited to their owners; here site-packages is only on sys.path. Bytecode goes to
sys.pycache_prefix, a directory of this process alone (nothing is written into site-packages, so
an import that writes there is still fs.target-tamper, and no process can plant bytecode another
loads); each process's directory is removed when it ends.

With `--clock-skew`, each application process runs under libfaketime (LD_PRELOAD, from Debian's
libfaketime) with the wall clock that many seconds ahead: a time bomb in Python code fires. A
static binary or a direct syscall reads the real clock (README, "Investigating one package").

Between two processes, with --reap, every process below this one is killed (found in /proc,
killed by pid; a kill(-1) would be monitor.tampered; a process that left the tree is the
supervisor's, which kills it the moment it appears): nothing one import leaves running can act
while the next is being imported, and be charged to it.

What a process reports of its progress (one line per module, on a pipe) is the package's to fake:
it is read bounded, only for modules this walk planned, and only to count. The counts this
importer establishes itself (processes, exits, timeouts, the bound) come first. One JSON line per
process on stdout, then one `{"coverage": …}` line. Always exits 0: an import that fails is a fact
about the package, not a failure of the phase. Run with `python3 -I -S`; stdlib only.
"""

import csv
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

LAUNCH = (
    "import os, sys; app = sys.argv[4]; os.chdir(app); "
    "os.execve(sys.executable, [os.path.basename(sys.executable), 'main.py'], "
    "{k: v for k, v in os.environ.items() if not k.startswith('PYTHON')} | "
    "dict(line.rstrip('\\n').split('=', 1) for line in open(os.path.join(app, '.env')) if '=' in line))"
)
PTH = "import site, sys; site.addsitedir(sys.argv[1])"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXTENSION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z0-9_-]+)?\.so$")
# The stdlib modules an application has loaded before its dependencies: a payload that waits for
# them finds them.
PRELOAD = ("argparse", "collections", "datetime", "functools", "itertools", "json", "logging", "os", "pathlib",
           "re", "shutil", "signal", "socket", "subprocess", "sys", "tempfile", "threading", "time", "typing",
           "urllib.parse", "uuid")
# How deep the walk goes below a top-level package, and how much of a progress stream is read.
MAX_DEPTH = 12
MAX_PROGRESS_BYTES = 1 << 20
# The libfaketime Debian installs (multiarch path).
FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1")

MAIN = '''"""Application entry point."""
import argparse, collections, datetime, functools, itertools, json, logging, os, pathlib, re, shutil
import signal, socket, subprocess, sys, tempfile, threading, time, typing, urllib.parse, uuid
import importlib

sys.pycache_prefix = {cache!r}
sys.path.append({site!r})
log = logging.getLogger("app")
MODULES = {modules!r}


def load(name, out):
    out.write("start %d\\n" % name[0])
    try:
        module = importlib.import_module(name[1])
    except BaseException:
        out.write("fail %d\\n" % name[0])
        return
    names = []
    try:
        listed = getattr(module, "__all__", None)
        if isinstance(listed, (list, tuple)):
            names.extend(n for n in listed[:2000] if isinstance(n, str))
        names.extend(dir(module)[:2000])
    except BaseException:
        pass
    names.append({missing!r})
    for attr in names:
        try:
            getattr(module, attr)
        except BaseException:
            pass
    out.write("ok %d\\n" % name[0])


def main():
    out = os.fdopen({fd}, "w", buffering=1)
    for item in enumerate(MODULES):
        if item[0] >= {first}:
            load(item, out)
    out.write("done\\n")
    out.close()
    # Not time.sleep: under libfaketime 0.9.10 with the monotonic clock left real, clock_nanosleep
    # fails with EINVAL (README, "Investigating one package"); a condition wait works.
    threading.Event().wait({linger})


if __name__ == "__main__":
    main()
'''


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def owners(site):
    """Top-level entry of site-packages -> the distribution whose RECORD lists it."""
    owned = {}
    for entry in sorted(os.listdir(site)):
        if not entry.endswith(".dist-info"):
            continue
        dist = normalize(entry[: -len(".dist-info")].rsplit("-", 1)[0])
        try:
            with open(os.path.join(site, entry, "RECORD"), newline="", encoding="utf-8", errors="replace") as f:
                for row in csv.reader(f):
                    if row and not row[0].startswith(("..", "/")):
                        owned.setdefault(row[0].split("/", 1)[0], dist)
        except OSError:
            continue
    return owned


def module_of(site, entry):
    """The module name a top-level entry imports as, or None."""
    full = os.path.join(site, entry)
    if entry.endswith(".py") and IDENTIFIER.match(entry[:-3]):
        return entry[:-3]
    match = EXTENSION.match(entry)
    if match and os.path.isfile(full):
        return match.group(1)
    if IDENTIFIER.match(entry) and os.path.isdir(full) and not os.path.islink(full):
        return entry
    return None


def is_package(path):
    return any(os.path.exists(os.path.join(path, "__init__" + s)) for s in (".py", ".pyc"))


def modules(site):
    """[(module, distribution or "", directory or None)] in a stable order."""
    owned = owners(site)
    found = []
    for entry in sorted(os.listdir(site)):
        if entry == "__pycache__" or entry.endswith((".dist-info", ".data")):
            continue
        name = module_of(site, entry)
        if name is None:
            continue
        full = os.path.join(site, entry)
        if os.path.isdir(full) and not is_package(full):
            # A namespace directory: its own import runs nothing, the packages inside it do.
            for child in sorted(os.listdir(full)):
                sub = module_of(full, child)
                if sub is not None and child != "__pycache__":
                    path = os.path.join(full, child)
                    found.append((name + "." + sub, owned.get(entry + "/" + child) or owned.get(entry, ""),
                                  path if os.path.isdir(path) and is_package(path) else None))
            continue
        found.append((name, owned.get(entry, ""), full if os.path.isdir(full) else None))
    seen, unique = set(), []
    for item in found:
        if item[0] not in seen:
            seen.add(item[0])
            unique.append(item)
    return unique


def submodules(name, directory, budget, depth=0):
    """Every submodule below a package directory, by its files, in a stable order; at most `budget`.
    Returns (names, whether the budget cut the walk). Symlinks and non-identifiers are not followed."""
    found, cut = [], False
    if directory is None or depth >= MAX_DEPTH:
        return found, cut
    try:
        entries = sorted(os.listdir(directory))
    except OSError:
        return found, cut
    for entry in entries:
        # __main__ runs as `python -m`, not on import: importing it would start a command line.
        if entry == "__pycache__" or entry.startswith(("__init__.", "__main__.")):
            continue
        full = os.path.join(directory, entry)
        if os.path.islink(full):
            continue
        sub = module_of(directory, entry)
        if sub is None:
            continue
        if os.path.isdir(full) and not is_package(full):
            continue
        if len(found) >= budget:
            return found, True
        found.append(name + "." + sub)
        if os.path.isdir(full):
            below, cut = submodules(name + "." + sub, full, budget - len(found), depth + 1)
            found.extend(below)
            if cut:
                return found, True
    return found, cut


def plan(site, max_modules):
    """[(top module, distribution, [module, submodule, ...])], and whether the bound cut it. Every
    top-level module is planned before any submodule, so the bound cuts submodules first."""
    tops = modules(site)
    budget = max(0, max_modules - len(tops))
    groups, bound_hit = [], len(tops) > max_modules
    for module, dist, directory in tops[:max_modules]:
        subs, cut = submodules(module, directory, budget)
        budget -= len(subs)
        bound_hit = bound_hit or cut
        groups.append((module, dist, [module] + subs))
    return groups, bound_hit


def faketime_env(skew):
    """The environment that sets an application's clock `skew` seconds ahead, or None without libfaketime."""
    if skew <= 0:
        return {}
    lib = next((p for p in FAKETIME_LIBS if os.path.isfile(p)), None)
    if lib is None:
        return None
    # The monotonic clock stays real: sleeps and timeouts behave; only the wall clock is ahead.
    return {"LD_PRELOAD": lib, "FAKETIME": "+%d" % int(skew), "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def parent_of(pid):
    """ppid of a live process, or None when it is gone (or a zombie)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    return None if fields[0] in (b"Z", b"X") else int(fields[1])


def reap_others():
    """SIGKILL every process below this one, by pid, until none is left (bounded): a child that
    left its process group (setsid) survives killpg. One that left the tree altogether (a double
    fork) is re-parented to the supervisor, which kills it at once. Only descendants: a process of
    the supervisor's (its helper that drops to the sandbox user to kill) is never ours to touch.
    Only with --reap (the sandbox's import phase passes it)."""
    if "--reap" not in sys.argv:
        return
    me = os.getpid()
    for _ in range(50):
        parents = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != me:
                ppid = parent_of(int(entry))
                if ppid is not None:
                    parents[int(entry)] = ppid
        mine = []
        for pid in parents:
            seen, current = set(), parents.get(pid)
            while current is not None and current not in seen and current != me:
                seen.add(current)
                current = parents.get(current)
            if current == me:
                mine.append(pid)
        if not mine:
            return
        for pid in mine:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.02)


def read_progress(fd, deadline_of, state):
    """Reads `start|ok|fail <i>` lines from the pipe until `done`, EOF, or no progress in time.
    Returns "done", "eof" or "timeout". `state` keeps what was claimed (bounded)."""
    buffer = b""
    while True:
        remaining = deadline_of() - time.time()
        if remaining <= 0:
            return "timeout"
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return "eof"
        state["bytes"] += len(chunk)
        if state["bytes"] > MAX_PROGRESS_BYTES:
            return "eof"
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            parts = line.split(b" ")
            if parts == [b"done"]:
                return "done"
            if len(parts) != 2 or parts[0] not in (b"start", b"ok", b"fail") or not parts[1].isdigit() or len(parts[1]) > 9:
                continue
            state[parts[0].decode()](int(parts[1]))


def run_group(scratch, site, top, dist, names, limit, linger, clock):
    """Imports `names` (a top-level module and its submodules) as an application, restarting after a
    module that times out or crashes its process. Returns the process results and per-module outcome."""
    outcome = {}  # index -> "ok" | "failed" | "timed-out"
    results = []
    first = 0
    missing = "_%s_" % os.urandom(6).hex()
    while first < len(names):
        reap_others()
        app = tempfile.mkdtemp(dir=scratch)
        cache = os.path.join(app, ".cache")
        read_end, write_end = os.pipe()
        with open(os.path.join(app, "main.py"), "w") as f:
            f.write(MAIN.format(cache=cache, site=site, modules=names, missing=missing, fd=write_end, first=first,
                                linger=linger))
        with open(os.path.join(app, ".env"), "w") as f:
            f.write("".join("%s=%s\n" % item for item in clock.items()))
        current = {"index": None, "bytes": 0}
        last = {"at": time.time()}

        def start(i):
            # Progress only forward: a process repeating `start` cannot keep its deadline away, so
            # a group takes at most (modules + 1) x the limit.
            if first <= i < len(names) and i not in outcome and (current["index"] is None or i > current["index"]):
                current["index"] = i
                last["at"] = time.time()

        def finish(status):
            def mark(i):
                if first <= i < len(names) and i not in outcome:
                    outcome[i] = status
                    last["at"] = time.time()
            return mark

        state = {"bytes": 0, "start": start, "ok": finish("ok"), "fail": finish("failed")}
        started = time.time()
        child = subprocess.Popen(
            ["python3", "-I", "-S", "-B", "-c", LAUNCH, site, top, dist, app],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, pass_fds=(write_end,),
        )
        os.close(write_end)
        how = read_progress(read_end, lambda: last["at"] + limit, state)
        os.close(read_end)
        timed_out = how == "timeout"
        if how == "done":
            # Alive for the linger window, then its own normal exit (atexit handlers run).
            try:
                child.wait(timeout=linger + limit)
            except subprocess.TimeoutExpired:
                pass
        if child.poll() is None:
            # The whole tree while the child still holds it: a descendant in a session of its own
            # survives killpg, and once the child is gone it is no longer below us.
            reap_others()
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except OSError:
                pass
        child.wait()
        reap_others()
        shutil.rmtree(app, ignore_errors=True)
        results.append({"module": top, "distribution": dist or None, "exitCode": child.returncode, "timedOut": timed_out,
                        "seconds": round(time.time() - started, 3), "from": first})
        if how == "done":
            # Whatever the process never claimed it did not import.
            for i in range(first, len(names)):
                outcome.setdefault(i, "failed")
            break
        # Cut short (timeout, crash, a closed pipe): the module in progress is charged, the rest retried.
        stuck = current["index"]
        if stuck is None or stuck in outcome:
            stuck = next((i for i in range(first, len(names)) if i not in outcome), len(names))
        if stuck < len(names):
            outcome[stuck] = "timed-out" if timed_out else "failed"
        first = stuck + 1
        while first < len(names) and first in outcome:
            first += 1
    return results, outcome


def run_pth(site, dist, limit):
    started = time.time()
    child = subprocess.Popen(
        # -B: no bytecode written into the target; an import that writes there is fs.target-tamper.
        ["python3", "-I", "-S", "-B", "-c", PTH, site, ".pth", dist],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    timed_out = False
    try:
        child.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        reap_others()
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            pass
        child.wait()
    reap_others()
    return {"module": ".pth", "distribution": dist or None, "exitCode": child.returncode, "timedOut": timed_out,
            "seconds": round(time.time() - started, 3)}


def option(name, default, cast):
    if name in sys.argv:
        try:
            return cast(sys.argv[sys.argv.index(name) + 1])
        except (IndexError, ValueError):
            return default
    return default


def main():
    site, limit = sys.argv[1], float(sys.argv[2])
    linger = max(0.0, option("--linger", 2.0, float))
    max_modules = max(1, option("--max-modules", 2000, int))
    skew = max(0, option("--clock-skew", 0, int))
    clock = faketime_env(skew)
    owned = owners(site)
    pth = sorted(e for e in os.listdir(site) if e.endswith(".pth"))
    if pth:
        pth_owners = {owned.get(e, "") for e in pth}
        print(json.dumps(run_pth(site, pth_owners.pop() if len(pth_owners) == 1 else "", limit)), flush=True)
    groups, bound_hit = plan(site, max_modules)
    scratch = tempfile.mkdtemp()
    counts = {"planned": 0, "imported": 0, "failed": 0, "timedOut": 0}
    failed, timed_out, processes = [], [], 0
    try:
        for top, dist, names in groups:
            results, outcome = run_group(scratch, site, top, dist, names, limit, linger, clock or {})
            processes += len(results)
            for result in results:
                print(json.dumps(result), flush=True)
            counts["planned"] += len(names)
            for i, name in enumerate(names):
                status = outcome.get(i, "failed")
                key = {"ok": "imported", "failed": "failed", "timed-out": "timedOut"}[status]
                counts[key] += 1
                if status == "failed" and len(failed) < 100:
                    failed.append(name)
                elif status == "timed-out" and len(timed_out) < 100:
                    timed_out.append(name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    coverage = dict(counts, topLevel=len(groups), processes=processes, boundHit=bound_hit, maxModules=max_modules,
                    lingerSeconds=linger, clockSkewSeconds=skew if clock else 0, clockSkewUnavailable=clock is None,
                    failedModules=failed, timedOutModules=timed_out)
    print(json.dumps({"coverage": coverage}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
