#!/usr/bin/env bash
# Set up a fresh Debian machine for napari-heatseg: system libraries for Qt/OpenGL under
# Xvfb (GUI tests, screenshots) and the package with all its extras, editable.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends \
    xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0 libdbus-1-3 \
    libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 \
    libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libxcb-xkb1 \
    libfontconfig1 libxrender1 libxi6 >/dev/null
elif ! command -v Xvfb >/dev/null 2>&1; then
  echo "note: Xvfb is missing and apt-get is not usable; GUI tests will be skipped." >&2
fi

python -m pip install -q --upgrade pip
python -m pip install -q -e ".[all]"
