#!/usr/bin/python3
"""PyTorch reference for bench_cuda_ops: the same cases on the GPU, the same timing method (median
wall time of repetitions each ending with torch.cuda.synchronize(), after a warm-up) and the same
JSON schema, so benchmarks/compare_cuda.py can join the two by case.

    torch_cuda_ops.py [--json PATH] [--filter SUBSTRING] [--reps N] [--smoke] [--device cuda|cpu]

fp32 rows run with TF32 off for matrix products and cuDNN (torch.backends.cuda.matmul.allow_tf32 =
torch.backends.cudnn.allow_tf32 = False); *_tf32 rows with both on. PyTorch has no fused flexible
layer: its reference is the composition (conv2d, max_pool2d, sigmoid, blend), flexible_unfused_b1.
`--device cpu --smoke` runs every case at tiny sizes on the CPU, to test this script without a GPU.
Exits 2 with a message when torch is missing or CUDA is unavailable for --device cuda.
"""
import argparse
import math
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as missing:
    print(f"error: PyTorch is not installed ({missing})", file=sys.stderr)
    sys.exit(2)

from torch_cpu_ops import time_median, write_json
from torch_fmnist import FlexibleFMNIST

SHARPNESS = 50.0
MIB_256 = (256 << 20) // 4  # floats


class Case:
    """Sizes as in cuda_ops.cpp: a convolution x [n, c_in, size, size] * w [c_out, c_in, k, k],
    stride 1, `pad` zeros per side (flexible: c_out = c_in, pool k stride 1, no padding); a linear
    x [n, c_in] * w [c_out, c_in]; a matmul [n, n] x [n, n]; a memory-bound case over n floats; an
    epoch of n steps of batch c_in."""

    def __init__(self, name, kind, tf32=False, n=0, c_in=0, size=0, c_out=0, k=0, pad=0):
        self.name, self.kind, self.tf32 = name, kind, tf32
        self.n, self.c_in, self.size, self.c_out, self.k, self.pad = n, c_in, size, c_out, k, pad

    @property
    def out(self):
        return self.size + 2 * self.pad - self.k + 1

    def shape(self):
        if self.kind in ("flexible_fused", "flexible_unfused", "conv"):
            return (f"x[{self.n},{self.c_in},{self.size},{self.size}] "
                    f"w[{self.c_out},{self.c_in},{self.k},{self.k}] pad {self.pad}")
        if self.kind == "linear":
            return f"x[{self.n},{self.c_in}] w[{self.c_out},{self.c_in}]"
        if self.kind == "matmul":
            return f"[{self.n},{self.n}] x [{self.n},{self.n}]"
        if self.kind == "epoch":
            return f"{self.n} steps of batch {self.c_in}"
        return f"[{self.n}] float32"

    def smoke(self):
        """The same case at the sizes `bench_cuda_ops --smoke` uses."""
        c = Case(self.name, self.kind, self.tf32, self.n, self.c_in, self.size, self.c_out, self.k, self.pad)
        if c.kind in ("flexible_fused", "flexible_unfused", "conv"):
            c.n, c.c_in, c.size = 2, min(c.c_in, 3), min(c.size, 8)
            c.c_out = min(c.c_out, 4) if c.kind == "conv" else c.c_in
        elif c.kind == "linear":
            c.n, c.c_in, c.c_out = 2, 64, 8
        elif c.kind == "matmul":
            c.n = 32
        elif c.kind == "epoch":
            c.n, c.c_in = 4, 2
        else:
            c.n = 16384
        return c


def conv(name, c_in, c_out, size, k=3, pad=1):
    return Case(name, "conv", False, 100, c_in, size, c_out, k, pad)


def flexible(name, kind, tf32):
    return Case(name, kind, tf32, 100, 64, 32, 64, 3, 0)


