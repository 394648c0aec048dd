#!/usr/bin/env bash
# The R2B Workbench GPU kit: the tfjs engine on WebGPU and the PyTorch engine on CUDA, side by side, on this
# machine, from this folder alone (no network, nothing installed). See README.md.
#   ./run.sh [--dry] [--out DIR] [--budget SECONDS] [--widths a,b] [--batch N] [--only part,part] [--keep-work]
#   --dry: every part at small sizes (a few minutes on a CPU machine with lavapipe): proves the kit runs.
# Writes DIR/results.json and DIR/summary.md (default DIR: results/<time> in this folder, if writable).
# Environment: R2B_PYTHON (a Python with torch and numpy; default the first python3/python that has them),
#   R2B_KIT_WORK (where to unpack; default a new folder under $TMPDIR, removed at the end),
#   R2B_KIT_VULKAN_LOADER=auto|kit|system (Vulkan loader and glvnd libraries: the kit's only where the machine
#   has none (auto), always the kit's, or never), VK_DRIVER_FILES / VK_ICD_FILENAMES (kept when set).
set -uo pipefail

KIT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
say() { printf '[kit] %s\n' "$*" >&2; }

OUT=""
KEEP=0
DRY=0
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --keep-work) KEEP=1; shift ;;
    --dry) DRY=1; ARGS+=("$1"); shift ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done

STAMP="$(date -u +%Y%m%dT%H%M%SZ)$([ "$DRY" = 1 ] && echo -dry)"
if [ -z "$OUT" ]; then
  if [ -w "$KIT" ]; then OUT="$KIT/results/$STAMP"; else OUT="${TMPDIR:-/tmp}/r2b-kit-results-$STAMP"; fi
fi
mkdir -p "$OUT" || { say "cannot write $OUT"; exit 1; }
OUT="$(cd "$OUT" && pwd -P)"

WORK=""
cleanup() { [ "$KEEP" = 1 ] || [ -z "$WORK" ] || rm -rf "$WORK"; }
trap 'cleanup; exit 130' INT TERM

# The kit could not start its program: say why where the results would be, then stop.
fail() {
  local why
  why="$(printf '%s' "$1" | tr -d '"\\' | tr '\n' ' ')"
  printf '{"mode": "%s", "error": "%s", "parts": {}}\n' "$([ "$DRY" = 1 ] && echo dry || echo real)" "$why" \
    >"$OUT/results.json"
  printf '# R2B Workbench GPU kit\n\nThe kit could not start: %s\n' "$why" >"$OUT/summary.md"
  say "$why"
  cleanup
  exit 1
}

# unpack SRC DEST: .xz or .gz, with xz/gzip, else with Python's lzma/gzip modules.
unpack() {
  local src="$1" dest="$2" module py
  case "$src" in
    *.xz) command -v xz >/dev/null 2>&1 && { xz -dc "$src" >"$dest"; return; }; module=lzma ;;
    *.gz) command -v gzip >/dev/null 2>&1 && { gzip -dc "$src" >"$dest"; return; }; module=gzip ;;
    *) return 1 ;;
  esac
  py="$(command -v python3 || command -v python)" || return 1
  "$py" -c "import $module, shutil, sys; shutil.copyfileobj($module.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
    "$src" "$dest"
}

NODE_PACKED="$(ls "$KIT"/runtime/node.* 2>/dev/null | head -1)"
DAWN_PACKED="$(ls "$KIT"/runtime/dawn.node.* 2>/dev/null | head -1)"
[ -n "$NODE_PACKED" ] && [ -n "$DAWN_PACKED" ] || fail "runtime/node.* or runtime/dawn.node.* is missing from the kit"

# The work folder, where Node and the addon are unpacked: R2B_KIT_WORK, else a new folder under $TMPDIR, else
# (a /tmp mounted noexec, say) under this folder or $HOME. The first where the kit's Node runs is taken.
NODE_VERSION="not tried"
try_work() {
  WORK="$(cd "$1" && pwd -P)" || return 1
  mkdir -p "$WORK/bin" || return 1
  unpack "$NODE_PACKED" "$WORK/bin/node" || { NODE_VERSION="cannot unpack $NODE_PACKED (needs xz, gzip or Python 3)"; return 1; }
  chmod +x "$WORK/bin/node"
  NODE_VERSION="$("$WORK/bin/node" --version 2>&1)"
}
if [ -n "${R2B_KIT_WORK:-}" ]; then
  KEEP=1
  mkdir -p "$R2B_KIT_WORK" && try_work "$R2B_KIT_WORK" || fail "the kit's Node does not run from $R2B_KIT_WORK: $NODE_VERSION"
else
  ok=0
  for base in "${TMPDIR:-/tmp}" "$KIT" "${HOME:-}"; do
    [ -n "$base" ] && [ -d "$base" ] && [ -w "$base" ] || continue
    dir="$(mktemp -d "$base/r2b-kit.XXXXXX")" || continue
    if try_work "$dir"; then ok=1; break; fi
    say "the kit's Node does not run from $base: $NODE_VERSION"
    rm -rf "$dir"
    WORK=""
  done
  [ "$ok" = 1 ] ||
    fail "the kit's Node does not run on this machine ($(uname -sm); glibc $(getconf GNU_LIBC_VERSION 2>/dev/null)): $NODE_VERSION"
fi
say "kit $KIT, unpacked into $WORK"
rm -rf "$WORK/app"
cp -R "$KIT/app" "$WORK/app" || fail "cannot copy $KIT/app into $WORK"
mkdir -p "$WORK/app/node_modules/webgpu/dist/linux-x64"
unpack "$DAWN_PACKED" "$WORK/app/node_modules/webgpu/dist/linux-x64/dawn.node" || fail "cannot unpack $DAWN_PACKED"

