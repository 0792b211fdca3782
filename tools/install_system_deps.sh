#!/usr/bin/env bash
# System packages needed to build and check the docs offline (Debian/Ubuntu; run as root or with sudo).
#   chromium    headless browser for tests/test_docs.py screenshots
#   fonts-beng  Bangla fonts (Lohit Bengali, Mukti/Ani from fonts-beng-extra) so matplotlib plots and the
#               browser draw Bangla glyphs instead of boxes (bangla_data.plotting.use_bangla_font picks them up)
#   fonts-noto-color-emoji  emoji in the prose (e.g. 🤗) instead of boxes
#   fontconfig  fc-list/fc-match, used to find the fonts
#   make        `make docs`
# Idempotent: installs only what is missing, runs `apt-get update` at most once, does nothing if all is there.
set -euo pipefail

PKGS=(chromium fonts-beng fonts-noto-color-emoji fontconfig make)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install_system_deps.sh: not root and no sudo; install these yourself: ${PKGS[*]}" >&2; exit 1; fi
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_system_deps.sh: all present (${PKGS[*]})"
else
  echo "install_system_deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Refresh the font cache (cheap) and drop matplotlib's font list so it sees new fonts.
command -v fc-cache >/dev/null 2>&1 && fc-cache -f >/dev/null 2>&1 || true
rm -f "${MPLCONFIGDIR:-$HOME/.config/matplotlib}"/fontlist-*.json "$HOME"/.cache/matplotlib/fontlist-*.json 2>/dev/null || true

command -v chromium >/dev/null 2>&1 || { echo "install_system_deps.sh: chromium not on PATH after install" >&2; exit 1; }
fc-list :lang=bn family | grep -q . || { echo "install_system_deps.sh: no Bangla font found by fontconfig" >&2; exit 1; }
echo "install_system_deps.sh: ok ($(chromium --version 2>/dev/null | head -1); Bangla fonts: $(fc-list :lang=bn family | sort -u | tr '\n' ' '))"
