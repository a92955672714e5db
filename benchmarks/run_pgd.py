#!/usr/bin/python3
"""PGD-20 benchmark: TRADES' white-box PGD (L-inf, eps 0.031, 20 steps of 0.003, random start) over
the Fashion-MNIST test set for fmnist-small, flexnn's bench_pgd side by side with the same attack in
PyTorch (torch_pgd.py), on the same weights and the same thread count. Whole runs alternate for
--rounds rounds; each figure is the median over rounds; the ratio is flexnn's time over PyTorch's
(lower is better; the target is <= 0.33). Beside the wall time of the attack, each run's CPU time
(user + system, from the kernel's accounting of the child process) shows how busy the machine was.
Writes BUILD_DIR/bench/pgd.json. See docs/benchmarks_pgd.md.

    benchmarks/run_pgd.py [--rounds 3] [--threads 2] [--build-dir build] [--checkpoint M]
                          [--limit N] [--data-dir DIR]

Without --checkpoint both sides attack a freshly initialised model (bench_pgd --seed 0); the time
does not depend on the weights, the accuracies do.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_cpu_ops import write_json  # noqa: E402


def run(command, env):
    """Runs command; returns (its stdout's JSON, the child's CPU seconds)."""
    before = os.times()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    after = os.times()
    if result.returncode != 0:
        sys.exit(f"run_pgd.py: {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return json.loads(result.stdout.strip().splitlines()[-1]), cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--build-dir", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--checkpoint", default="", help="an fmnist-small checkpoint (default: a fresh model)")
    parser.add_argument("--limit", type=int, default=0, help="attack only the first N test images (0: all)")
    parser.add_argument("--data-dir", default="")
    args = parser.parse_args()
    if args.rounds < 1 or args.threads < 1 or args.limit < 0:
        parser.error("--rounds and --threads must be positive, --limit non-negative")
    bench = os.path.join(args.build_dir, "bin", "bench_pgd")
    if not os.access(bench, os.X_OK):
        parser.error(f"{bench} is missing: configure with -DFLEXNN_BUILD_BENCHMARKS=ON and build target bench_pgd")
    env = dict(os.environ, FLEXNN_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))

    common = ["--threads", str(args.threads), "--limit", str(args.limit)]
    if args.data_dir:
        common += ["--data-dir", args.data_dir]
    runs = {"flexnn": [], "pytorch": []}
    with tempfile.TemporaryDirectory(prefix="flexnn-pgd-") as tmp:
        weights = os.path.join(tmp, "weights.safetensors")
        ours = [bench, "--save-weights", weights] + common
        if args.checkpoint:
            ours += ["--checkpoint", args.checkpoint]
        theirs = ["/usr/bin/python3", os.path.join(HERE, "torch_pgd.py"), "--weights", weights] + common
        for r in range(args.rounds):
            result, cpu = run(ours, env)
            runs["flexnn"].append(dict(result, cpu_s=cpu))
            result, cpu = run(theirs, env)
            runs["pytorch"].append(dict(result, cpu_s=cpu))
            print(f"round {r + 1}: flexnn {runs['flexnn'][-1]}\n         pytorch {runs['pytorch'][-1]}",
                  file=sys.stderr)

    def median(framework, key):
        return statistics.median(run[key] for run in runs[framework])

    summary = {key: {"flexnn": median("flexnn", key), "pytorch": median("pytorch", key)}
               for key in ("pgd_s", "cpu_s", "clean_accuracy", "pgd_accuracy")}
    for key in ("pgd_s", "cpu_s"):
        summary[key]["ratio"] = summary[key]["flexnn"] / summary[key]["pytorch"]
    images = runs["flexnn"][0]["images"]
    print(f"| measure ({images} images) | flexnn | PyTorch {runs['pytorch'][0]['version']} | ratio |")
    print("|---|---|---|---|")
    for key, label in (("pgd_s", "PGD-20 wall time"), ("cpu_s", "process CPU time")):
        s = summary[key]
        print(f"| {label} | {s['flexnn']:.2f} s | {s['pytorch']:.2f} s | {s['ratio']:.3f} |")
    for key, label in (("clean_accuracy", "clean accuracy"), ("pgd_accuracy", "PGD-20 accuracy")):
        s = summary[key]
        print(f"| {label} | {s['flexnn']:.2f} % | {s['pytorch']:.2f} % | |")
    path = os.path.join(args.build_dir, "bench", "pgd.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, {"threads": args.threads, "rounds": args.rounds, "checkpoint": args.checkpoint,
                      "summary": summary, "runs": runs})
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