# Keep identical to full_cases() in cuda_ops.cpp (compare_cuda.py checks that shapes agree).
CASES = [
    flexible("flexible_fused_b1", "flexible_fused", False),
    flexible("flexible_unfused_b1", "flexible_unfused", False),
    flexible("flexible_fused_b1_tf32", "flexible_fused", True),
    flexible("flexible_unfused_b1_tf32", "flexible_unfused", True),
    Case("conv_fmnist_1to12", "conv", False, 100, 1, 28, 12, 5, 0),
    conv("conv_b1_3to64", 3, 64, 32),
    conv("conv_b1_64to64_flex", 64, 64, 32, pad=0),
    conv("conv_b2_64to128", 64, 128, 30),
    conv("conv_b2_128", 128, 128, 30),
    conv("conv_b3_128to256", 128, 256, 15),
    conv("conv_b3_256", 256, 256, 15),
    conv("conv_b4_256to512", 256, 512, 7),
    conv("conv_b4_512", 512, 512, 7),
    conv("conv_b5_512", 512, 512, 3),
    Case("linear_fc1", "linear", False, 100, 6912, 1, 120),
    Case("linear_fc1_tf32", "linear", True, 100, 6912, 1, 120),
    Case("matmul_4096", "matmul", False, 4096),
    Case("matmul_4096_tf32", "matmul", True, 4096),
    Case("copy", "copy", False, MIB_256),
    Case("relu", "relu", False, MIB_256),
    Case("add", "add", False, MIB_256),
    Case("sgd_step", "sgd", False, MIB_256),
    Case("fmnist_small_epoch", "epoch", False, 600, 100),
]


