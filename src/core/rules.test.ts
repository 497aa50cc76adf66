import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CATALOGUE, familyOf, RULE_IDS, ruleTable } from './rules.js';

const SRC = fileURLToPath(new URL('..', import.meta.url));

/** Every non-test TypeScript source under src/, except the catalogue itself. */
function sources(dir = SRC): Array<{ file: string; text: string }> {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(file);
    if (!entry.name.endsWith('.ts') || entry.name.endsWith('.test.ts') || file.endsWith(path.join('core', 'rules.ts'))) return [];
    return [{ file, text: readFileSync(file, 'utf8') }];
  });
}

const FAMILIES = ['integrity', 'lock', 'network', 'fs', 'process', 'static', 'monitor', 'resource', 'install', 'policy', 'export'];

describe('the rule catalogue', () => {
  const code = sources();

  it('names every rule that a detector emits', () => {
    // finding('x.y', …), or `rule: 'x.y'` in a finding literal. (Error codes share the spelling but
    // are not findings: `policy.invalid` ends a run with exit 2, it is never judged.)
    const emitted = new Set<string>();
    for (const { text } of code) {
      for (const match of text.matchAll(/(?:finding\(\s*|rule: )'([a-z]+\.[a-z-]+)'/g)) emitted.add(match[1]!);
    }
    const ruleLike = [...emitted].filter((id) => FAMILIES.includes(id.slice(0, id.indexOf('.'))));
    expect(ruleLike.length).toBeGreaterThan(20);
    expect(ruleLike.filter((id) => !(id in CATALOGUE))).toEqual([]);
  });

  it('holds no rule that nothing can emit', () => {
    const unused = RULE_IDS.filter((id) => !code.some(({ text }) => text.includes(`'${id}'`)));
    expect(unused).toEqual([]);
  });

  it('gives every rule a known family, a description and help', () => {
    for (const id of RULE_IDS) {
      expect(FAMILIES, id).toContain(familyOf(id));
      expect(CATALOGUE[id].description.length, id).toBeGreaterThan(10);
      expect(CATALOGUE[id].help.length, id).toBeGreaterThan(10);
    }
  });
});

describe("the README's rule table", () => {
  it('is the catalogue, as ruleTable() renders it', () => {
    const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
    // On failure, paste ruleTable()'s output into the README's "What it catches".
    expect(readme).toContain(ruleTable());
  });
});
