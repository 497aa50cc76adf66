/**
 * The checked-in policies/schema.json is what the zod schema generates, and an editor that validates with
 * them (draft-07, as VS Code does) accepts every preset and refuses what loading refuses.
 */
import { readFile } from 'node:fs/promises';
// ajv is CommonJS: its named export is the class under both Node's ESM loader and TypeScript's nodenext.
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { PRESETS } from './load.js';
import { knownGoodJsonSchema, policyJsonSchema } from './schema.js';

const ROOT = new URL('../../', import.meta.url);
const readJson = async (file: string): Promise<unknown> => JSON.parse(await readFile(new URL(file, ROOT), 'utf8'));
const STALE = (file: string) => `${file} is not what the zod schema generates: run \`npm run schemas\` and commit it`;

// `format: date` needs ajv-formats, which we do not depend on; the schema's own pattern checks the date.
const compile = async (file: string) => new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile((await readJson(file)) as object);

describe('the checked-in policy JSON Schema', () => {
  it('policies/schema.json is policyJsonSchema()', async () => {
    expect(await readJson('policies/schema.json'), STALE('policies/schema.json')).toEqual(policyJsonSchema());
  });

  it('policies/known-good.schema.json is knownGoodJsonSchema(), and accepts the shipped known-good.json', async () => {
    expect(await readJson('policies/known-good.schema.json'), STALE('policies/known-good.schema.json')).toEqual(knownGoodJsonSchema());
    const json = (await readJson('policies/known-good.json')) as Record<string, unknown>;
    expect(json.$schema).toBe('./known-good.schema.json');
    const validate = await compile('policies/known-good.schema.json');
    expect(validate(json), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ pth: [{ name: 'x.pth', sha256: 'NOTHEX' }] })).toBe(false);
  });
});

describe('policies/schema.json in an editor', () => {
  it.each(PRESETS)('accepts the %s preset, which names the schema', async (preset) => {
    const json = (await readJson(`policies/${preset}.json`)) as Record<string, unknown>;
    expect(json.$schema).toBe('./schema.json');
    const validate = await compile('policies/schema.json');
    expect(validate(json), JSON.stringify(validate.errors)).toBe(true);
  });

  it('refuses an unknown rule id at its key', async () => {
    const validate = await compile('policies/schema.json');
    expect(validate({ extends: 'default', rules: { 'network.dnz': 'fail', 'network.dns': 'warn' } })).toBe(false);
    expect(validate.errors?.map((e) => [e.instancePath, e.keyword, e.propertyName ?? (e.params as { propertyName?: string }).propertyName])).toEqual([
      ['/rules', 'enum', 'network.dnz'],
      ['/rules', 'propertyNames', 'network.dnz'],
    ]);
  });

  it('refuses an unknown action, an unknown key and a malformed date', async () => {
    const validate = await compile('policies/schema.json');
    expect(validate({ rules: { 'network.*': 'block' } })).toBe(false);
    expect(validate.errors?.map((e) => [e.instancePath, e.keyword])).toEqual([['/rules/network.*', 'enum']]);
    expect(validate({ failOn: ['network.*'] })).toBe(false);
    expect(validate.errors?.map((e) => [e.instancePath, e.keyword, e.params])).toEqual([['', 'additionalProperties', { additionalProperty: 'failOn' }]]);
    expect(validate({ suppressions: [{ rule: 'network.dns', package: 'six', reason: 'r', expires: '2025-02-30' }] })).toBe(false);
    expect(validate.errors?.map((e) => [e.instancePath, e.keyword])).toEqual([['/suppressions/0/expires', 'pattern']]);
    expect(
      validate({ suppressions: [{ rule: 'network.dns', package: 'six', reason: 'r', evidence: { name: 'x.test', pid: 11 }, expires: '2025-02-28' }] }),
    ).toBe(true);
  });
});
