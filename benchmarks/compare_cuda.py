#!/usr/bin/env python3
"""Joins bench_cuda_ops's and torch_cuda_ops.py's JSON results by case, prints markdown tables of
both frameworks' times with speed-ups (PyTorch time / flexnn time: above 1, flexnn is faster) and the
targets of issue 4 with PASS / FAIL, and optionally writes it all as JSON.

    compare_cuda.py FLEXNN_JSON TORCH_JSON [--json PATH] [--strict]

Exits 2 when a file cannot be read or a case's shape differs between the two (the case lists of
cuda_ops.cpp and torch_cuda_ops.py must agree), 1 with --strict when a measured target fails, else 0.
"""
import argparse
import json
import os
import sys

COPY_SHARE = 0.70       # memory-bound kernels: at least this share of the measured copy bandwidth
FUSED_SPEEDUP = 1.5     # the fused flexible layer against PyTorch's composition, forward + backward
MEMORY_BOUND = ("relu", "add", "sgd_step")


def load(path, framework):
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as err:
        sys.exit(f"error: cannot read {framework} results {path}: {err}")
    if doc.get("framework") != framework or not isinstance(doc.get("results"), list):
        sys.exit(f"error: {path}: expected {framework} results (\"framework\": \"{framework}\" and a "
                 f"\"results\" list), found framework {doc.get('framework')!r}")
    return doc["metadata"], {row["case"]: row for row in doc["results"]}


def speedup(torch_value, flexnn_value):
    return torch_value / flexnn_value if flexnn_value > 0 else float("nan")


