#!/usr/bin/env bash
# The test suite, from a fresh clone: installs, builds everything and runs every CTest test
# (Catch2 cases, the AddressSanitizer parser tests, the CLI tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
cd build
ctest --output-on-failure -j"$(nproc 2>/dev/null || echo 2)" "$@"
