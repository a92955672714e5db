#!/usr/bin/python3
"""VGG16 training throughput on the CPU: bench_vgg16_train (flexnn) and torch_vgg16.py (PyTorch)
train the same network (vgg16, flex single by default) on synthetic batches of 100 32x32 images with
the paper's SGD, on the same thread count. Whole runs alternate for --rounds rounds, each with
--warmup untimed and --steps timed steps; each framework's figure is the median step time over all
its timed steps (and, less sensitive to other load on a shared machine, the fastest), as images per
second. The ratio is flexnn's images/s over PyTorch's (higher is better; the target is >= 1.5). Writes BUILD_DIR/bench/vgg16.json. See docs/benchmarks.md.

    benchmarks/run_vgg16.py [--rounds 3] [--steps 3] [--warmup 1] [--threads 2] [--flex single]
                            [--build-dir build]
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_cpu_ops import write_json  # noqa: E402


def busy_seconds():
    """CPU seconds all processes have used since boot (/proc/stat: user, nice, system, irq, softirq)."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return (ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]) / os.sysconf("SC_CLK_TCK")


def children_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_json(command, env):
    """Runs command; returns the JSON object it prints on stdout, with other_cpus: how many CPUs other
    processes kept busy meanwhile (the machine's busy time less the command's own, over its wall time)."""
    busy, own, start = busy_seconds(), children_seconds(), time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"run_vgg16.py: {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    run = json.loads(result.stdout)
    run["other_cpus"] = max(0.0, (busy_seconds() - busy - (children_seconds() - own)) / wall)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--flex", choices=("single", "none"), default="single")
    parser.add_argument("--build-dir", default=os.path.join(HERE, "..", "build"))
    args = parser.parse_args()
    if args.rounds < 1 or args.steps < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--rounds, --steps and --threads must be positive, --warmup not negative")
    bench = os.path.join(args.build_dir, "bin", "bench_vgg16_train")
    if not os.access(bench, os.X_OK):
        parser.error(f"{bench} is missing: build it first (cmake --build BUILD_DIR --target bench_vgg16_train)")
    env = dict(os.environ, FLEXNN_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    common = ["--flex", args.flex, "--steps", str(args.steps), "--warmup", str(args.warmup),
              "--threads", str(args.threads)]
    commands = {"flexnn": [bench] + common,
                "pytorch": ["/usr/bin/python3", os.path.join(HERE, "torch_vgg16.py")] + common}

    runs = {"flexnn": [], "pytorch": []}
    for r in range(args.rounds):
        for framework, command in commands.items():
            runs[framework].append(run_json(command, env))
            run = runs[framework][-1]
            steps = ", ".join(f"{s:.2f}" for s in run["step_s"])
            print(f"round {r + 1}: {framework} steps {steps} s (other processes: {run['other_cpus']:.2f} CPUs)",
                  file=sys.stderr, flush=True)

    # The median is the headline; the fastest step is the one least slowed by other processes on a
    # shared machine, so both are reported.
    summary = {}
    for framework, results in runs.items():
        steps = [s for run in results for s in run["step_s"]]
        batch = results[0]["batch"]
        summary[framework] = {"median_step_s": statistics.median(steps), "best_step_s": min(steps),
                              "images_per_s": batch / statistics.median(steps), "best_images_per_s": batch / min(steps),
                              "peak_rss_mb": max(run["peak_rss_mb"] for run in results)}
    f, t = summary["flexnn"], summary["pytorch"]
    ratio = f["images_per_s"] / t["images_per_s"]
    best_ratio = f["best_images_per_s"] / t["best_images_per_s"]
    print(f"| VGG16 ({args.flex}) training, batch {runs['flexnn'][0]['batch']}, {args.threads} threads "
          f"| flexnn | PyTorch {runs['pytorch'][0]['version']} | flexnn / PyTorch |")
    print("|---|---|---|---|")
    print(f"| images/s (median step) | {f['images_per_s']:.1f} | {t['images_per_s']:.1f} | {ratio:.2f} |")
    print(f"| images/s (fastest step) | {f['best_images_per_s']:.1f} | {t['best_images_per_s']:.1f} | {best_ratio:.2f} |")
    print(f"| s per step (median) | {f['median_step_s']:.2f} | {t['median_step_s']:.2f} | |")
    print(f"| peak RSS | {f['peak_rss_mb']:.0f} MB | {t['peak_rss_mb']:.0f} MB | |")
    other = max(run["other_cpus"] for results in runs.values() for run in results)
    if other > 0.1 and os.cpu_count() - other < args.threads:
        print(f"warning: other processes kept up to {other:.2f} of {os.cpu_count()} CPUs busy, so the two "
              "frameworks competed for cores; run again when the machine is idle", file=sys.stderr)
    path = os.path.join(args.build_dir, "bench", "vgg16.json")
    write_json(path, {"threads": args.threads, "rounds": args.rounds, "flex": args.flex, "summary": summary,
                      "ratio": ratio, "best_ratio": best_ratio, "runs": runs})
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
