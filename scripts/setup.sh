#!/usr/bin/env bash
# Installs the system pieces the tests need on a machine without a GPU:
#  - Mesa's lavapipe (a Vulkan driver that runs on the CPU), so Dawn (the `webgpu` package) has an adapter.
#    Dawn rejects the lavapipe of Mesa 22 (Debian 12's own); Mesa 25 from bookworm-backports works.
#  - Chromium, which the browser tests drive through playwright-core (no browser download needed).
# Idempotent: anything already present is left alone. The app itself never needs this script: on a user's
# machine the GPU's own Vulkan/Metal/D3D driver serves WebGPU.
set -euo pipefail

LVP_ICD=/usr/share/vulkan/icd.d/lvp_icd.json
say() { printf '[setup] %s\n' "$*"; }

have_lavapipe() {
  [ -f "$LVP_ICD" ] || return 1
  local version
  version=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  # Dawn needs Mesa >= 25.
  [ -n "$version" ] && dpkg --compare-versions "$version" ge 25
}

have_chromium() { command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; }

if have_lavapipe && have_chromium; then
  say "lavapipe (Mesa $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)) and Chromium are installed; nothing to do."
  exit 0
fi

if [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
  cat <<'TXT'
[setup] This is not a Debian/Ubuntu system, so nothing was installed. The tests need:
  - a Vulkan driver that Dawn accepts: on a machine with a GPU, its vendor driver; without one, Mesa >= 25's
    lavapipe (point VK_ICD_FILENAMES at its lvp_icd.json, or set R2B_VK_ICD to that path);
  - Chromium or Chrome (set R2B_CHROMIUM to its path if it is not /usr/bin/chromium).
TXT
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    say "run this script as root (or install sudo): it installs Debian packages"; exit 1
  fi
fi

. /etc/os-release
if ! have_lavapipe; then
  if [ "${VERSION_CODENAME:-}" = "bookworm" ]; then
    list=/etc/apt/sources.list.d/bookworm-backports.list
    if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
      say "adding bookworm-backports to apt (Mesa 25's lavapipe lives there; Debian 12's Mesa 22 is too old for Dawn)"
      echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee "$list" >/dev/null
    fi
    say "installing mesa-vulkan-drivers from bookworm-backports (lavapipe: Vulkan on the CPU)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    say "installing mesa-vulkan-drivers (lavapipe: Vulkan on the CPU)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
  have_lavapipe || say "warning: lavapipe installed is older than Mesa 25; Dawn may reject it"
fi

if ! have_chromium; then
  say "installing Chromium (browser tests drive it through playwright-core)"
  [ -n "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -newer /etc/hostname 2>/dev/null | head -1)" ] || $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

say "done: lavapipe $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers), $(chromium --version 2>/dev/null || echo 'chromium missing')"
