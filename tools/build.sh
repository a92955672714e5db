#!/usr/bin/env bash
# Installs what the build needs (tools/setup.sh), then configures and builds flexnn in build/
# (Release). Extra arguments are CMake targets; none builds everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
jobs=$(nproc 2>/dev/null || echo 2)
if (($# > 0)); then
  for target in "$@"; do cmake --build build -j"$jobs" --target "$target"; done
else
  cmake --build build -j"$jobs"
fi
