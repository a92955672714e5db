#!/usr/bin/python3
"""End-to-end Fashion-MNIST benchmark: one training epoch of fmnist-small (standard mode, batch 100,
60 000 images) and one clean + FGSM (eps 0.1) evaluation of the 10 000 test images, flexnn's CLI
side by side with the same work in PyTorch (torch_fmnist.py), both on the same thread count.
Whole runs alternate for --rounds rounds; each figure is the median over rounds; the ratio is
flexnn's time over PyTorch's (lower is better; the target is <= 0.33). Peak resident memory of each
training run comes from /usr/bin/time -v. Writes BUILD_DIR/bench/fmnist.json. See docs/benchmarks.md.

    benchmarks/run_fmnist.py [--rounds 3] [--threads 2] [--build-dir build] [--data-dir DIR]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_cpu_ops import write_json  # noqa: E402


def timed(command, env):
    """Runs command under /usr/bin/time -v; returns (stdout, peak RSS in MB)."""
    result = subprocess.run(["/usr/bin/time", "-v"] + command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"run_fmnist.py: {' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    return result.stdout, int(peak.group(1)) / 1024 if peak else float("nan")


def flexnn_round(cli, threads, data_dir, env):
    with tempfile.TemporaryDirectory(prefix="flexnn-bench-") as run:
        out = os.path.join(run, "a")
        command = [cli, "train", "--epochs", "1", "--threads", str(threads), "--out", out]
        if data_dir:
            command += ["--data-dir", data_dir]
        _, peak = timed(command, env)
        with open(os.path.join(out, "log.jsonl")) as log:
            epoch = json.loads(log.readline())
        report = os.path.join(run, "eval.json")
        command = [cli, "eval", "--checkpoint", os.path.join(out, "model.safetensors"), "--attack", "fgsm",
                   "--eps", "0.1", "--threads", str(threads), "--json", report]
        if data_dir:
            command += ["--data-dir", data_dir]
        timed(command, env)
        with open(report) as f:
            evaluation = json.load(f)
    return {"train_epoch_s": epoch["seconds"], "eval_s": evaluation["seconds"], "peak_rss_mb": peak,
            "test_accuracy": evaluation["clean_accuracy"], "fgsm_accuracy": evaluation["attacks"][0]["accuracy"]}


def torch_round(threads, data_dir, env):
    command = ["/usr/bin/python3", os.path.join(HERE, "torch_fmnist.py"), "--threads", str(threads)]
    if data_dir:
        command += ["--data-dir", data_dir]
    stdout, peak = timed(command, env)
    result = json.loads(stdout)
    return {"train_epoch_s": result["train_epoch_s"][0], "eval_s": result["eval_s"], "peak_rss_mb": peak,
            "test_accuracy": 100 * result["clean_accuracy"], "fgsm_accuracy": 100 * result["fgsm_accuracy"],
            "version": result["version"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--build-dir", default=os.path.join(HERE, "..", "build"))
    parser.add_argument("--data-dir", default="")
    args = parser.parse_args()
    if args.rounds < 1 or args.threads < 1:
        parser.error("--rounds and --threads must be positive")
    cli = os.path.join(args.build_dir, "bin", "flexnn")
    if not os.access(cli, os.X_OK):
        parser.error(f"{cli} is missing: build it first (bash tools/build.sh)")
    env = dict(os.environ, FLEXNN_NUM_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))

    runs = {"flexnn": [], "pytorch": []}
    for r in range(args.rounds):
        runs["flexnn"].append(flexnn_round(cli, args.threads, args.data_dir, env))
        runs["pytorch"].append(torch_round(args.threads, args.data_dir, env))
        print(f"round {r + 1}: flexnn {runs['flexnn'][-1]}\n         pytorch {runs['pytorch'][-1]}", file=sys.stderr)

    def median(framework, key):
        return statistics.median(run[key] for run in runs[framework])

    summary = {}
    for key in ("train_epoch_s", "eval_s", "peak_rss_mb"):
        ours, theirs = median("flexnn", key), median("pytorch", key)
        summary[key] = {"flexnn": ours, "pytorch": theirs, "ratio": ours / theirs}
    print(f"| measure | flexnn | PyTorch {runs['pytorch'][0]['version']} | ratio |")
    print("|---|---|---|---|")
    for key, unit in (("train_epoch_s", "s"), ("eval_s", "s"), ("peak_rss_mb", "MB")):
        s = summary[key]
        print(f"| {key} | {s['flexnn']:.2f} {unit} | {s['pytorch']:.2f} {unit} | {s['ratio']:.2f} |")
    path = os.path.join(args.build_dir, "bench", "fmnist.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write_json(path, {"threads": args.threads, "rounds": args.rounds, "summary": summary, "runs": runs})
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
