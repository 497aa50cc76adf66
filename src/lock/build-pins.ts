/**
 * Build requirements pinned like the lock: for each project pip needs in an isolated build
 * environment to build the lock's sdists (setuptools, wheel, hatchling, …), one version and the
 * sha256 of each file it may use. They come from the policy's `build.allow` entries that name a
 * version and sha256, and from the file next to the lock, `<lock>.build.txt`, which `lock` and
 * `wheelhouse` write for the build requirements they resolved. That file is a requirements file
 * with hashes: pip reads it (`pip download --require-hashes -r`), and so do people.
 *
 * A pinned build requirement is served like a locked file: its page lists only the pinned files,
 * they are fetched before any container, and nothing else of that project is ever asked upstream.
 */
import { readFile } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { normalizeName } from './normalize.js';
import { parseLock } from './parse.js';
import { renderPin } from './pin.js';

export interface BuildPin {
  /** PEP 503 normalised. */
  name: string;
  version: string;
  /** Lowercase hex; at least one. */
  sha256: string[];
}

/** `requirements.lock` → `requirements.lock.build.txt`: beside the lock, named after it. */
export function buildPinsPath(lockfile: string): string {
  return `${lockfile}.build.txt`;
}

/**
 * The pins in the file beside `lockfile`, or none when there is no such file. Anything in it but
 * `name==version --hash=sha256:…` lines is refused (exit 2): an index URL, a pip option, an
 * extra or a marker would say more than which file may build the lock.
 */
export async function readBuildPins(lockfile: string): Promise<{ file: string; pins: BuildPin[] } | null> {
  const file = buildPinsPath(lockfile);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new InputError('lock.unreadable', `${file}: cannot read the lock's build pins (${(error as Error).message})`, { cause: error });
  }
  return { file, pins: parseBuildPins(text, file) };
}

/** Pure: the pins of a build-pins file's text. */
export function parseBuildPins(text: string, file: string): BuildPin[] {
  const plan = parseLock(text, file);
  if (plan.indexUrl !== null || plan.extraIndexUrls.length > 0 || plan.pipOptions.given.length > 0) {
    throw new InputError('lock.invalid', `${file}: a build-pins file holds only name==version --hash=sha256:… lines, no options`);
  }
  for (const req of plan.requirements) {
    if (req.marker !== null || req.extras.length > 0) {
      throw new InputError('lock.invalid', `${file}:${req.line}: a build pin has no extras and no marker: write ${req.name}==${req.version} with its hashes`);
    }
  }
  return plan.requirements.map((req) => ({ name: req.name, version: req.version, sha256: req.sha256 }));
}

/** One pin per name and version, with every sha256 any list gave it, sorted by name then version. */
export function mergeBuildPins(...lists: BuildPin[][]): BuildPin[] {
  const byKey = new Map<string, BuildPin>();
  for (const pin of lists.flat()) {
    const name = normalizeName(pin.name);
    const key = `${name}\0${pin.version}`;
    const shas = byKey.get(key)?.sha256 ?? [];
    byKey.set(key, { name, version: pin.version, sha256: [...new Set([...shas, ...pin.sha256.map((s) => s.toLowerCase())])].sort() });
  }
  return [...byKey.values()].sort((a, b) => (a.name === b.name ? a.version.localeCompare(b.version) : a.name.localeCompare(b.name)));
}

/** The file's text: a comment header (each line gets `# `), then one hashed pin per line, sorted. */
export function renderBuildPins(pins: BuildPin[], header: string[]): string {
  const lines = header.map((line) => `# ${line}`.trimEnd());
  for (const pin of mergeBuildPins(pins)) {
    const head = renderPin({ name: pin.name, rawName: pin.name, version: pin.version, extras: [], marker: null, sha256: pin.sha256, line: 0 });
    lines.push([head, ...pin.sha256.map((sha) => `    --hash=sha256:${sha}`)].join(' \\\n'));
  }
  return `${lines.join('\n')}\n`;
}

/** What the proxy may serve as build requirements in one run: pinned ones, and unpinned names (the opt-in). */
export interface BuildRequirements {
  pins: BuildPin[];
  /** Normalised names, none of them pinned. */
  unpinned: string[];
}

/**
 * A run's build requirements: none when it builds nothing (wheels need none, and a request for
 * one is then refused like any unlocked name); else the lock's build pins and the policy's, and
 * the policy's unpinned names that neither pins.
 */
export function buildRequirementsFor(policyBuild: { allow: string[]; pins: BuildPin[] }, lockPins: BuildPin[], building: boolean): BuildRequirements {
  if (!building) return { pins: [], unpinned: [] };
  const pins = mergeBuildPins(policyBuild.pins, lockPins);
  const pinned = new Set(pins.map((pin) => pin.name));
  return { pins, unpinned: policyBuild.allow.filter((name) => !pinned.has(normalizeName(name))) };
}

/** The first line of every build-pins file this tool writes: how a stale one is known as ours. */
export const BUILD_PINS_TITLE = 'Build requirements, pinned by sandbox-install';

/** A build-pins file's header lines, for renderBuildPins. */
export function buildPinsHeader(lockName: string, writtenBy: string): string[] {
  return [
    `${BUILD_PINS_TITLE} ${writtenBy}.`,
    `What pip needed to build the sdists of ${lockName}. sandbox-install reads this file beside that`,
    'lock and serves a build these files, and no other file of these projects. To fetch them yourself:',
    `   pip download --no-deps --require-hashes -r ${lockName}.build.txt`,
  ];
}