def cell(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def target(name, value, threshold, detail):
    """A target row: PASS when value >= threshold, MISSING when a case was not measured."""
    status = "MISSING" if value is None else ("PASS" if value >= threshold else "FAIL")
    return {"target": name, "value": value, "threshold": threshold, "status": status, "detail": detail}


def op_tables(flex, torch):
    rows = []
    print("| case | precision | shape | flexnn fwd ms | PyTorch fwd ms | speed-up | flexnn fwd+bwd ms | "
          "PyTorch fwd+bwd ms | speed-up |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for name, f in flex.items():
        if f["kind"] != "op":
            continue
        # The fused flexible layer is measured against PyTorch's composition of the same maths.
        t = torch.get(name.replace("flexible_fused", "flexible_unfused"))
        row = {"case": name, "kind": "op", "precision": f["precision"], "shape": f["shape"],
               "flexnn_fwd_ms": f["fwd_ms"], "flexnn_fwdbwd_ms": f["fwdbwd_ms"],
               "pytorch_fwd_ms": t["fwd_ms"] if t else None, "pytorch_fwdbwd_ms": t["fwdbwd_ms"] if t else None,
               "fwd_speedup": speedup(t["fwd_ms"], f["fwd_ms"]) if t else None,
               "fwdbwd_speedup": speedup(t["fwdbwd_ms"], f["fwdbwd_ms"]) if t else None}
        rows.append(row)
        print(f"| {name} | {row['precision']} | `{row['shape']}` | {cell(f['fwd_ms'])} | "
              f"{cell(row['pytorch_fwd_ms'])} | "
              f"{cell(row['fwd_speedup'], 2)} | {cell(f['fwdbwd_ms'])} | {cell(row['pytorch_fwdbwd_ms'])} | "
              f"{cell(row['fwdbwd_speedup'], 2)} |")
    print("\nflexible_fused rows: the PyTorch columns are PyTorch's composition (its flexible_unfused row).")
    return rows


def bandwidth_table(flex, torch):
    rows = []
    flex_copy = flex.get("copy", {}).get("gbps")
    torch_copy = torch.get("copy", {}).get("gbps")
    print("\n| case | flexnn GB/s | % of flexnn copy | PyTorch GB/s | % of PyTorch copy | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, f in flex.items():
        if f["kind"] != "bandwidth":
            continue
        t = torch.get(name)
        row = {"case": name, "kind": "bandwidth", "shape": f["shape"], "flexnn_gbps": f["gbps"],
               "flexnn_copy_share": f["gbps"] / flex_copy if flex_copy else None,
               "pytorch_gbps": t["gbps"] if t else None,
               "pytorch_copy_share": t["gbps"] / torch_copy if t and torch_copy else None,
               "speedup": speedup(t["ms"], f["ms"]) if t else None}
        rows.append(row)
        share = [None if s is None else 100 * s for s in (row["flexnn_copy_share"], row["pytorch_copy_share"])]
        print(f"| {name} | {cell(f['gbps'], 1)} | {cell(share[0], 1)} | {cell(row['pytorch_gbps'], 1)} | "
              f"{cell(share[1], 1)} | {cell(row['speedup'], 2)} |")
    return rows


def epoch_table(flex, torch):
    rows = []
    for name, f in flex.items():
        if f["kind"] != "epoch":
            continue
        t = torch.get(name, {})
        row = {"case": name, "kind": "epoch", "shape": f["shape"], "flexnn_epoch_s": f["epoch_s"],
               "pytorch_epoch_s": t.get("epoch_s"), "speedup": speedup(t["epoch_s"], f["epoch_s"]) if t else None,
               "flexnn_peak_bytes": f.get("peak_bytes"),
               "pytorch_peak_allocated_bytes": t.get("peak_allocated_bytes"),
               "pytorch_reserved_bytes": t.get("reserved_bytes")}
        rows.append(row)
        mib = [None if v is None else v / 2**20 for v in (row["flexnn_peak_bytes"],
                                                           row["pytorch_peak_allocated_bytes"],
                                                           row["pytorch_reserved_bytes"])]
        print(f"\n{name} ({f['shape']}): flexnn {cell(f['epoch_s'])} s, PyTorch {cell(row['pytorch_epoch_s'])} s, "
              f"speed-up {cell(row['speedup'], 2)}; device memory without the data: flexnn peak "
              f"{cell(mib[0], 1)} MiB, PyTorch peak allocated {cell(mib[1], 1)} MiB, "
              f"reserved {cell(mib[2], 1)} MiB")
    return rows


def targets(flex, torch):
    out = []
    for suffix, precision in (("", "fp32, TF32 off"), ("_tf32", "TF32 on")):
        f, t = flex.get(f"flexible_fused_b1{suffix}"), torch.get(f"flexible_unfused_b1{suffix}")
        value = speedup(t["fwdbwd_ms"], f["fwdbwd_ms"]) if f and t else None
        out.append(target(f"fused flexible layer fwd+bwd vs PyTorch's composition, VGG16 block 1, {precision}",
                          value, FUSED_SPEEDUP,
                          f"PyTorch flexible_unfused_b1{suffix} / flexnn flexible_fused_b1{suffix}, fwd+bwd ms"))
    copy = flex.get("copy", {}).get("gbps")
    for name in MEMORY_BOUND:
        value = flex[name]["gbps"] / copy if name in flex and copy else None
        out.append(target(f"{name}: share of flexnn's device copy bandwidth", value, COPY_SHARE,
                          "GB/s (bytes read + written) / copy GB/s"))
    f, t = flex.get("fmnist_small_epoch"), torch.get("fmnist_small_epoch")
    value = None
    if f and t and f.get("peak_bytes") and t.get("peak_allocated_bytes"):
        value = t["peak_allocated_bytes"] / f["peak_bytes"]
    out.append(target("training memory, fmnist-small step (stand-in for VGG16-single): PyTorch peak allocated / "
                      "flexnn peak allocated", value, 1.0, "both count blocks handed out, data set excluded"))
    for name in ("VGG16-single training step speed vs PyTorch eager (>= 1.0x)",
                 "VGG16-single peak device memory <= PyTorch's max_memory_allocated"):
        out.append({"target": name, "value": None, "threshold": None, "status": "NOT MEASURED",
                    "detail": "no VGG16-single case in bench_cuda_ops (the model registry has no VGG16 yet)"})
    print("\n| target | value | needs | status |")
    print("|---|---:|---:|---|")
    for row in out:
        needs = "-" if row["threshold"] is None else f">= {row['threshold']:.2f}"
        print(f"| {row['target']} | {cell(row['value'], 2)} | {needs} | {row['status']} |")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("flexnn_json", help="bench_cuda_ops --json output")
    parser.add_argument("torch_json", help="torch_cuda_ops.py --json output")
    parser.add_argument("--json", help="also write the joined rows and the targets to this JSON file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a measured target fails")
    args = parser.parse_args()
    flex_meta, flex = load(args.flexnn_json, "flexnn")
    torch_meta, torch = load(args.torch_json, "pytorch")
    for name, row in flex.items():
        if name in torch and torch[name]["shape"] != row["shape"]:
            sys.exit(f"error: case {name} has shape {row['shape']!r} in {args.flexnn_json} but "
                     f"{torch[name]['shape']!r} in {args.torch_json} (cuda_ops.cpp and torch_cuda_ops.py differ, "
                     "or one ran with --smoke)")

    print(f"flexnn {flex_meta.get('version')} on {flex_meta.get('device')} vs PyTorch {torch_meta.get('version')} on "
          f"{torch_meta.get('device')}; median wall times, speed-up = PyTorch / flexnn (above 1: flexnn faster)\n")
    if flex_meta.get("emulated"):
        print("warning: the flexnn numbers come from the CPU emulation of CUDA; they say nothing about speed\n")
    rows = op_tables(flex, torch) + bandwidth_table(flex, torch) + epoch_table(flex, torch)
    goals = targets(flex, torch)

    if args.json:
        doc = {"flexnn": flex_meta, "pytorch": torch_meta, "rows": rows, "targets": goals}
        if os.path.dirname(args.json):
            os.makedirs(os.path.dirname(args.json), exist_ok=True)
        with open(args.json + ".tmp", "w") as out:
            json.dump(doc, out, indent=2)
            out.write("\n")
        os.replace(args.json + ".tmp", args.json)
    if args.strict and any(goal["status"] == "FAIL" for goal in goals):
        sys.exit(1)


if __name__ == "__main__":
    main()
