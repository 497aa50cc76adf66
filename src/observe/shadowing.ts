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

interface ModuleForm {
  /** Dotted module name. */
  module: string;
  rank: number;
  path: string;
  owner: string;
}

/** The importable module a site-packages file provides, or null when it provides none. */
export function moduleForm(file: Pick<ScannedFile, 'path' | 'owner'>): ModuleForm | null {
  if (file.owner === null) return null;
  const parts = file.path.split('/');
  const leaf = parts.pop() ?? '';
  if (!parts.every((part) => IDENTIFIER.test(part) && part !== '__pycache__')) return null;
  for (const [suffix, rank] of SUFFIXES) {
    const match = suffix.exec(leaf);
    if (!match) continue;
    const stem = leaf.slice(0, match.index);
    if (!IDENTIFIER.test(stem)) return null;
    if (stem === '__init__') {
      if (parts.length === 0) return null;
      return { module: parts.join('.'), rank: 0, path: file.path, owner: file.owner };
    }
    return { module: [...parts, stem].join('.'), rank, path: file.path, owner: file.owner };
  }
  return null;
}

export function shadowingFindings(files: ScannedFile[]): Finding[] {
  const byModule = new Map<string, ModuleForm[]>();
  for (const file of files) {
    if (file.type !== 'file' && file.type !== 'symlink') continue;
    const form = moduleForm(file);
    if (!form) continue;
    const forms = byModule.get(form.module);
    if (forms) forms.push(form);
    else byModule.set(form.module, [form]);
  }
  const findings: Finding[] = [];
  for (const [module, forms] of byModule) {
    if (new Set(forms.map((f) => f.owner)).size < 2) continue;
    const winner = forms.reduce((best, form) => (form.rank < best.rank ? form : best));
    const shadowed = new Map<string, ModuleForm>();
    for (const form of forms) if (form.owner !== winner.owner && !shadowed.has(form.owner)) shadowed.set(form.owner, form);
    for (const [owner, form] of shadowed) {
      findings.push(
        finding(
          'static.import-shadowing',
          'high',
          `${winner.path} of ${winner.owner} shadows ${form.path} of ${owner}: importing ${module} runs ${winner.owner}'s code`,
          { module, path: winner.path, shadowed: owner, shadowedPath: form.path },
          winner.owner,
        ),
      );
    }
  }
  return findings;
}
