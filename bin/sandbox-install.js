#!/usr/bin/env node
// dist/cli/main.mjs is dist/cli/index.js and its dependencies bundled by `npm run build` (scripts/bundle.mjs).
import { main } from '../dist/cli/main.mjs';

process.exitCode = await main(process.argv);