class Runner:
    def __init__(self, device, min_reps, target_s):
        self.device, self.min_reps, self.target_s = device, min_reps, target_s
        self.gen = None

    def sync(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def time(self, fn):
        """(median ms, reps) of fn followed by a device synchronisation."""
        def synced():
            fn()
            self.sync()
        return time_median(synced, self.min_reps, self.target_s)

    def randn(self, *shape, mean=0.0, std=1.0):
        return torch.randn(shape, generator=self.gen, device=self.device) * std + mean

    def uniform(self, *shape, bound):
        return torch.empty(shape, device=self.device).uniform_(-bound, bound, generator=self.gen)

    def forward_backward(self, forward, leaves, grad_out, flops):
        """Forward under no_grad, then forward + backward from a fixed output gradient, the leaves'
        gradients dropped after each so every repetition does the same work."""
        with torch.no_grad():
            fwd_ms, fwd_reps = self.time(forward)

        def step():
            forward().backward(grad_out)
            for t in leaves:
                t.grad = None
        fwdbwd_ms, fwdbwd_reps = self.time(step)
        return {"kind": "op", "fwd_flop": flops, "fwd_ms": fwd_ms, "fwdbwd_ms": fwdbwd_ms,
                "fwd_gflops": flops / (fwd_ms * 1e6), "fwdbwd_gflops": 3.0 * flops / (fwdbwd_ms * 1e6),
                "fwd_reps": fwd_reps, "fwdbwd_reps": fwdbwd_reps}

    def op(self, c):
        self.gen = torch.Generator(device=self.device).manual_seed(42)
        if c.kind == "matmul":
            a = self.randn(c.n, c.n).requires_grad_()
            b = self.randn(c.n, c.n).requires_grad_()
            grad_out = self.randn(c.n, c.n)
            return self.forward_backward(lambda: a @ b, [a, b], grad_out, 2.0 * c.n ** 3)
        fan_in = c.c_in * c.k * c.k if c.kind != "linear" else c.c_in
        bound = 1.0 / math.sqrt(fan_in)
        if c.kind == "linear":
            x = self.randn(c.n, c.c_in).requires_grad_()
            w = self.uniform(c.c_out, c.c_in, bound=bound).requires_grad_()
            b = self.uniform(c.c_out, bound=bound).requires_grad_()
            return self.forward_backward(lambda: F.linear(x, w, b), [x, w, b], self.randn(c.n, c.c_out),
                                         2.0 * c.n * c.c_in * c.c_out)
        x = self.randn(c.n, c.c_in, c.size, c.size).requires_grad_()
        w = self.uniform(c.c_out, c.c_in, c.k, c.k, bound=bound).requires_grad_()
        b = self.uniform(c.c_out, bound=bound).requires_grad_()
        grad_out = self.randn(c.n, c.c_out, c.out, c.out)
        flops = 2.0 * c.n * c.c_out * c.c_in * c.k * c.k * c.out * c.out
        if c.kind == "conv":
            return self.forward_backward(lambda: F.conv2d(x, w, b, padding=c.pad), [x, w, b], grad_out, flops)
        threshold = self.randn(c.c_out, c.out, c.out, mean=0.5, std=0.1).requires_grad_()

        def flexible_layer():
            conv_out = F.conv2d(x, w, b)
            pooled = F.max_pool2d(x, c.k, stride=1)
            gate = torch.sigmoid((threshold - pooled) * SHARPNESS)
            return gate * pooled + (1 - gate) * conv_out
        return self.forward_backward(flexible_layer, [x, w, b, threshold], grad_out, flops)

    def bandwidth(self, c):
        """Bytes read plus bytes written per call over the case's n floats."""
        a = torch.full((c.n,), 1.5, device=self.device)
        b = torch.full((c.n,), -0.5, device=self.device)
        size = 4.0 * c.n
        if c.kind == "copy":
            moved, (ms, reps) = 2 * size, self.time(a.clone)
        elif c.kind == "relu":
            moved, (ms, reps) = 2 * size, self.time(lambda: F.relu(b))
        elif c.kind == "add":
            moved, (ms, reps) = 3 * size, self.time(lambda: torch.add(a, b))
        else:  # reads the parameter, its gradient and the momentum buffer, writes two of them
            param = a.clone().requires_grad_()
            param.grad = b
            sgd = torch.optim.SGD([param], lr=0.001, momentum=0.9, weight_decay=0.006)
            sgd.step()  # creates the momentum buffer: every timed step is a steady-state one
            moved, (ms, reps) = 5 * size, self.time(sgd.step)
        return {"kind": "bandwidth", "bytes": moved, "ms": ms, "gbps": moved / (ms * 1e6), "reps": reps}

    def epoch(self, c, smoke):
        """fmnist-small (torch_fmnist.FlexibleFMNIST, standard mode) trained for c.n steps of batch
        c.c_in on device-resident random data with the paper's SGD; peak memory without the data."""
        torch.manual_seed(7)
        cuda = self.device.type == "cuda"
        images = [torch.rand(c.c_in, 1, 28, 28, device=self.device) for _ in range(c.n)]
        labels = [torch.tensor([(step * 7 + i * 3) % 10 for i in range(c.c_in)], device=self.device)
                  for step in range(c.n)]
        if cuda:
            self.sync()
            data_allocated, data_reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
            torch.cuda.reset_peak_memory_stats()
        model = FlexibleFMNIST().to(self.device).train()
        decayed = [p for name, p in model.named_parameters() if name != "threshold"]
        optimizer = torch.optim.SGD([{"params": decayed, "weight_decay": 0.006},
                                     {"params": [model.threshold], "weight_decay": 0.0}], lr=0.001, momentum=0.9)

        def train_step(step):
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images[step]), labels[step])
            loss.backward()
            optimizer.step()
            return loss
        for step in range(1 if smoke else 5):
            train_step(step)
        self.sync()
        start = time.perf_counter()
        for step in range(c.n):
            loss = train_step(step)
        final_loss = loss.item()  # waits for the last step
        seconds = time.perf_counter() - start
        row = {"kind": "epoch", "steps": c.n, "batch": c.c_in, "epoch_s": seconds, "step_ms": 1e3 * seconds / c.n,
               "images_per_s": c.n * c.c_in / seconds, "final_loss": final_loss}
        if cuda:
            row["peak_allocated_bytes"] = torch.cuda.max_memory_allocated() - data_allocated
            row["reserved_bytes"] = torch.cuda.max_memory_reserved() - data_reserved
        return row


