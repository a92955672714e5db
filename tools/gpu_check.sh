#!/usr/bin/env bash
# The CUDA backend on a real NVIDIA GPU: builds flexnn natively with CUDA for the local GPU (no
# emulator), runs every `cuda` test on the GPU, runs the CUDA kernel microbenchmarks and, where
# `python3 -c "import torch"` works with CUDA, the same work in PyTorch for ratios. Writes JSON
# (and the logs) into OUTDIR (default gpu-results/). Aims to finish in under 8 minutes on an
# H100/H200-class GPU. See docs/benchmarks.md ("CUDA").
#
#   tools/gpu_check.sh [OUTDIR]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-gpu-results}" && cd "${1:-gpu-results}" && pwd)
build="$root/build-gpu"
export PATH="/usr/local/cuda/bin:$PATH"
cd "$root"

step() { echo "== $* ($(date +%T))"; }
status=0

step "GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt" || {
  echo "gpu_check: no NVIDIA GPU (nvidia-smi failed)" >&2
  exit 2
}

step "configure and build (CUDA native, architecture of this GPU)"
bash tools/setup.sh || echo "gpu_check: setup.sh could not install packages; trying the build anyway"
jobs=$(nproc 2>/dev/null || echo 8)
if ! cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFLEXNN_CUDA=ON -DFLEXNN_CUDA_EMU=OFF \
       -DCMAKE_CUDA_ARCHITECTURES=native -DFLEXNN_BUILD_BENCHMARKS=ON >"$out/configure.log" 2>&1 ||
   ! cmake --build "$build" -j"$jobs" --target test_cuda bench_cuda_ops >"$out/build.log" 2>&1; then
  echo "gpu_check: the build failed; see $out/configure.log and $out/build.log" >&2
  tail -30 "$out/build.log" >&2
  exit 1
fi

step "cuda tests on the GPU"
if ! "$build/bin/test_cuda" --reporter junit --out "$out/cuda_tests.xml" >"$out/cuda_tests.log" 2>&1; then
  status=1
  echo "gpu_check: some cuda tests failed (see $out/cuda_tests.xml)" >&2
fi
"$build/bin/test_cuda" --list-test-names-only 2>/dev/null | grep -c . >"$out/cuda_test_count.txt" || true

step "flexnn CUDA microbenchmarks"
"$build/bin/bench_cuda_ops" --json "$out/bench_cuda_flexnn.json" | tee "$out/bench_cuda_flexnn.txt" || status=1

if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  step "PyTorch, the same cases"
  python3 benchmarks/torch_cuda_ops.py --json "$out/bench_cuda_torch.json" | tee "$out/bench_cuda_torch.txt" ||
    status=1
  python3 benchmarks/compare_cuda.py "$out/bench_cuda_flexnn.json" "$out/bench_cuda_torch.json" \
    --json "$out/bench_cuda_ratios.json" | tee "$out/bench_cuda_ratios.txt" || status=1
else
  echo "gpu_check: PyTorch with CUDA not found; flexnn numbers only" | tee "$out/torch_missing.txt"
fi

step "done (status $status)"
exit $status
