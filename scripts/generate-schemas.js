#!/usr/bin/env node
// Writes the JSON Schemas generated from the zod schemas: policies/schema.json and report.schema.json,
// and the sandbox's seccomp profile made from the engine's default (images/seccomp/sandbox.json).
// Run after `npm run build` (npm run schemas does both); unit tests fail when the checked-in copies are stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { knownGoodJsonSchema, policyJsonSchema } from '../dist/policy/schema.js';
import { reportJsonSchema } from '../dist/report/schema.js';
import { ENGINE_DEFAULT_PROFILE, SANDBOX_PROFILE, renderProfile, tightenProfile } from '../dist/runtime/seccomp.js';

const root = new URL('../', import.meta.url);
writeFileSync(new URL('policies/schema.json', root), JSON.stringify(policyJsonSchema(), null, 2) + '\n');
writeFileSync(new URL('policies/known-good.schema.json', root), JSON.stringify(knownGoodJsonSchema(), null, 2) + '\n');
writeFileSync(new URL('report.schema.json', root), JSON.stringify(reportJsonSchema(), null, 2) + '\n');
writeFileSync(SANDBOX_PROFILE, renderProfile(tightenProfile(JSON.parse(readFileSync(ENGINE_DEFAULT_PROFILE, 'utf8')))));
