/**
 * Imports follow the flow (DESIGN.md): each folder of src/ may import only the folders listed
 * here, so a stage never reaches back into a later one (observe/ never imports sandbox/ or
 * export/). Checked on every source and test file, not by review.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('..', import.meta.url));

/** Folder → the folders it may import (besides itself, and src/errors.ts which all may). */
const ALLOWED: Record<string, string[]> = {
  core: [],
  lock: ['core'],
  policy: ['core', 'lock'],
  proxy: ['core', 'lock'],
  runtime: ['core'],
  report: ['core'],
  observe: ['core', 'lock', 'policy'],
  export: ['core', 'lock'],
  sandbox: ['core', 'lock', 'policy', 'proxy', 'runtime'],
  workflows: ['core', 'lock', 'policy', 'proxy', 'runtime', 'report', 'observe', 'export', 'sandbox'],
  // Commands parse flags, call one workflow and render: no pipeline stage of their own (policy
  // check loads a policy; the logger redacts URLs the proxy's way).
  cli: ['core', 'policy', 'proxy', 'runtime', 'report', 'workflows'],
};

/** The back-edges in one file: imports of a src/ folder its own folder may not use. */
function backEdges(file: string, text: string): string[] {
  const folder = path.relative(SRC, file).split(path.sep)[0] ?? '';
  const allowed = new Set([folder, ...(ALLOWED[folder] ?? [])]);
  const found: string[] = [];
  for (const match of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const target = path.relative(SRC, path.resolve(path.dirname(file), match[1]!));
    if (target.startsWith('..')) continue; // outside src/ (tests importing fixtures)
    const into = target.split(path.sep)[0] ?? '';
    if (into === 'errors.js' || allowed.has(into)) continue;
    found.push(`${path.relative(SRC, file)} imports ${target}`);
  }
  return found;
}

function files(dir = SRC): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    return entry.isDirectory() ? files(file) : entry.name.endsWith('.ts') ? [file] : [];
  });
}

describe('folder boundaries', () => {
  it('every folder of src/ has a rule', () => {
    const folders = readdirSync(SRC, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect(folders.filter((f) => !(f in ALLOWED))).toEqual([]);
  });

  it('no file imports a folder its own folder may not use', () => {
    const checked = files().filter((file) => file !== fileURLToPath(import.meta.url));
    expect(checked.flatMap((file) => backEdges(file, readFileSync(file, 'utf8')))).toEqual([]);
  });

  it('catches a deliberate back-edge', () => {
    const file = path.join(SRC, 'observe', 'fixture.ts');
    expect(backEdges(file, "import type { SandboxSession } from '../sandbox/session.js';\nimport { finding } from '../core/finding.js';")).toEqual([
      'observe/fixture.ts imports sandbox/session.js',
    ]);
    expect(backEdges(path.join(SRC, 'export', 'x.ts'), "const m = await import('../observe/record.js');")).toEqual(['export/x.ts imports observe/record.js']);
  });
});
