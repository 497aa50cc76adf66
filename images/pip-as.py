"""pip, evaluating markers and Requires-Python for another patch release of this interpreter.

usage: <installer python> pip-as.py <X.Y.Z> <pip argv...>

The export is used by the user's interpreter, not by the image's: a lock made on CPython 3.11.7
leaves out `async-timeout; python_full_version < "3.11.3"`, which the image's 3.11.2 would ask for
(and the proxy, holding pip to the lock, refuse). This runs the image's pip (Debian bookworm's
23.0.1) as pip's own `__pip-runner__.py` does (the same import redirection, the same sys.path[0]),
after making the three places pip reads the running interpreter's version read the target's:

- markers (`pip._vendor.packaging.markers.default_environment`, which `Marker.evaluate` calls for
  every Requires-Dist and requirement marker): python_full_version, python_version and
  implementation_version;
- a file's Requires-Python on the index page (`TargetPython.py_version_info`, which PackageFinder
  holds links to; only when no --python-version was given, so the wheel tags stay the interpreter's);
- a distribution's Requires-Python in the resolver (`RequiresPythonCandidate`, the "Python" node
  every Requires-Python requirement is held to).

Only the patch release may differ (the host refuses any other target before a container starts):
the wheel tags, the ABI and `python_version` are the interpreter's. pip's own subprocesses (the
build-environment installs of build requirements, the build hooks) run on the image's interpreter
for what it is: a build requirement is used by the interpreter that runs the build, which is this one.

Stdlib only; runs as the sandbox user under the tracer, in place of pip's runner.
"""

import re
import runpy
import sys
from importlib.machinery import PathFinder

# Where Debian's python3-pip lives (src/core/layout.ts PIP_RUNNER is its runner script).
PIP_SOURCES_ROOT = "/usr/lib/python3/dist-packages"
PIP_DIR = PIP_SOURCES_ROOT + "/pip"


class PipImportRedirectingFinder:
    """pip from PIP_SOURCES_ROOT and nothing else from there: `__pip-runner__.py`'s finder."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != "pip":
            return None
        spec = PathFinder.find_spec(fullname, [PIP_SOURCES_ROOT], target)
        assert spec, (PIP_SOURCES_ROOT, fullname)
        return spec


def parse_target(text, running):
    """(X, Y, Z) for `X.Y.Z`, or an error message: another major.minor than `running` is refused."""
    match = re.fullmatch(r"(\d{1,3})\.(\d{1,3})\.(\d{1,4})", text)
    if match is None:
        return None, "the target Python version must be X.Y.Z, not %r" % text
    version = tuple(int(part) for part in match.groups())
    if version[:2] != tuple(running[:2]):
        return None, "the target Python %s is not a %d.%d release, as this interpreter is" % (text, running[0], running[1])
    return version, None


def target_environment(environment, version):
    """The marker environment `environment` (the interpreter's) as the target's."""
    full = "%d.%d.%d" % version
    changed = dict(environment)
    changed["python_full_version"] = full
    changed["python_version"] = "%d.%d" % version[:2]
    changed["implementation_version"] = full
    return changed


def patch_pip(version):
    """Make pip's marker environment and Requires-Python checks use `version`."""
    from pip._vendor.packaging import markers
    from pip._internal.models import target_python
    from pip._internal.resolution.resolvelib import candidates

    interpreter_environment = markers.default_environment
    markers.default_environment = lambda: target_environment(interpreter_environment(), version)

    target_init = target_python.TargetPython.__init__

    def init_target_python(self, platforms=None, py_version_info=None, abis=None, implementation=None):
        target_init(self, platforms=platforms, py_version_info=py_version_info, abis=abis, implementation=implementation)
        if py_version_info is None:
            # _given_py_version_info stays None: the tags are the interpreter's.
            self.py_version_info = version

    target_python.TargetPython.__init__ = init_target_python

    candidate_init = candidates.RequiresPythonCandidate.__init__

    def init_python_candidate(self, py_version_info):
        candidate_init(self, version if py_version_info is None else py_version_info)

    candidates.RequiresPythonCandidate.__init__ = init_python_candidate


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: pip-as.py <X.Y.Z> <pip argv...>\n")
        return 2
    version, error = parse_target(sys.argv[1], sys.version_info)
    if error is not None:
        sys.stderr.write("pip-as.py: %s\n" % error)
        return 2
    sys.meta_path.insert(0, PipImportRedirectingFinder())
    # What pip sees as its script dir and argv, as under its runner.
    sys.path[0] = PIP_DIR
    sys.argv = [sys.argv[0]] + sys.argv[2:]
    patch_pip(version)
    runpy.run_module("pip", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
