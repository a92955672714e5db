#!/usr/bin/env bash
# The main job, from a fresh clone: installs, builds and runs the flexnn demo. Arguments are passed
# to `flexnn demo` (see `build/bin/flexnn demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh flexnn_cli
exec build/bin/flexnn demo "$@"
