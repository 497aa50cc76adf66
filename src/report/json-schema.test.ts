/** The checked-in report.schema.json is what the zod schema generates, and validates reports. */
import { readFile } from 'node:fs/promises';
// ajv is CommonJS: its named export is the class under both Node's ESM loader and TypeScript's nodenext.
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { emptyReport, reportJsonSchema } from './schema.js';

const ROOT = new URL('../../', import.meta.url);
const readJson = async (file: string): Promise<unknown> => JSON.parse(await readFile(new URL(file, ROOT), 'utf8'));
const STALE = (file: string) => `${file} is not what the zod schema generates: run \`npm run schemas\` and commit it`;

describe('the checked-in report JSON Schema', () => {
  it('report.schema.json is reportJsonSchema()', async () => {
    expect(await readJson('report.schema.json'), STALE('report.schema.json')).toEqual(reportJsonSchema());
  });

  it('report.schema.json is a draft-07 schema an empty report satisfies', async () => {
    const validate = new Ajv({ strict: false, allErrors: true }).compile((await readJson('report.schema.json')) as object);
    const report = emptyReport({ version: '0.1.0', lockfile: 'requirements.lock', policy: 'default', image: null });
    expect(validate(JSON.parse(JSON.stringify(report))), JSON.stringify(validate.errors)).toBe(true);
    expect(validate({ ...report, verdict: 'maybe' })).toBe(false);
  });

  it('is what every report names in $schema: a file shipped with the tool', () => {
    const report = emptyReport({ version: '0.1.0', lockfile: 'requirements.lock', policy: 'default', image: null });
    expect(report.$schema).toBe(new URL('report.schema.json', ROOT).href);
  });
});
