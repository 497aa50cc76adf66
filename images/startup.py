"""The startup phase: the first interpreter start with the installed tree, watched like a build.

usage: python3 -I -S startup.py <site-packages> <seconds per start>

A user runs the exported tree in one of two ways, and each runs code before any import of theirs:

- as a site directory (a venv, a user site): site.py executes every `.pth` line that starts with
  `import`, adds every path line, and imports `sitecustomize` and `usercustomize`;
- on PYTHONPATH (the README's usage): every module the interpreter imports while it starts
  (`encodings`, `sitecustomize`, ...) is looked up there before the standard library.

So the interpreter is started twice, importing nothing beyond `site` (`-c pass`), as the sandbox
user, under the tracer, with the canaries planted: once with PYTHONUSERBASE pointing at the target
(its site-packages is then the user site, processed as a site directory, and no executable of the
target runs), once with the tree on PYTHONPATH. Whatever either does (network, writes, execs,
credential reads, a process left behind) is the phase's, and observe/ judges it like a build's.
This catches auto-run surfaces no static rule names.

Bytecode is not written (PYTHONDONTWRITEBYTECODE): the target's `__pycache__` would otherwise be
written by a process that is not pip's installer. Each start is killed with its process group after
its time. One JSON line per start on stdout; always exits 0: what a start does is a fact about the
packages, judged from the trace, not a failure of the phase. Run with `python3 -I -S`; stdlib only.
"""

import json
import os
import signal
import subprocess
import sys
import time

# The interpreter this runs on (`python3` from PATH): the one the target venv was made from.
PYTHON = sys.executable
# What a start inherits: the sandbox's environment (with the canary tokens), minus anything that
# would change how the interpreter starts; then each start's own.
DROPPED = ("PYTHON",)


def start(how, extra, seconds):
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED)}
    env.update(extra)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    began = time.time()
    child = subprocess.Popen([PYTHON, "-c", "pass"], env=env, cwd=os.environ.get("HOME", "/"),
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, start_new_session=True)
    timed_out = False
    try:
        _, err = child.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            pass
        _, err = child.communicate()
    return {"start": how, "exitCode": child.returncode, "timedOut": timed_out,
            "seconds": round(time.time() - began, 3),
            "stderr": err[-2000:].decode("utf-8", "backslashreplace")}


def main():
    # The starts' parent shows `-bash` (a login shell), not this script: a `.pth` payload reading
    # its parent's cmdline must not learn that a tool runs it (proctitle.py: no traced call past
    # importing ctypes); the tracer's execve record keeps the true argv.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import proctitle
        proctitle.disguise("-bash", "bash")
    except Exception:  # the phase runs, and is watched, either way
        pass
    finally:
        del sys.path[0]
    if len(sys.argv) != 3:
        sys.stderr.write("usage: startup.py <site-packages> <seconds per start>\n")
        return 0
    site, seconds = sys.argv[1], float(sys.argv[2])
    # site-packages is <base>/lib/python3.11/site-packages: the user base whose user site it is.
    base = os.path.dirname(os.path.dirname(os.path.dirname(site)))
    for how, extra in (("site-dir", {"PYTHONUSERBASE": base}), ("pythonpath", {"PYTHONPATH": site})):
        print(json.dumps(start(how, extra, seconds)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
