/**
 * Which wheels an interpreter can install, by the tags in their file names (PEP 425, PEP 600): the
 * tags `packaging.tags.sys_tags()` gives CPython on glibc Linux, computed here on the host so that
 * `lock` can list every wheel of a resolved version the sandbox's pip could have picked. Pure.
 */

/** A CPython on glibc Linux: the sandbox's interpreter and platform. */
export interface LinuxCPython {
  /** 3.11 → [3, 11]. */
  python: readonly [number, number];
  /** `platform.machine()`: x86_64, aarch64, … */
  machine: string;
  /** The C library's version: bookworm's glibc 2.36 → [2, 36]. */
  glibc: readonly [number, number];
}

/**
 * The image's C library: Debian bookworm's glibc 2.36 (images/Dockerfile, either base). A newer base
 * only means fewer manylinux wheels counted as installable than pip could take.
 */
export const SANDBOX_GLIBC = [2, 36] as const;

/** The image's interpreter in full: bookworm's python3.11 (either base is 3.11.2 or newer). A file's Requires-Python is held to it. */
export const SANDBOX_PYTHON_VERSION = '3.11.2';

/** The sandbox's interpreter and platform: CPython 3.11 on the host's machine (the image is built here). */
export function sandboxPython(arch: string = process.arch): LinuxCPython {
  const machine = ({ x64: 'x86_64', arm64: 'aarch64', ia32: 'i686', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[arch] ?? arch;
  return { python: [3, 11], machine, glibc: SANDBOX_GLIBC };
}

/** The manylinux tags named before PEP 600, as the glibc version each stands for. */
const LEGACY_MANYLINUX: Record<string, number> = { manylinux1: 5, manylinux2010: 12, manylinux2014: 17 };

/** The tag sets of a wheel's file name (`{name}-{ver}(-{build})?-{py}-{abi}-{plat}.whl`), or null when it is not one. */
export function wheelTags(filename: string): { python: string[]; abi: string[]; platform: string[] } | null {
  if (!filename.toLowerCase().endsWith('.whl')) return null;
  const parts = filename.slice(0, -4).split('-');
  if (parts.length !== 5 && parts.length !== 6) return null;
  const [python, abi, platform] = parts.slice(-3).map((field) => field.toLowerCase().split('.'));
  if (!python || !abi || !platform) return null;
  return { python, abi, platform };
}

function platformSupported(platform: string, target: LinuxCPython): boolean {
  const [glibcMajor, glibcMinor] = target.glibc;
  if (platform === `linux_${target.machine}`) return true;
  const pep600 = /^manylinux_(\d+)_(\d+)_(.+)$/.exec(platform);
  if (pep600) return pep600[3] === target.machine && Number(pep600[1]) === glibcMajor && Number(pep600[2]) <= glibcMinor;
  const legacy = /^(manylinux1|manylinux2010|manylinux2014)_(.+)$/.exec(platform);
  if (legacy) return legacy[2] === target.machine && glibcMajor === 2 && LEGACY_MANYLINUX[legacy[1]!]! <= glibcMinor;
  return false;
}

/** One python-abi-platform triple. */
function tagSupported(python: string, abi: string, platform: string, target: LinuxCPython): boolean {
  const [major, minor] = target.python;
  const cp = `cp${major}${minor}`;
  const any = platform === 'any';
  if (!any && !platformSupported(platform, target)) return false;
  if (abi === cp) return python === cp && !any;
  if (abi === 'abi3') {
    // The stable ABI of every CPython 3.2 up to this one (packaging: _abi3_applies).
    const version = new RegExp(`^cp${major}(\\d+)$`).exec(python);
    return !any && version !== null && Number(version[1]) >= 2 && Number(version[1]) <= minor;
  }
  if (abi !== 'none') return false;
  if (python === cp || python === `py${major}`) return true;
  const version = new RegExp(`^py${major}(\\d+)$`).exec(python);
  return version !== null && Number(version[1]) <= minor;
}

/** The target's pip could install this wheel: one of the triples its tag sets expand to is supported. */
export function wheelSupported(filename: string, target: LinuxCPython): boolean {
  const tags = wheelTags(filename);
  if (!tags) return false;
  return tags.python.some((python) => tags.abi.some((abi) => tags.platform.some((platform) => tagSupported(python, abi, platform, target))));
}
