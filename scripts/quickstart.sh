#!/usr/bin/env bash
# README command (a): from a fresh clone, install dependencies, make sure an engine runs, build the
# sandbox image (offline-capable: debootstrap when no registry answers) and run the main job on the
# bundled example lockfile against pip's configured index.
set -euo pipefail
cd "$(dirname "$0")/.."
npm ci --no-audit --no-fund
npm run build
bash scripts/ensure-engine.sh
node bin/sandbox-install.js image build
node bin/sandbox-install.js examples/requests.lock --report out/requests.report.json
