#!/usr/bin/python3
"""PyTorch reference for bench_cpu_ops: the same linear / conv2d cases, the same timing method and
the same JSON schema, so benchmarks/run_cpu_ops.sh can set the two side by side.

    torch_cpu_ops.py [--threads N] [--json PATH] [--filter SUBSTRING] [--quick] [--breakdown]

Meant for Debian's python3-torch (1.13, CPU) on libopenblas0-pthread: `bash tools/setup.sh --bench`.
Exits 2 with a message when torch is not installed.
"""
import argparse
import json
import math
import os
import resource
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as missing:
    print(f"error: PyTorch is not installed ({missing}); run `bash tools/setup.sh --bench` "
          "and use Debian's /usr/bin/python3", file=sys.stderr)
    sys.exit(2)


class Case:
    """x [n, c_in] -> [n, c_out] (linear), or x [n, c_in, size, size] with a k x k kernel, stride 1
    and `pad` zeros on each side (conv)."""

    def __init__(self, name, conv, n, c_in, size, c_out, k, pad):
        self.name, self.conv, self.n, self.c_in, self.size = name, conv, n, c_in, size
        self.c_out, self.k, self.pad = c_out, k, pad
        self.out = size + 2 * pad - k + 1

    def forward_flops(self):  # multiply-adds count two FLOPs; the bias is not counted
        return 2.0 * self.n * self.c_out * self.c_in * self.k * self.k * self.out * self.out

    def shape(self):
        if not self.conv:
            return f"x[{self.n},{self.c_in}] w[{self.c_out},{self.c_in}]"
        return (f"x[{self.n},{self.c_in},{self.size},{self.size}] "
                f"w[{self.c_out},{self.c_in},{self.k},{self.k}] pad {self.pad}")


def conv(name, c_in, c_out, size, k=3, pad=1):
    return Case(name, True, 100, c_in, size, c_out, k, pad)


# Keep identical to kCases in cpu_ops.cpp (run_cpu_ops.sh checks that names and shapes agree).
CASES = [
    Case("linear_fc1", False, 100, 6912, 1, 120, 1, 0),
    conv("conv_fmnist_1to12", 1, 12, 28, k=5, pad=0),
    conv("conv_b1_3to64", 3, 64, 32),
    conv("conv_b1_64to64_flex", 64, 64, 32, pad=0),
    conv("conv_b2_64to128", 64, 128, 30),
    conv("conv_b2_128", 128, 128, 30),
    conv("conv_b3_128to256", 128, 256, 15),
    conv("conv_b3_256", 256, 256, 15),
    conv("conv_b4_256to512", 256, 512, 7),
    conv("conv_b4_512", 512, 512, 7),
    conv("conv_b5_512", 512, 512, 3),
]


def time_median(fn, min_reps, target_s):
    """One warm-up call, then timed calls until there are at least min_reps of them and they took at
    least target_s seconds in all (at most 1000 calls); returns (median ms, reps)."""
    fn()
    ms = []
    while len(ms) < min_reps or (sum(ms) < target_s * 1e3 and len(ms) < 1000):
        start = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - start) * 1e3)
    return statistics.median(ms), len(ms)


class Operands:
    def __init__(self, case):
        gen = torch.Generator().manual_seed(42)
        if case.conv:
            x_shape = (case.n, case.c_in, case.size, case.size)
            w_shape = (case.c_out, case.c_in, case.k, case.k)
            y_shape = (case.n, case.c_out, case.out, case.out)
        else:
            x_shape, w_shape, y_shape = (case.n, case.c_in), (case.c_out, case.c_in), (case.n, case.c_out)
        bound = 1.0 / math.sqrt(case.c_in * case.k * case.k)
        self.case = case
        self.x = torch.randn(x_shape, generator=gen)
        self.weight = torch.empty(w_shape).uniform_(-bound, bound, generator=gen)
        self.bias = torch.empty(case.c_out).uniform_(-bound, bound, generator=gen)
        self.grad_out = torch.randn(y_shape, generator=gen)

    def forward(self):
        if self.case.conv:
            return F.conv2d(self.x, self.weight, self.bias, padding=self.case.pad)
        return F.linear(self.x, self.weight, self.bias)

    def set_requires_grad(self, need_x, need_weight, need_bias):
        self.x.requires_grad_(need_x)
        self.weight.requires_grad_(need_weight)
        self.bias.requires_grad_(need_bias)

    def forward_backward(self):
        """Forward, then backward from the fixed output gradient; the leaves' gradients are dropped
        so that every repetition does the same work."""
        self.forward().backward(self.grad_out)
        self.x.grad = self.weight.grad = self.bias.grad = None


