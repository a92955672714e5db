#!/usr/bin/env bash
# Installs the Debian packages that flexnn's build, tests and default data set need.
# Idempotent: runs `apt-get update` only when a package is missing, and is fast when all are there.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libeigen3-dev libstb-dev catch2 libfmt-dev nlohmann-json3-dev zlib1g-dev libcli11-dev
  dataset-fashion-mnist
)
# Extra packages for the side-by-side benchmarks (PyTorch 1.13 on OpenBLAS): `tools/setup.sh --bench`.
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(python3-torch libopenblas0-pthread python3-numpy)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
