#!/usr/bin/env node
// Writes the JSON Schemas generated from the zod schemas: policies/schema.json and report.schema.json.
// Run after `npm run build` (npm run schemas does both); unit tests fail when the checked-in copies are stale.
import { writeFileSync } from 'node:fs';
import { policyJsonSchema } from '../dist/policy/schema.js';
import { reportJsonSchema } from '../dist/report/schema.js';

const root = new URL('../', import.meta.url);
writeFileSync(new URL('policies/schema.json', root), JSON.stringify(policyJsonSchema(), null, 2) + '\n');
writeFileSync(new URL('report.schema.json', root), JSON.stringify(reportJsonSchema(), null, 2) + '\n');
