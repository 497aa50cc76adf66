/**
 * The exported tree's import roots, and the rules about what Python finds through them.
 *
 * A root is a directory Python imports top-level modules from: site-packages itself, and every
 * directory a top-level `.pth` path line puts on sys.path, as CPython 3.11's `site.addpackage`
 * reads the file (lines split at \n, \r or \r\n; a line starting with `#`, blank once stripped, or
 * starting with `import ` / `import\t` is no path; the rest is right-stripped with Python's
 * `str.rstrip`, joined to the site dir, normalised lexically, and appended when it exists and is
 * not on sys.path already). Only directories inside site-packages are roots; a line that leaves
 * it is `static.pth-path` (static-scan.ts), and so is one that reaches outside through a symlink,
 * names a file (Python imports from a file on sys.path as a zip archive, which this scan does
 * not open) or comes past `MAX_ROOTS`.
 *
 * `.pth` files inside a root are not read: `addpackage` appends a path line to sys.path, and only
 * a site dir (`addsitedir`) has its `.pth` files processed, so site.py never opens them.
 *
 * Rules applied to every root, each finding's path relative to site-packages and, for a root
 * other than site-packages, the root and the `.pth` that added it in its evidence; attributed to
 * the file's RECORD owner, or failing that to the `.pth`'s:
 * - `static.startup-hook`: `sitecustomize` / `usercustomize` as a top-level module of any suffix,
 *   a package `__init__`, or a symlink that may be a package directory. `import sitecustomize`
 *   searches all of sys.path, so one in a `.pth`-added directory runs at every start too.
 * - `static.stdlib-shadowing`: a top-level module or package named like a standard-library module
 *   (`sys.stdlib_module_names` of CPython 3.11, stdlib-names.ts). With the export on PYTHONPATH
 *   (the README's usage) site-packages comes before the standard library, so `import json` runs
 *   the package's `json`. A `.pth`-added directory comes after it, yet still provides the module
 *   wherever the interpreter lacks it: Debian ships tkinter, distutils, lib2to3 and venv as
 *   separate packages, and optional extensions (`_sqlite3`, `_ssl`, `readline`) exist only when
 *   they were built. Builtin and frozen names (`sys`, `os`) cannot be shadowed on a stock 3.11,
 *   but no honest package takes them, and `-X frozen_modules=off` would import it. Nothing in
 *   the standard library has a reason to be installed from a wheel for Python 3.11, so the name
 *   alone is the finding: backports for older Pythons are findings too.
 * - `static.import-shadowing` (shadowing.ts): within each root, and across roots for top-level
 *   names (the first root on sys.path wins).
 */
import path from 'node:path';
import { finding, type Finding } from '../core/finding.js';
import { moduleOf, shadowingFindings, type RootView } from './shadowing.js';
import type { ScannedFile } from './static-scan.js';
import { STDLIB_MODULE_NAMES } from './stdlib-names.js';

export interface ImportRoot {
  /** Relative to site-packages, resolved through the archive's symlinks; `''` for site-packages itself. */
  dir: string;
  /** The top-level `.pth` whose path line adds it; null for site-packages. */
  pth: string | null;
  /** That `.pth`'s owning distribution: the fallback owner of what the root holds. */
  pthOwner: string | null;
}

/** Where a path inside site-packages leads once the archive's symlinks are followed. */
export type Resolution = { path: string } | { reason: string };

export interface RootsInput {
  /** Every safe entry, owners known. */
  files: ScannedFile[];
  /** The kept text of a top-level file (the `.pth` files), or null when none was kept. */
  text: (rel: string) => string | null;
  /** Resolve a normalised relative path through the archive's symlinks, as the kernel would. */
  resolve: (rel: string) => Resolution;
}

/**
 * Directories added through `.pth` files that the scan checks; past them a `.pth` is reported.
 * Real `.pth` files add one to three (pywin32 adds three); none of the 967 wheels of this
 * machine's mirror adds any.
 */
export const MAX_ROOTS = 64;
const MAX_EVIDENCE_LINES = 3;
const MAX_LINE_CHARS = 200;

/** The evidence value of site-packages itself as a root. */
export const SITE_ROOT = '.';

/** A character Python's `str.isspace` accepts: what `str.strip` and `str.rstrip` remove. */
const PY_SPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

