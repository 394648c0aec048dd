#!/usr/bin/env bash
# Sets up the PyTorch engine's Python environment: a .venv in the repository with torch and numpy, and the
# tools its tests and lint use (pytest, jsonschema, ruff); python/pyproject.toml gives the version ranges. Idempotent: a .venv that already imports them is kept.
#  - Wheels on disk are preferred, offline: the folders in R2B_WHEEL_DIRS (colon-separated), else the
#    machine's local wheel folders when they exist. A CPU build of torch among them is taken over a CUDA one
#    (a third of the size, and what a machine without a GPU can use).
#  - Otherwise pip installs from its index (a user's machine: on Linux that is PyPI's CUDA build of torch).
# The workbench works without this: only the PyTorch engine needs it (`train --engine torch`).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '[setup-python] %s\n' "$*"; }

VENV=.venv
PY="$VENV/bin/python"
wanted() { "$PY" -c 'import torch, numpy, pytest, jsonschema' >/dev/null 2>&1 && [ -x "$VENV/bin/ruff" ]; }

if [ -x "$PY" ] && wanted; then
  say "$("$PY" -c 'import sys, torch; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}")') in $VENV; nothing to do."
  exit 0
fi

PYTHON=${R2B_PYTHON_FOR_VENV:-python3}
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  say "no $PYTHON found: the PyTorch engine needs Python >= 3.10 (the tfjs engine works without it)"
  exit 1
fi
[ -x "$PY" ] || { say "creating $VENV with $($PYTHON --version)"; "$PYTHON" -m venv "$VENV"; }

dirs=${R2B_WHEEL_DIRS:-/opt/wheels:/opt/pypi/files:/opt/pypi-more/files}
links=()
cpu_torch=""
IFS=: read -ra candidates <<<"$dirs"
for dir in "${candidates[@]}"; do
  [ -d "$dir" ] || continue
  links+=(--find-links "$dir")
  found=$(find "$dir" -maxdepth 1 -name 'torch-*+cpu-*.whl' | sort | tail -1)
  [ -n "$found" ] && cpu_torch=$found
done

if [ ${#links[@]} -gt 0 ] && [ -n "$cpu_torch" ]; then
  say "installing $(basename "$cpu_torch"), numpy, pytest, jsonschema and ruff from the wheels on disk (offline)"
  "$PY" -m pip install --quiet --disable-pip-version-check --no-index "${links[@]}" "$cpu_torch" 'numpy>=1.24,<3' pytest jsonschema ruff
else
  say "installing torch, numpy, pytest, jsonschema and ruff with pip"
  "$PY" -m pip install --quiet --disable-pip-version-check 'torch>=2.1,<3' 'numpy>=1.24,<3' pytest jsonschema ruff
fi
wanted || { say "the packages did not install into $VENV"; exit 1; }
say "ready: $("$PY" -c 'import sys, torch; print(f"Python {sys.version.split()[0]}, torch {torch.__version__}")')"
