#!/usr/bin/python3
"""PyTorch reference for flexnn's PGD speed target: PGD-20 under the TRADES protocol (L-inf,
eps 0.031, step 0.003, random start U(-eps, eps), no clamp before the first step, each step a
signed gradient step, the projection onto the eps-ball, then a clamp to [0, 1]) over the
Fashion-MNIST test set for the paper's small net (torch_fmnist.FlexibleFMNIST), as TRADES'
pgd_attack_cifar10.py writes it (a fresh leaf per step, loss.backward()).

    torch_pgd.py [--weights model.safetensors] [--data-dir DIR] [--batch 100] [--limit N]
                 [--threads 2] [--seed 0] [--json PATH]

--weights loads flexnn's fmnist-small weights (bench_pgd --save-weights), so both sides attack the
same model. Meant for Debian's python3-torch (1.13, CPU): run it with /usr/bin/python3. Prints one
JSON object on stdout.
"""
import argparse
import json
import struct
import sys
import time

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError as missing:
    print(f"error: PyTorch is not installed ({missing}); run `bash tools/setup.sh --bench` "
          "and use Debian's /usr/bin/python3", file=sys.stderr)
    sys.exit(2)

from torch_cpu_ops import write_json
from torch_fmnist import FlexibleFMNIST, load_split

EPS, STEP, STEPS = 0.031, 0.003, 20

# flexnn's parameter names (models/fmnist_small.hpp) -> FlexibleFMNIST's.
NAMES = {"flex.conv.weight": "conv.weight", "flex.conv.bias": "conv.bias", "flex.threshold": "threshold",
         "fc1.weight": "fc1.weight", "fc1.bias": "fc1.bias", "fc2.weight": "fc2.weight", "fc2.bias": "fc2.bias",
         "out.weight": "out.weight", "out.bias": "out.bias"}


def read_safetensors(path):
    """{name: float32 array} of a safetensors file (an 8-byte little-endian header size, a JSON
    header, then the raw little-endian data)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise SystemExit(f"error: {path}: expected at least 8 bytes, found {len(raw)}")
    (size,) = struct.unpack("<Q", raw[:8])
    if 8 + size > len(raw):
        raise SystemExit(f"error: {path}: header of {size} bytes runs past the end of the file ({len(raw)} bytes)")
    header = json.loads(raw[8:8 + size])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            raise SystemExit(f"error: {path}: tensor {name} has dtype {entry['dtype']}, expected F32")
        begin, end = entry["data_offsets"]
        tensors[name] = np.frombuffer(raw, dtype="<f4", count=(end - begin) // 4, offset=8 + size + begin).reshape(
            entry["shape"])
    return tensors


def load_weights(model, path):
    tensors = read_safetensors(path)
    state = {NAMES[name]: torch.from_numpy(value.copy()) for name, value in tensors.items() if name in NAMES}
    missing = set(NAMES.values()) - set(state)
    if missing:
        raise SystemExit(f"error: {path}: missing tensors for {sorted(missing)}")
    model.load_state_dict(state)


def pgd_attack(model, x, y):
    """TRADES' _pgd_whitebox: the adversarial examples of one batch."""
    x_pgd = x.clone() + torch.empty_like(x).uniform_(-EPS, EPS)
    x_pgd.requires_grad_(True)
    for _ in range(STEPS):
        loss = F.cross_entropy(model(x_pgd), y)
        loss.backward()
        with torch.no_grad():
            x_pgd = x_pgd + STEP * x_pgd.grad.sign()
            x_pgd = x + torch.clamp(x_pgd - x, -EPS, EPS)
            x_pgd = torch.clamp(x_pgd, 0.0, 1.0)
        x_pgd.requires_grad_(True)
    return x_pgd.detach()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="flexnn fmnist-small weights (safetensors); default: a fresh model")
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--limit", type=int, default=0, help="attack only the first N test images (0: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the result to this JSON file")
    args = parser.parse_args()
    if args.threads < 1 or args.batch < 1:
        parser.error("--threads and --batch must be positive")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    x_all, y_all = load_split(args.data_dir, "t10k")
    if args.limit > 0:
        x_all, y_all = x_all[:args.limit], y_all[:args.limit]
    model = FlexibleFMNIST()
    if args.weights:
        load_weights(model, args.weights)
    model.eval()
    # Frozen parameters, so neither side computes weight gradients (TRADES' script computes and
    # discards them; freezing only makes PyTorch faster).
    for p in model.parameters():
        p.requires_grad_(False)

    clean = robust = 0
    attack_s = 0.0
    for start in range(0, len(y_all), args.batch):
        x, y = x_all[start:start + args.batch], y_all[start:start + args.batch]
        with torch.no_grad():
            clean += (model(x).argmax(1) == y).sum().item()
        t0 = time.perf_counter()
        x_adv = pgd_attack(model, x, y)
        with torch.no_grad():
            robust += (model(x_adv).argmax(1) == y).sum().item()
        attack_s += time.perf_counter() - t0

    n = len(y_all)
    result = {"framework": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(), "images": n,
              "batch": args.batch, "pgd_s": attack_s, "images_per_s": n / attack_s,
              "clean_accuracy": 100.0 * clean / n, "pgd_accuracy": 100.0 * robust / n}
    print(json.dumps(result))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