/** Python's `str.rstrip()`, in one pass from the end (a regex anchored at the end backtracks on long lines). */
function pyRstrip(line: string): string {
  let end = line.length;
  while (end > 0 && PY_SPACE.test(line.charAt(end - 1))) end -= 1;
  return line.slice(0, end);
}

/** The path lines of a `.pth` as `site.addpackage` joins them to the site dir, in file order. */
export function pthPathLines(pth: string): string[] {
  const lines: string[] = [];
  for (const raw of pth.split(/\r\n|\r|\n/)) {
    if (raw.startsWith('#') || raw.startsWith('import ') || raw.startsWith('import\t')) continue;
    const line = pyRstrip(raw);
    // `line.strip() == ""` skips a line that is all whitespace: nothing is left once right-stripped.
    if (line !== '') lines.push(line);
  }
  return lines;
}

/**
 * A path line's place relative to site-packages: `outside` for an absolute line, one climbing out
 * with `..`, or one holding NUL (judged outside rather than guessed at); else the lexically
 * normalised path (`''` for site-packages itself), as `os.path.abspath` makes it.
 */
export function pthLinePlace(line: string): { outside: true } | { outside: false; rel: string } {
  if (line.startsWith('/') || line.includes('\0')) return { outside: true };
  const normal = path.posix.normalize(line).replace(/\/+$/, '');
  if (normal === '..' || normal.startsWith('../')) return { outside: true };
  return { outside: false, rel: normal === '.' || normal === '' ? '' : normal };
}

