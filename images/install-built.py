"""The install phase of a run that built sdists: pip installs wheels only, the locked wheels as the
proxy verified them and the wheels the build phase made, each hash-checked.

usage: python3 -I -S install-built.py <wheel dir> <built pins.json> <base lock> -- <pip argv, ending in -r>

The build phase (`pip wheel`) left one wheel per built requirement in the wheel dir; their hashes
exist only now, so this writes the lock pip installs from: the base lock (every requirement that
was not built, with its locked hashes) and, for each built one, its pin with the sha256 of the
wheel(s) of that project in the wheel dir. Then it replaces itself with pip (execv: the same pid,
so the traced root is still pip's installer, the one process allowed to write the target), with
the derived lock's path as the last argument. pip finds the built wheels through `--find-links
<wheel dir>` and refuses anything else by hash. The derived lock is written into a directory made
here under a random name (/tmp/pip-built-*), so nothing a build left in /tmp can stand in for it.

Nothing of a package runs here: the build phase's processes are dead (the supervisor kills every
process of the sandbox user when a phase ends), and only this script and then pip run. A built
requirement with no wheel in the dir (its marker is false here) is left out. Run with
`python3 -I -S`; stdlib only.
"""

import hashlib
import json
import os
import re
import sys
import tempfile

WHEEL = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?)-[^-]+(?:-[^-]+)?-[^-]+-[^-]+-[^-]+\.whl$")


def normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main():
    if "--" not in sys.argv or sys.argv.index("--") != 4 or sys.argv[-1] != "-r":
        sys.stderr.write("usage: install-built.py <wheel dir> <built pins.json> <base lock> -- <pip argv, ending in -r>\n")
        return 2
    wheel_dir, pins_file, base_lock = sys.argv[1:4]
    pip = sys.argv[5:]
    with open(pins_file) as f:
        pins = json.load(f)
    wheels = {}
    for entry in sorted(os.listdir(wheel_dir)):
        match = WHEEL.match(entry)
        full = os.path.join(wheel_dir, entry)
        if match and os.path.isfile(full) and not os.path.islink(full):
            wheels.setdefault(normalize(match.group(1)), []).append(sha256(full))
    with open(base_lock) as f:
        lines = [f.read().rstrip("\n")]
    for pin in pins:
        hashes = wheels.get(pin["name"], [])
        if not hashes:
            # Its marker is false here (pip wheel skipped it), or the build left nothing: either way
            # pip must not fetch it any other way, and with --only-binary it cannot build it.
            sys.stderr.write("install-built: no wheel for %s in the wheel dir; not pinned\n" % pin["line"])
            continue
        lines.append(pin["line"] + "".join(" --hash=sha256:" + h for h in hashes))
    derived_lock = os.path.join(tempfile.mkdtemp(prefix="pip-built-", dir="/tmp"), "requirements.lock")
    with open(derived_lock, "x") as f:
        f.write("\n".join(line for line in lines if line) + "\n")
    sys.stdout.flush()
    os.execv(pip[0], pip + [derived_lock])


if __name__ == "__main__":
    sys.exit(main())
