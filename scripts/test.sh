#!/usr/bin/env bash
# The project's test command (`npm test`): installs what the tests need, then runs them all.
#  1. system pieces: Mesa's lavapipe (Vulkan on the CPU, for WebGPU through Dawn) and Chromium (browser
#     tests), via scripts/setup.sh, which changes nothing when they are present;
#  2. npm packages, when node_modules is missing or older than package-lock.json;
#  3. vitest: the node project (shared, main, worker, engine, end to end) and the jsdom project (renderer).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[test] installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi
started=$(date +%s)
npx vitest run "$@"
echo "[test] finished in $(( $(date +%s) - started )) s"