/** Sort as Python's `sorted` sorts str: by code point (UTF-8 byte order is code point order). */
function byCodePoint(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The import roots in sys.path order (site-packages first, then each `.pth` in sorted name order,
 * its lines in file order), and the `static.pth-path` findings for in-site lines that are not a
 * directory Python would import from as one.
 */
export function importRoots(input: RootsInput): { roots: ImportRoot[]; findings: Finding[] } {
  const roots: ImportRoot[] = [{ dir: '', pth: null, pthOwner: null }];
  const findings: Finding[] = [];
  const byPath = new Map(input.files.map((f) => [f.path, f]));
  let directories: Set<string> | null = null;
  const isDirectory = (rel: string): boolean => {
    // Directories the archive lists, and any it implies by holding something beneath them.
    directories ??= new Set(
      input.files.flatMap((f) => {
        const parts = f.path.split('/');
        const implied = parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
        return f.type === 'directory' ? [...implied, f.path] : implied;
      }),
    );
    return directories.has(rel);
  };
  const known = new Set<string>(['']);
  const pths = input.files.filter((f) => f.type === 'file' && !f.path.includes('/') && f.path.endsWith('.pth')).sort((a, b) => byCodePoint(a.path, b.path));

  for (const pth of pths) {
    const report = (message: string, lines: string[], reason: string): void => {
      findings.push(
        finding(
          'static.pth-path',
          'high',
          `${pth.path} ${message}`,
          { path: pth.path, entries: lines.slice(0, MAX_EVIDENCE_LINES).map((line) => line.slice(0, MAX_LINE_CHARS)), reason },
          pth.owner,
        ),
      );
    };
    const escaping: string[] = [];
    let escapeReason = '';
    const files: string[] = [];
    const unchecked: string[] = [];
    for (const line of pthPathLines(input.text(pth.path) ?? '')) {
      const place = pthLinePlace(line);
      if (place.outside) continue; // static.pth-path, from the scan's own check
      const resolved = input.resolve(place.rel);
      if ('reason' in resolved) {
        escapeReason ||= resolved.reason;
        escaping.push(line);
        continue;
      }
      const dir = resolved.path;
      if (known.has(dir)) continue;
      const entry = byPath.get(dir);
      if (entry && entry.type !== 'directory') {
        // site.py appends anything that exists; zipimport then reads it as an archive.
        if (entry.type === 'file') files.push(line);
        continue;
      }
      if (!isDirectory(dir)) continue; // site.py skips a path that does not exist
      if (roots.length > MAX_ROOTS) {
        unchecked.push(line);
        continue;
      }
      known.add(dir);
      roots.push({ dir, pth: pth.path, pthOwner: pth.owner });
    }
    if (escaping.length > 0)
      report(`puts ${escaping[0] ?? ''} on sys.path, which does not resolve inside site-packages (${escapeReason})`, escaping, escapeReason);
    if (files.length > 0)
      report(`puts the file ${files[0] ?? ''} on sys.path: Python imports from it as a zip archive, which the scan does not open`, files, 'file');
    if (unchecked.length > 0) report(`adds more directories to sys.path than the scan checks (${MAX_ROOTS})`, unchecked, 'too many directories');
  }
  return { roots, findings };
}

const STARTUP_HOOK = /^(?:sitecustomize|usercustomize)(?:\.[^/]+|\/__init__\.[^/]+)$/;
const STARTUP_NAMES = new Set(['sitecustomize', 'usercustomize']);
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

interface RootFile {
  file: ScannedFile;
  /** Relative to the root. */
  rel: string;
}

/** The files a root holds, with their path relative to it. */
function filesOf(root: ImportRoot, files: ScannedFile[]): RootFile[] {
  if (root.dir === '') return files.map((file) => ({ file, rel: file.path }));
  const prefix = `${root.dir}/`;
  return files.filter((f) => f.path.startsWith(prefix)).map((file) => ({ file, rel: file.path.slice(prefix.length) }));
}

/**
 * The top-level module a root-relative path provides, with its rank among forms (shadowing.ts), or
 * null. A bare symlink counts as a package (rank 0): it may point at a package directory, whose
 * `__init__` the archive lists under another name.
 */
function topLevelModule(rel: string, type: ScannedFile['type']): { module: string; rank: number } | null {
  if (type === 'directory') return null;
  if (type === 'symlink' && IDENTIFIER.test(rel)) return { module: rel, rank: 0 };
  const form = moduleOf(rel);
  return form && !form.module.includes('.') ? form : null;
}

/**
 * Startup hooks, standard-library names and import shadowing in every root. `roots` is in
 * sys.path order, site-packages first.
 */
export function rootFindings(roots: ImportRoot[], files: ScannedFile[]): Finding[] {
  const hooks: Finding[] = [];
  const stdlib: Finding[] = [];
  const views: RootView[] = [];
  for (const root of roots) {
    const rootFiles = filesOf(root, files);
    const via = root.pth === null ? {} : { root: root.dir, pth: root.pth };
    const where = root.pth === null ? '' : ` (${root.pth} puts ${root.dir} on sys.path)`;
    const ownerOf = (file: ScannedFile): string | null => file.owner ?? root.pthOwner;

    // static.startup-hook
    for (const { file, rel } of rootFiles) {
      const bareLink = file.type === 'symlink' && STARTUP_NAMES.has(rel);
      if (file.type === 'directory' || !(STARTUP_HOOK.test(rel) || bareLink)) continue;
      hooks.push(finding('static.startup-hook', 'high', `${file.path} runs at every interpreter start${where}`, { path: file.path, ...via }, ownerOf(file)));
    }

    // static.stdlib-shadowing: one finding per name and root, for the form Python picks (the
    // lowest rank), whose code is what would run.
    //
    // A PEP 420 namespace directory (no `__init__`) named like the standard library is left out:
    // Python uses a namespace portion only when no regular module of that name is anywhere on
    // sys.path, and the standard library's own is, so it shadows nothing; and wheels ship plain
    // data directories (`html/`, `email/` templates) that a namespace rule would fire on. Its
    // submodules are unreachable too: a regular package looks only in its own directory.
    const winners = new Map<string, { file: ScannedFile; rank: number }>();
    for (const { file, rel } of rootFiles) {
      const form = topLevelModule(rel, file.type);
      if (!form || !STDLIB_MODULE_NAMES.has(form.module)) continue;
      const best = winners.get(form.module);
      if (!best || form.rank < best.rank) winners.set(form.module, { file, rank: form.rank });
    }
    for (const [module, { file }] of winners) {
      stdlib.push(
        finding(
          'static.stdlib-shadowing',
          'high',
          `${file.path} takes the standard library's module name ${module}${where}: an import of ${module} can run it instead`,
          { path: file.path, module, root: root.pth === null ? SITE_ROOT : root.dir, ...(root.pth === null ? {} : { pth: root.pth }) },
          ownerOf(file),
        ),
      );
    }

    views.push({
      root: root.pth === null ? SITE_ROOT : root.dir,
      pth: root.pth,
      files: rootFiles.map(({ file, rel }) => ({ path: file.path, rel, type: file.type, owner: ownerOf(file) })),
    });
  }
  return [...hooks, ...stdlib, ...shadowingFindings(views)];
}
