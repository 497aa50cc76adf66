#!/usr/bin/env bash
# README command (a): from a fresh clone, install dependencies, make sure an engine runs, build the
# sandbox image (offline-capable: debootstrap when no registry answers), install what the tests need
# from the machine, and run the main job on the bundled example lockfile against pip's configured index.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
npm run build
bash scripts/ensure-engine.sh
# What `npm test` (README command b) needs from the machine: the fixtures' build wheels, debootstrap.
bash scripts/ensure-test-deps.sh
node bin/sandbox-install.js image build
node bin/sandbox-install.js examples/requests.lock --report out/requests.report.json
