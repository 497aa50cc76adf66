"""The import phase of `sandbox-install investigate`: import every top-level module of every
installed distribution, each in a process of its own, under the tracer, as the sandbox user.

usage: python3 -I -S importer.py <site-packages> <seconds per module>

The modules are what site-packages holds, not what a distribution says it holds: every package
directory, module file and extension at the top (a PEP 420 namespace directory stands for the
packages inside it). Each is credited to the distribution whose RECORD lists it, and imported as

    python3 -I -S -B -c <IMPORT> <site-packages> <module> <distribution>

so the trace shows whose import every process serves (observe/attribution.ts, importedBy). One
more child processes the .pth files, as an interpreter's start would, credited to their owner
when one distribution owns them all. A child that runs past its time is killed with its process
group; whatever escaped the group the supervisor kills when the phase ends.

Each result is one JSON line on stdout. Always exits 0: an import that fails is a fact about the
package, not a failure of the phase. Run with `python3 -I -S`; stdlib only.
"""

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

IMPORT = "import sys, importlib; sys.path.insert(0, sys.argv[1]); importlib.import_module(sys.argv[2])"
PTH = "import site, sys; site.addsitedir(sys.argv[1])"
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXTENSION = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\.[A-Za-z0-9_-]+)?\.so$")


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


def modules(site):
    """[(module, distribution or "")] in a stable order."""
    owned = owners(site)
    found = []
    for entry in sorted(os.listdir(site)):
        if entry == "__pycache__" or entry.endswith((".dist-info", ".data")):
            continue
        name = module_of(site, entry)
        if name is None:
            continue
        full = os.path.join(site, entry)
        if os.path.isdir(full) and not any(os.path.exists(os.path.join(full, "__init__" + s)) for s in (".py", ".pyc")):
            # A namespace directory: its own import runs nothing, the packages inside it do.
            for child in sorted(os.listdir(full)):
                sub = module_of(full, child)
                if sub is not None and child != "__pycache__":
                    found.append((name + "." + sub, owned.get(entry + "/" + child) or owned.get(entry, "")))
            continue
        found.append((name, owned.get(entry, "")))
    seen, unique = set(), []
    for item in found:
        if item[0] not in seen:
            seen.add(item[0])
            unique.append(item)
    return unique


def run(code, site, module, dist, limit):
    started = time.time()
    child = subprocess.Popen(
        # -B: no bytecode written into the target; an import that writes there is fs.target-tamper.
        ["python3", "-I", "-S", "-B", "-c", code, site, module, dist],
        # Nothing of the child's output is kept: it is the package's to fake, and unbounded.
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    timed_out = False
    try:
        child.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            pass
        child.wait()
    return {"module": module, "distribution": dist or None, "exitCode": child.returncode, "timedOut": timed_out,
            "seconds": round(time.time() - started, 3)}


def main():
    site, limit = sys.argv[1], float(sys.argv[2])
    owned = owners(site)
    pth = sorted(e for e in os.listdir(site) if e.endswith(".pth"))
    results = []
    if pth:
        pth_owners = {owned.get(e, "") for e in pth}
        results.append(run(PTH, site, ".pth", pth_owners.pop() if len(pth_owners) == 1 else "", limit))
    for module, dist in modules(site):
        results.append(run(IMPORT, site, module, dist, limit))
    for result in results:
        sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
