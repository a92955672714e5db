#!/usr/bin/env bash
# Runs the CPU op benchmarks side by side: bench_cpu_ops (flexnn) and torch_cpu_ops.py (PyTorch),
# alternating whole runs `--rounds` times with the same thread count, keeps each case's best median
# per framework, prints a markdown table of GFLOP/s and flexnn/PyTorch ratios (higher is better),
# and writes everything to BUILD_DIR/bench/cpu_ops.json. See docs/benchmarks.md.
#
#   benchmarks/run_cpu_ops.sh [--threads 2] [--rounds 2] [--build-dir build] [--filter S] [--quick] [--breakdown]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
threads=2
rounds=2
build_dir=build
extra=()
while (($#)); do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --build-dir) build_dir=$2; shift 2 ;;
    --filter) extra+=(--filter "$2"); shift 2 ;;
    --quick | --breakdown) extra+=("$1"); shift ;;
    -h | --help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "run_cpu_ops.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$build_dir" = /* ]] || build_dir="$root/$build_dir"

python=/usr/bin/python3
if ! "$python" -c 'import torch' 2>/dev/null; then
  echo "run_cpu_ops.sh: PyTorch is missing for $python; run 'bash tools/setup.sh --bench'" >&2
  exit 2
fi

if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
  cmake -S "$root" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$build_dir" --target bench_cpu_ops -j "$threads" >/dev/null

# Both frameworks get the same thread count, whichever pool or BLAS ends up doing the work.
export FLEXNN_NUM_THREADS=$threads OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads
out="$build_dir/bench"
mkdir -p "$out"
# Other work on the machine skews both frameworks (OpenMP's spinning barriers most). The CPU time
# all processes used during the rounds, less the benchmarks' own, measures it (/proc/stat ticks).
cpu_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }
ticks_before=$(cpu_ticks)
for ((r = 1; r <= rounds; r++)); do
  echo "== round $r/$rounds: flexnn" >&2
  "$build_dir/bin/bench_cpu_ops" --threads "$threads" --json "$out/flexnn_$r.json" "${extra[@]}" >&2
  echo "== round $r/$rounds: PyTorch" >&2
  "$python" "$root/benchmarks/torch_cpu_ops.py" --threads "$threads" --json "$out/torch_$r.json" "${extra[@]}" >&2
done

ticks_after=$(cpu_ticks)

"$python" - "$out" "$rounds" "$threads" $ticks_before $ticks_after <<'EOF'
import json
import os
import sys

out, rounds, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
busy_before, total_before, busy_after, total_after = (int(v) for v in sys.argv[4:8])
# How often each convolution shape occurs in the paper's VGG16 (for the whole-network row).
VGG16_LAYERS = {"conv_b1_3to64": 1, "conv_b1_64to64_flex": 1, "conv_b2_64to128": 1, "conv_b2_128": 1,
                "conv_b3_128to256": 1, "conv_b3_256": 2, "conv_b4_256to512": 1, "conv_b4_512": 2,
                "conv_b5_512": 3}
TIMES = ("fwd_ms", "fwdbwd_ms", "fwd_dx_ms", "fwd_dw_ms")


def best_of(framework):
    """Each case's fastest median over the rounds, with the first round's metadata."""
    runs = [json.load(open(os.path.join(out, f"{framework}_{r}.json"))) for r in range(1, rounds + 1)]
    best = {}
    for run in runs:
        for row in run["results"]:
            kept = best.setdefault(row["case"], dict(row))
            for key in TIMES:
                if key in row:
                    kept[key] = min(kept[key], row[key])
    for row in best.values():
        row["fwd_gflops"] = row["fwd_flop"] / (row["fwd_ms"] * 1e6)
        row["fwdbwd_gflops"] = 3 * row["fwd_flop"] / (row["fwdbwd_ms"] * 1e6)
    return runs[0]["metadata"], best, sum(run["metadata"]["cpu_seconds"] for run in runs)


flex_meta, flex, flex_cpu_s = best_of("flexnn")
torch_meta, torch, torch_cpu_s = best_of("torch")
ticks_per_s = os.sysconf("SC_CLK_TCK")
wall_s = (total_after - total_before) / ticks_per_s / os.cpu_count()
other_cpus = max(0.0, ((busy_after - busy_before) / ticks_per_s - flex_cpu_s - torch_cpu_s) / wall_s)
for name in flex:
    if name not in torch or flex[name]["shape"] != torch[name]["shape"]:
        sys.exit(f"run_cpu_ops.sh: case {name} differs between cpu_ops.cpp and torch_cpu_ops.py")

print(f"flexnn {flex_meta['version']} vs PyTorch {torch_meta['version']}, {threads} threads, "
      f"best median of {rounds} alternating rounds; GFLOP/s, ratio = flexnn / PyTorch (higher is better)\n")
print("| case | shape | flexnn fwd | PyTorch fwd | ratio | flexnn fwd+bwd | PyTorch fwd+bwd | ratio |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
for name, f in flex.items():
    t = torch[name]
    print(f"| {name} | `{f['shape']}` | {f['fwd_gflops']:.1f} | {t['fwd_gflops']:.1f} | "
          f"{f['fwd_gflops'] / t['fwd_gflops']:.2f} | {f['fwdbwd_gflops']:.1f} | {t['fwdbwd_gflops']:.1f} | "
          f"{f['fwdbwd_gflops'] / t['fwdbwd_gflops']:.2f} |")

summary = {}
if all(name in flex for name in VGG16_LAYERS):
    def total(rows, key):
        return sum(count * rows[name][key] for name, count in VGG16_LAYERS.items())
    summary = {key: {"flexnn_ms": total(flex, key), "pytorch_ms": total(torch, key)} for key in ("fwd_ms", "fwdbwd_ms")}
    fwd, fwdbwd = summary["fwd_ms"], summary["fwdbwd_ms"]
    print(f"| VGG16, all 13 convs | batch 100 | {fwd['flexnn_ms']:.0f} ms | {fwd['pytorch_ms']:.0f} ms | "
          f"{fwd['pytorch_ms'] / fwd['flexnn_ms']:.2f} | {fwdbwd['flexnn_ms']:.0f} ms | "
          f"{fwdbwd['pytorch_ms']:.0f} ms | {fwdbwd['pytorch_ms'] / fwdbwd['flexnn_ms']:.2f} |")

if all("fwd_dx_ms" in row for row in list(flex.values()) + list(torch.values())):
    print("\nBackward breakdown, ms: dx = (fwd + input grad) - fwd, dw = (fwd + weight grad) - fwd, "
          "rest = fwd+bwd - fwd - dx - dw (bias grad and autograd overhead)\n")
    print("| case | flexnn fwd | dx | dw | rest | PyTorch fwd | dx | dw | rest |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, f in flex.items():
        cells = []
        for row in (f, torch[name]):
            dx, dw = row["fwd_dx_ms"] - row["fwd_ms"], row["fwd_dw_ms"] - row["fwd_ms"]
            cells += [row["fwd_ms"], dx, dw, row["fwdbwd_ms"] - row["fwd_ms"] - dx - dw]
        print(f"| {name} | " + " | ".join(f"{v:.2f}" for v in cells) + " |")

merged = {"threads": threads, "rounds": rounds, "other_cpus": other_cpus, "cpus": os.cpu_count(), "flexnn": {"metadata": flex_meta, "results": list(flex.values())},
          "pytorch": {"metadata": torch_meta, "results": list(torch.values())}, "vgg16_convs": summary}
with open(os.path.join(out, "cpu_ops.json.tmp"), "w") as f:
    json.dump(merged, f, indent=2)
os.replace(os.path.join(out, "cpu_ops.json.tmp"), os.path.join(out, "cpu_ops.json"))
print(f"\n(results: {os.path.join(out, 'cpu_ops.json')}; other processes kept {other_cpus:.2f} of "
      f"{os.cpu_count()} CPUs busy on average during the rounds)")
if other_cpus > 0.1 and os.cpu_count() - other_cpus < threads:
    print("warning: other processes competed for the CPUs; the timings are noisy, run again when idle",
          file=sys.stderr)
EOF