def run_case(case, args):
    min_reps, target_s = (2, 0.0) if args.quick else (5, 1.0)
    ops = Operands(case)
    ops.set_requires_grad(False, False, False)
    with torch.no_grad():
        fwd_ms, fwd_reps = time_median(ops.forward, min_reps, target_s)
    ops.set_requires_grad(True, True, True)
    fwdbwd_ms, fwdbwd_reps = time_median(ops.forward_backward, min_reps, target_s)
    flops = case.forward_flops()
    row = {"case": case.name, "shape": case.shape(), "fwd_flop": flops,
           "fwd_ms": fwd_ms, "fwdbwd_ms": fwdbwd_ms,
           "fwd_gflops": flops / (fwd_ms * 1e6), "fwdbwd_gflops": 3.0 * flops / (fwdbwd_ms * 1e6),
           "fwd_reps": fwd_reps, "fwdbwd_reps": fwdbwd_reps}
    if args.breakdown:  # forward plus one gradient: the input's alone, then the weight's alone
        ops.set_requires_grad(True, False, False)
        row["fwd_dx_ms"] = time_median(ops.forward_backward, min_reps, target_s)[0]
        ops.set_requires_grad(False, True, False)
        row["fwd_dw_ms"] = time_median(ops.forward_backward, min_reps, target_s)[0]
    return row


def config_lines():
    """torch.__config__.show() without its compiler flags: versions of oneDNN (MKL-DNN), OpenMP, the
    CPU capability ATen's own kernels use, and the BLAS / oneDNN build settings."""
    lines = [line.strip(" -") for line in torch.__config__.show().splitlines()[1:]]
    keep = [line for line in lines if line and not line.startswith(("GCC", "C++", "Build settings"))]
    settings = next((line for line in lines if line.startswith("Build settings: ")), "")
    keep += [item.strip() for item in settings[len("Build settings: "):].split(",")
             if item.strip().startswith(("BLAS_INFO", "LAPACK_INFO", "USE_MKLDNN", "USE_OPENMP"))]
    return keep


def loaded_libraries():
    """The BLAS, LAPACK, oneDNN and OpenMP libraries this process has actually loaded (Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if any(name in os.path.basename(p) for name in ("blas", "lapack", "dnnl", "gomp")))


def write_json(path, doc):
    """Through a temporary file and a rename, so a crash never leaves half a file."""
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as out:
        json.dump(doc, out, indent=2)
        out.write("\n")
    os.replace(path + ".tmp", path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's own)")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--filter", default="", help="run only the cases whose name contains this substring")
    parser.add_argument("--quick", action="store_true", help="2 repetitions per measurement (a smoke test)")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time forward + the input gradient, and forward + the weight gradient")
    args = parser.parse_args()
    cases = [case for case in CASES if args.filter in case.name]
    if not cases:
        parser.error(f"no case matches --filter '{args.filter}' (cases: {', '.join(c.name for c in CASES)})")
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    results = []
    print(f"{'case':<22} {'fwd ms':>10} {'fwd+bwd ms':>10} {'fwd GFLOP/s':>12} {'f+b GFLOP/s':>12}")
    for case in cases:
        row = run_case(case, args)
        print(f"{case.name:<22} {row['fwd_ms']:>10.3f} {row['fwdbwd_ms']:>10.3f} "
              f"{row['fwd_gflops']:>12.1f} {row['fwdbwd_gflops']:>12.1f}", flush=True)
        results.append(row)
    if args.json:
        metadata = {"version": torch.__version__, "threads": torch.get_num_threads(), "quick": args.quick,
                    "config": config_lines(), "libraries": loaded_libraries(),
                    "mkldnn_enabled": torch.backends.mkldnn.is_available(),
                    "cpu_seconds": sum(resource.getrusage(resource.RUSAGE_SELF)[:2])}
        write_json(args.json, {"framework": "pytorch", "metadata": metadata, "results": results})


if __name__ == "__main__":
    main()
