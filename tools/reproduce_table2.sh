#!/usr/bin/env bash
# The main job, from a fresh clone: installs what is missing (tools/setup.sh), builds the CLI and
# runs `flexnn reproduce table2 --quick`: baseline and flexible fmnist-small networks trained on
# Fashion-MNIST, clean and FGSM accuracy beside the paper's Table 2 (a few minutes on two cores).
# Arguments replace --quick (e.g. `--epochs 20 --seeds 5`); see `build/bin/flexnn reproduce table2 --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh flexnn_cli
if (($# == 0)); then set -- --quick; fi
exec build/bin/flexnn reproduce table2 "$@"
