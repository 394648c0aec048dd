#!/usr/bin/env bash
# The PyTorch engine's lint and format check (ruff, from the .venv that scripts/setup-python.sh makes).
set -euo pipefail
cd "$(dirname "$0")/.."
RUFF=.venv/bin/ruff
if [ ! -x "$RUFF" ]; then
  echo "[lint] no $RUFF: run \`bash scripts/setup-python.sh\` first (npm test does)" >&2
  exit 1
fi
cd python && "../$RUFF" check src tests && "../$RUFF" format --check src tests
