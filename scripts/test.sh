#!/usr/bin/env bash
# The project's test command (`npm test`): installs what the tests need, then runs them all.
#  1. system pieces: Mesa's lavapipe (Vulkan on the CPU, for WebGPU through Dawn) and Chromium (browser
#     tests), via scripts/setup.sh, which changes nothing when they are present;
#  2. the PyTorch engine's .venv (scripts/setup-python.sh: offline from wheels on disk when there are some);
#     and, on Debian as root, a single-node Slurm cluster (scripts/setup-slurm.sh);
#  3. npm packages, when node_modules is missing or older than package-lock.json;
#  4. vitest: the node project (shared, main, worker, engine, end to end) and the jsdom project (renderer),
#     then the engine's tests again on WebGPU;
#  5. pytest: the PyTorch engine (python/tests), conformance with the tfjs engine included.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/setup-python.sh
# A single-node Slurm cluster where it can be set up (Debian, as root): the launch test submits a real job.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && bash scripts/setup-slurm.sh; then
  export R2B_TEST_SLURM=1
else
  echo "[test] no Slurm here: the launch test runs the job's torchrun script directly instead of sbatch"
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[test] installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi
started=$(date +%s)
npx vitest run "$@"
if [ $# -eq 0 ]; then
  # The engine's tests once more on WebGPU (Dawn; lavapipe here): the same assertions on the GPU code path.
  # The whole-chain training test stays on wasm (lavapipe takes minutes per stage); webgpu.test.ts trains
  # a tiny teacher → binary student on WebGPU.
  echo "[test] engine tests on WebGPU"
  R2B_TEST_BACKEND=webgpu npx vitest run test/unit/main/engine \
    --exclude test/unit/main/engine/training.test.ts --exclude test/unit/main/engine/webgpu.test.ts
fi
if [ $# -eq 0 ]; then
  echo "[test] the PyTorch engine (pytest)"
  (cd python && ../.venv/bin/python -m pytest -q)
fi
echo "[test] finished in $(( $(date +%s) - started )) s"
