/**
 * The interpreter an install is for. Markers and Requires-Python are evaluated for the Python that
 * will use the export, not for the image's: `--python-version X.Y.Z`, else the host's `python3.11`
 * (the user's), else the image's own. A target of another major.minor than the image's is refused
 * before any container; one that differs only in its patch release is the sandbox pip's to
 * evaluate for (images/pip-as.py, SandboxSession's pipArgv).
 */
import { execa } from 'execa';
import { EnvironmentError, InputError } from '../errors.js';
import { sandboxPython } from '../lock/wheel-tags.js';
import { imagePython, PYTHON_RELEASE } from '../runtime/image.js';
import type { ContainerClient } from '../runtime/port.js';

/** Where the target came from: the option, the host's python3.11, or (neither) the image itself. */
export type TargetSource = 'option' | 'host' | 'image';

export interface PythonTarget {
  /** `3.11.7`; null only when there is neither an option nor a host python3.11 and the image's version is unknown. */
  target: string | null;
  source: TargetSource;
  /** The image's interpreter, from its label (runtime/image.ts); null when the image is not labelled. */
  image: string | null;
}

/** What the host's interpreter is asked: its version, stdlib only. */
const PRINT_VERSION = 'import platform; print(platform.python_version())';
/** A python3.11 that does not answer in this long is taken as missing. */
const DETECT_TIMEOUT_MS = 10_000;

/** The version of the host's `python3.11` (run with `-I -S`), or null when there is none that answers. */
export async function hostPython311(signal?: AbortSignal): Promise<string | null> {
  const result = await execa('python3.11', ['-I', '-S', '-c', PRINT_VERSION], {
    reject: false,
    timeout: DETECT_TIMEOUT_MS,
    stdin: 'ignore',
    ...(signal ? { cancelSignal: signal } : {}),
  });
  signal?.throwIfAborted();
  if (result.exitCode !== 0) return null;
  const printed = String(result.stdout).trim();
  return PYTHON_RELEASE.test(printed) ? printed : null;
}

/** The image's major.minor (3.11): the only one a target may have (its site-packages is python3.11's). */
function imageMinor(): string {
  return sandboxPython().python.join('.');
}

/**
 * The target before any container: the option, else the host's python3.11. A target of another
 * major.minor than the image's is refused here: bad input for the option (exit 2), the machine's
 * for a detected one (exit 3). `imageVersion`, the image's full version when it is known, is named
 * in the refusal.
 */
export async function chooseTarget(
  requested: string | undefined,
  detect: () => Promise<string | null>,
  imageVersion: () => Promise<string | null>,
): Promise<{ target: string | null; source: TargetSource }> {
  const source: TargetSource = requested !== undefined ? 'option' : 'host';
  const target = requested ?? (await detect());
  if (target === null) return { target: null, source: 'image' };
  const minor = imageMinor();
  if (!PYTHON_RELEASE.test(target)) throw new InputError('python.target-invalid', `--python-version ${target}: give a full release, X.Y.Z (${minor}.7)`);
  if (target.split('.').slice(0, 2).join('.') !== minor) {
    const image = (await imageVersion().catch(() => null)) ?? minor;
    const message =
      source === 'option'
        ? `the target Python ${target} (--python-version) is not a ${minor} release: the sandbox image runs Python ${image}, and markers and Requires-Python can be evaluated only for another ${minor}.N; nothing was started`
        : `the host's python3.11 says it is Python ${target}, not a ${minor} release as the sandbox image's Python ${image} is; nothing was started`;
    const hint = `install for a Python ${minor} (--python-version ${minor}.N, the release the export will run on), or lock and install for ${minor} with a ${minor} interpreter`;
    throw source === 'option'
      ? new InputError('python.target-unsupported', message, { hint })
      : new EnvironmentError('python.target-unsupported', message, { hint });
  }
  return { target, source };
}

/** The image's version from its label, never failing: an engine that cannot say leaves it unknown. */
export function labelledPython(engine: ContainerClient, image: string): Promise<string | null> {
  return imagePython(engine, image).catch(() => null);
}

/** The whole target once the image is known: a missing target is the image's own version. */
export function withImage(chosen: { target: string | null; source: TargetSource }, image: string | null): PythonTarget {
  return { target: chosen.target ?? image, source: chosen.source, image };
}

/**
 * The version pip in the sandbox is to evaluate for, or null when that is the image's own (pip
 * then runs as it is). An unlabelled image with a known target goes through the launcher too: it
 * holds pip to the target whatever the image's release is.
 */
export function pipTarget(python: PythonTarget): string | null {
  if (python.target === null || python.target === python.image) return null;
  return python.target;
}
