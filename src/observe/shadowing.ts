/**
 * Import-name shadowing: two locked distributions that provide the same importable name, where
 * Python's import system picks one over the other. `pkg/mod/__init__.py` of one distribution
 * beside another's `pkg/mod.py` (or `x/__init__.py` beside `x.py`) makes `import pkg.mod` run the
 * first one's code, and no path is claimed twice, so the RECORD check cannot see it.
 *
 * Precedence is CPython 3.11's FileFinder on Linux: a directory with an `__init__` wins, then
 * extension modules (`.cpython-311-*.so`, `.abi3.so`, `.so`), then `.py`, then a sourceless `.pyc`.
 * Namespace portions (PEP 420: a directory with no `__init__`) never shadow anything and share
 * freely. The distribution whose file wins is the one the finding names: its code is what runs.
 *
 * Each import root (import-roots.ts: site-packages, and the directories `.pth` files add) is
 * judged on its own, module names relative to it. Across roots, a top-level name is looked up
 * root by root in sys.path order and the first root holding a module of that name wins. Deeper
 * names across roots are not compared: a regular package's submodules are looked up only in its
 * own directory (one root), and a namespace package spanning roots is not modelled.
 */
import { finding, type Finding } from '../core/finding.js';
import type { ScannedFile } from './static-scan.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Suffix and its rank among module forms (lower wins); the package form is rank 0. */
const SUFFIXES: Array<[RegExp, number]> = [
  [/\.cpython-311-[^/.]+\.so$/, 1],
  [/\.abi3\.so$/, 1.1],
  [/\.so$/, 1.2],
  [/\.py$/, 2],
  [/\.pyc$/, 3],
];

/** A root and its files, as shadowing judges them. */
export interface RootView {
  /** The root as evidence gives it (`.` for site-packages). */
  root: string;
  /** The `.pth` that added it; null for site-packages. */
  pth: string | null;
  files: Array<{
    /** Relative to site-packages: what evidence names. */
    path: string;
    /** Relative to the root: what the module name comes from. */
    rel: string;
    type: ScannedFile['type'];
    owner: string | null;
  }>;
}

interface ModuleForm {
  /** Dotted module name. */
  module: string;
  rank: number;
  path: string;
  owner: string;
}

/** The dotted module a path relative to an import root provides, and its rank, or null when it provides none. */
export function moduleOf(rel: string): { module: string; rank: number } | null {
  const parts = rel.split('/');
  const leaf = parts.pop() ?? '';
  if (!parts.every((part) => IDENTIFIER.test(part) && part !== '__pycache__')) return null;
  for (const [suffix, rank] of SUFFIXES) {
    const match = suffix.exec(leaf);
    if (!match) continue;
    const stem = leaf.slice(0, match.index);
    if (!IDENTIFIER.test(stem)) return null;
    if (stem === '__init__') {
      if (parts.length === 0) return null;
      return { module: parts.join('.'), rank: 0 };
    }
    return { module: [...parts, stem].join('.'), rank };
  }
  return null;
}

/** Each module name a root provides, with every owned form of it. */
function modulesOf(view: RootView): Map<string, ModuleForm[]> {
  const byModule = new Map<string, ModuleForm[]>();
  for (const file of view.files) {
    if ((file.type !== 'file' && file.type !== 'symlink') || file.owner === null) continue;
    const form = moduleOf(file.rel);
    if (!form) continue;
    const owned: ModuleForm = { ...form, path: file.path, owner: file.owner };
    const forms = byModule.get(form.module);
    if (forms) forms.push(owned);
    else byModule.set(form.module, [owned]);
  }
  return byModule;
}

function bestOf(forms: ModuleForm[]): ModuleForm {
  return forms.reduce((best, form) => (form.rank < best.rank ? form : best));
}

/** `views` in sys.path order, site-packages first. */
export function shadowingFindings(views: RootView[]): Finding[] {
  const findings: Finding[] = [];
  const seen = new Set<string>();
  const report = (module: string, winner: ModuleForm, form: ModuleForm, where: Record<string, unknown>): void => {
    // Overlapping roots (site-packages and a directory inside it) see one pair of files under two names.
    const key = `${winner.path}\0${form.owner}\0${form.path}`;
    if (seen.has(key)) return;
    seen.add(key);
    findings.push(
      finding(
        'static.import-shadowing',
        'high',
        `${winner.path} of ${winner.owner} shadows ${form.path} of ${form.owner}: importing ${module} runs ${winner.owner}'s code`,
        { module, path: winner.path, shadowed: form.owner, shadowedPath: form.path, ...where },
        winner.owner,
      ),
    );
  };

  /** Per root, the form of each top-level module that wins there. */
  const topLevel: Array<{ view: RootView; winners: Map<string, ModuleForm> }> = [];
  for (const view of views) {
    const winners = new Map<string, ModuleForm>();
    for (const [module, forms] of modulesOf(view)) {
      const winner = bestOf(forms);
      if (!module.includes('.')) winners.set(module, winner);
      if (new Set(forms.map((f) => f.owner)).size < 2) continue;
      const shadowed = new Map<string, ModuleForm>();
      for (const form of forms) if (form.owner !== winner.owner && !shadowed.has(form.owner)) shadowed.set(form.owner, form);
      for (const form of shadowed.values()) report(module, winner, form, view.pth === null ? {} : { root: view.root, pth: view.pth });
    }
    topLevel.push({ view, winners });
  }

  // Across roots: the first root on sys.path that holds the name wins the import.
  const first = new Map<string, { view: RootView; winner: ModuleForm }>();
  for (const { view, winners } of topLevel) {
    for (const [module, form] of winners) {
      const earlier = first.get(module);
      if (!earlier) first.set(module, { view, winner: form });
      else if (earlier.winner.owner !== form.owner) report(module, earlier.winner, form, { root: earlier.view.root, shadowedRoot: view.root });
    }
  }
  return findings;
}
