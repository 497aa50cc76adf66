/** Where things are inside the sandbox image (images/Dockerfile, images/supervisor.py). */
export const TARGET = '/opt/target';
/** The interpreter pip installs with and runs every build hook on: root-owned, empty, no user site. */
export const INSTALLER_PYTHON = '/opt/installer/bin/python';
/**
 * pip's own runner script (what `pip --python <interpreter>` re-executes pip with): the sandbox
 * runs `INSTALLER_PYTHON PIP_RUNNER …` directly, one interpreter start instead of two (about 0.5 s
 * under the tracer), and pip starts its build-requirement installs the same way.
 */
export const PIP_RUNNER = '/usr/lib/python3/dist-packages/pip/__pip-runner__.py';
/**
 * pip as its runner starts it, evaluating markers and Requires-Python for another patch release of
 * the image's interpreter (images/pip-as.py): `INSTALLER_PYTHON PIP_AS <X.Y.Z> …` in place of
 * `INSTALLER_PYTHON PIP_RUNNER …` when the run's target is not the image's own release.
 */
export const PIP_AS = '/opt/sandbox-install/pip-as.py';
export const SITE_PACKAGES = `${TARGET}/lib/python3.11/site-packages`;
/**
 * The most of an installed site-packages the host reads: entries, and bytes of file data. The
 * static scan and the export's extraction both stop there (a hostile archive may be endless); one
 * bound for both, so a tree the scan judged whole is one the export can hold. Large real stacks
 * (a deep-learning framework with its CUDA wheels) pass 4 GiB.
 */
export const INSTALLED_TREE_LIMITS = { maxFiles: 200_000, maxBytes: 8 * 1024 ** 3 } as const;
/** The unprivileged user's home: named like any Linux user's, not like a sandbox's. */
export const HOME = '/home/user';
export const SANDBOX_USER = 'user';
export const SANDBOX_UID = 1000;
export const STATE_DIR = '/var/lib/sandbox-install';
export const INPUT_MOUNT = '/input';
/** What the host copies into INPUT_MOUNT (root-owned, read-only to the sandbox user) before the run starts. */
export const INPUT_LOCK = `${INPUT_MOUNT}/requirements.lock`;
export const INPUT_PHASES = `${INPUT_MOUNT}/phases.json`;
/** The build phases' locks, one per locked sdist, each with its locked hashes: `<dir>/1.lock`, `<dir>/2.lock`, … */
export const INPUT_BUILD_LOCKS = `${INPUT_MOUNT}/build`;

/** The lock of the `i`th (0-based) locked sdist's build phase. */
export function buildLockPath(i: number): string {
  return `${INPUT_BUILD_LOCKS}/${i + 1}.lock`;
}
/** The built requirements' pins, for images/install-built.py to hash-pin to the wheels the build phase made. */
export const INPUT_BUILT_PINS = `${INPUT_MOUNT}/built-pins.json`;
export const RELAY_PORT = 3141;

/**
 * Where the build phase puts the wheels it builds from the locked sdists. Under /tmp/pip-*, where
 * pip keeps its own temp dirs, so the container diff counts it as pip's; who wrote into it is
 * checked from the trace (only pip's installer, in the build phase, may).
 */
export const WHEEL_DIR = '/tmp/pip-wheelhouse';

/**
 * Where the supervisor keeps each build phase's wheels once it has succeeded: copied out of
 * WHEEL_DIR into a root-owned dir the sandbox user can read and not change, before the next phase
 * starts. The install phase installs from here, and the wheelhouse exports from here, so no build
 * can rewrite what an earlier one built (a build that tries is fs.build-meddling).
 */
export const BUILT_DIR = '/var/lib/sandbox-built';

/** The prefix of pip's temp dirs in /tmp: a build phase's are removed before the next phase starts. */
export const PIP_TEMP_PREFIX = 'pip-';

/**
 * Where the resolve phase has pip write its report (`--report`). Under /tmp/pip-*, pip's own temp
 * dirs, like WHEEL_DIR. The sandbox user can write it too, so it is read back as hostile input.
 */
export const RESOLVE_REPORT = '/tmp/pip-resolve-report.json';