# --- Vulkan: the loader, the glvnd libraries NVIDIA's driver links against, the driver's ICD file --------------
LDCONFIG="$(command -v ldconfig || { [ -x /sbin/ldconfig ] && echo /sbin/ldconfig; } || true)"
# Is a 64-bit library of this soname where the dynamic loader looks (its cache, LD_LIBRARY_PATH, the usual dirs)?
have_lib() {
  local name="$1" dir dirs
  if [ -n "$LDCONFIG" ] && "$LDCONFIG" -p 2>/dev/null | awk -v n="$name" '$1 == n && /x86-64/ { f = 1 } END { exit !f }'; then
    return 0
  fi
  IFS=: read -ra dirs <<<"${LD_LIBRARY_PATH:-}"
  for dir in ${dirs[@]+"${dirs[@]}"} /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib64 /usr/lib64; do
    [ -n "$dir" ] && [ -e "$dir/$name" ] && return 0
  done
  return 1
}
MODE="${R2B_KIT_VULKAN_LOADER:-auto}"
LINKED=""
mkdir -p "$WORK/lib"
if [ "$MODE" != system ] && [ -d "$KIT/lib/fallback" ]; then
  for lib in "$KIT"/lib/fallback/lib*.so.*; do
    [ -e "$lib" ] || continue
    name="$(basename "$lib")"
    if [ "$MODE" = kit ] || ! have_lib "$name"; then
      ln -sf "$lib" "$WORK/lib/$name"
      LINKED="$LINKED $name"
    fi
  done
fi
EXTRA_LD=""
NV_LIB=""
if have_lib libGLX_nvidia.so.0; then
  NV_LIB=libGLX_nvidia.so.0
else
  for dir in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu/nvidia/current /usr/lib64/nvidia; do
    if [ -e "$dir/libGLX_nvidia.so.0" ]; then
      NV_LIB="$dir/libGLX_nvidia.so.0"
      EXTRA_LD=":$dir"
      break
    fi
  done
fi
NOTE=""
if [ -n "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  NOTE="driver files set by the caller: ${VK_DRIVER_FILES:-${VK_ICD_FILENAMES:-}}"
else
  STANDARD=""
  for file in /etc/vulkan/icd.d/*nvidia*.json /usr/local/share/vulkan/icd.d/*nvidia*.json /usr/share/vulkan/icd.d/*nvidia*.json; do
    [ -e "$file" ] && STANDARD="$file"
  done
  OTHER=""
  for file in /usr/local/nvidia/share/vulkan/icd.d/*.json /usr/local/nvidia/icd.d/*.json /etc/nvidia/vulkan/icd.d/*.json; do
    [ -e "$file" ] && { OTHER="$file"; break; }
  done
  if [ -n "$STANDARD" ]; then
    NOTE="NVIDIA driver file $STANDARD, where the loader looks"
  elif [ -n "$OTHER" ]; then
    export VK_DRIVER_FILES="$OTHER" VK_ICD_FILENAMES="$OTHER"
    NOTE="NVIDIA driver file outside the loader's search path: VK_DRIVER_FILES=$OTHER"
  elif [ -n "$NV_LIB" ]; then
    mkdir -p "$WORK/icd.d"
    printf '{"file_format_version": "1.0.1", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' "$NV_LIB" \
      >"$WORK/icd.d/nvidia_icd.json"
    export VK_DRIVER_FILES="$WORK/icd.d/nvidia_icd.json" VK_ICD_FILENAMES="$WORK/icd.d/nvidia_icd.json"
    NOTE="no NVIDIA driver file on this machine: the kit wrote one for $NV_LIB"
  else
    NOTE="no NVIDIA Vulkan driver (libGLX_nvidia.so.0) found: the loader's default drivers"
  fi
fi
say "Vulkan: ${NOTE}; libraries from the kit:${LINKED:- none}"

# --- Python: the machine's, with torch and numpy; the engine's package from the kit -----------------------------
PY="${R2B_PYTHON:-}"
if [ -z "$PY" ]; then
  for candidate in python3 python; do
    path="$(command -v "$candidate" 2>/dev/null)" || continue
    if "$path" -c 'import torch, numpy' >/dev/null 2>&1; then PY="$path"; break; fi
  done
  [ -n "$PY" ] || PY="$(command -v python3 || true)"
fi
say "Python: ${PY:-none} (the PyTorch parts report their own error without torch)"

export R2B_KIT_DIR="$KIT" R2B_KIT_WORK="$WORK" R2B_HOME="$WORK/home"
export R2B_WASM_DIR="$WORK/app/wasm/" R2B_DEPLOY_WASM="$WORK/app/wasm/binary-conv.wasm"
export PYTHONPATH="$KIT/python/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONPYCACHEPREFIX="$WORK/pycache" PYTHONUNBUFFERED=1
export LD_LIBRARY_PATH="$WORK/lib$EXTRA_LD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export R2B_KIT_LINKED_LIBS="${LINKED# }" R2B_KIT_VULKAN_NOTE="$NOTE"
[ -n "$PY" ] && export R2B_PYTHON="$PY"
unset NODE_OPTIONS NODE_PATH R2B_BACKEND

say "Node $NODE_VERSION; results in $OUT"
cd "$WORK" || fail "cannot enter $WORK"
"$WORK/bin/node" "$WORK/app/r2b-kit.mjs" run --out "$OUT" ${ARGS[@]+"${ARGS[@]}"}
STATUS=$?
cleanup
exit "$STATUS"