def set_tf32(on):
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def run_case(runner, c, smoke):
    set_tf32(c.tf32)
    if runner.device.type == "cuda":
        torch.cuda.empty_cache()
    if c.kind in ("copy", "relu", "add", "sgd"):
        row = runner.bandwidth(c)
    elif c.kind == "epoch":
        row = runner.epoch(c, smoke)
    else:
        row = runner.op(c)
    set_tf32(False)
    row.update({"case": c.name, "shape": c.shape(), "precision": "tf32" if c.tf32 else "fp32"})
    return row


def print_row(row, copy_gbps):
    if row["kind"] == "op":
        print(f"{row['case']:<26} {row['fwd_ms']:>10.3f} {row['fwdbwd_ms']:>10.3f} {row['fwd_gflops']:>10.1f} "
              f"{row['fwdbwd_gflops']:>10.1f}   {row['shape']}", flush=True)
    elif row["kind"] == "bandwidth":
        share = f" {100 * row['gbps'] / copy_gbps:>6.1f} % of copy" if copy_gbps else ""
        print(f"{row['case']:<26} {row['ms']:>10.3f} ms {row['gbps']:>9.1f} GB/s{share}", flush=True)
    else:
        memory = f", peak {row['peak_allocated_bytes'] / 2**20:.1f} MiB" if "peak_allocated_bytes" in row else ""
        print(f"{row['case']:<26} {row['epoch_s']:>10.3f} s/epoch ({row['step_ms']:.3f} ms/step), "
              f"final loss {row['final_loss']:.4f}{memory}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--filter", default="", help="run only the cases whose name contains this substring")
    parser.add_argument("--reps", type=int, default=0, help="at least this many timed repetitions (default 10)")
    parser.add_argument("--smoke", action="store_true", help="every case at tiny sizes, one repetition (a test)")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="cuda (default); cpu only to test this script without a GPU")
    args = parser.parse_args()
    if args.reps < 0 or args.reps > 1000:
        parser.error(f"--reps must be in [1, 1000], found {args.reps}")
    if args.device == "cuda" and not torch.cuda.is_available():
        print(f"error: PyTorch {torch.__version__} has no CUDA device here (torch.cuda.is_available() is "
              "False); use a CUDA build of PyTorch on a GPU machine, or --device cpu --smoke to test the script",
              file=sys.stderr)
        sys.exit(2)
    cases = [c.smoke() if args.smoke else c for c in CASES if args.filter in c.name and c.kind != "flexible_fused"]
    if not cases:
        parser.error(f"no case matches --filter '{args.filter}' (cases: {', '.join(c.name for c in CASES)}; "
                     "PyTorch has no flexible_fused cases)")

    device = torch.device(args.device)
    runner = Runner(device, args.reps or (1 if args.smoke else 10), 0.0 if args.smoke else 0.3)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    print(f"PyTorch {torch.__version__} on {name}{', smoke sizes' if args.smoke else ''}")
    print(f"{'case':<26} {'fwd ms':>10} {'f+b ms':>10} {'fwd GF/s':>10} {'f+b GF/s':>10}")
    results, copy_gbps = [], 0.0
    for c in cases:
        row = run_case(runner, c, args.smoke)
        if c.kind == "copy":
            copy_gbps = row["gbps"]
        print_row(row, copy_gbps)
        results.append(row)
    if args.json:
        cudnn = torch.backends.cudnn.version() if device.type == "cuda" else None
        metadata = {"version": torch.__version__, "device": name, "device_type": device.type,
                    "cuda": torch.version.cuda, "cudnn": cudnn, "smoke": args.smoke}
        write_json(args.json, {"framework": "pytorch", "metadata": metadata, "results": results})


if __name__ == "__main__":
    main()
