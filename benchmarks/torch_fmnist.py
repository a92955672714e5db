#!/usr/bin/python3
"""PyTorch reference for flexnn's end-to-end Fashion-MNIST speed targets: the paper's small net in
"standard" flexible mode, one timed training epoch and one timed clean + FGSM evaluation.

    torch_fmnist.py [--data-dir DIR] [--threads N] [--epochs N] [--seed N] [--json PATH]

Written as a PyTorch user naturally would (nn.Module, DataLoader over a TensorDataset, optim.SGD),
so the times are what flexnn is measured against. Meant for Debian's python3-torch (1.13, CPU):
run it with /usr/bin/python3. Prints one JSON object on stdout; progress goes to stderr.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset
except ImportError as missing:
    print(f"error: PyTorch is not installed ({missing}); run `bash tools/setup.sh --bench` "
          "and use Debian's /usr/bin/python3", file=sys.stderr)
    sys.exit(2)

from torch_cpu_ops import write_json

BATCH = 100
FGSM_EPS = 0.1
MEAN, STD = 0.2860, 0.3530


def read_idx(path, magic, dims):
    """The uint8 payload of a gzipped big-endian IDX file, checked against its magic number and
    the expected number of dimensions; shape from the header."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise SystemExit(f"error: cannot read {path}: {err}")
    header = 4 + 4 * dims
    if len(raw) < header:
        raise SystemExit(f"error: {path}: expected an IDX header of {header} bytes, found {len(raw)} bytes")
    found = int.from_bytes(raw[0:4], "big")
    if found != magic:
        raise SystemExit(f"error: {path}: expected IDX magic {magic} at byte 0, found {found}")
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise SystemExit(f"error: {path}: shape {shape} needs {size} data bytes after byte {header}, "
                         f"found {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_split(data_dir, prefix):
    """(images float32 [n, 1, 28, 28] in [0, 1], labels int64 [n]) of the 'train' or 't10k' split."""
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz"), 2051, 3)
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz"), 2049, 1)
    if len(images) != len(labels):
        raise SystemExit(f"error: {data_dir}: {prefix} has {len(images)} images but {len(labels)} labels")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


class FlexibleFMNIST(nn.Module):
    """Normalise -> flexible layer (conv 1->12 k5 | max-pool 5 stride 1 of the input, blended per unit
    by a learned threshold, Eq. 1) -> ReLU -> 6912 -> 120 -> 60 -> 10 logits."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 12, 5)
        self.pool = nn.MaxPool2d(5, stride=1)
        self.threshold = nn.Parameter(torch.randn(12, 24, 24) * 0.1 + 0.5)
        self.fc1 = nn.Linear(12 * 24 * 24, 120)
        self.fc2 = nn.Linear(120, 60)
        self.out = nn.Linear(60, 10)

    def forward(self, x):
        x = (x - MEAN) / STD
        c = self.conv(x)
        m = self.pool(x)  # [n, 1, 24, 24], broadcast over the 12 channels
        d = self.threshold - m
        f = torch.sigmoid(50 * d) * m + torch.sigmoid(-50 * d) * c
        h = torch.flatten(F.relu(f), 1)
        return self.out(F.relu(self.fc2(F.relu(self.fc1(h)))))


def train_epoch(model, loader, optimizer):
    """One pass over the loader; returns the mean training loss."""
    model.train()
    total, batches = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
        batches += 1
    return total / batches


def evaluate(model, loader):
    """(clean accuracy, FGSM accuracy at FGSM_EPS) in eval mode: per batch one clean forward, the
    input gradient of the loss, and one forward of the adversarial images."""
    model.eval()
    clean = adversarial = count = 0
    for x, y in loader:
        x = x.clone().requires_grad_(True)
        logits = model(x)
        (grad,) = torch.autograd.grad(F.cross_entropy(logits, y), x)
        with torch.no_grad():
            x_adv = torch.clamp(x + FGSM_EPS * grad.sign(), 0, 1)
            clean += (logits.argmax(1) == y).sum().item()
            adversarial += (model(x_adv).argmax(1) == y).sum().item()
        count += len(y)
    return clean / count, adversarial / count


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist",
                        help="folder holding the gzipped Fashion-MNIST IDX files")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--epochs", type=int, default=1, help="training epochs, each timed (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="torch.manual_seed (default 0)")
    parser.add_argument("--json", help="also write the result to this JSON file")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, found {args.threads}")
    if args.epochs < 1:
        parser.error(f"--epochs must be at least 1, found {args.epochs}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    train_x, train_y = load_split(args.data_dir, "train")
    test_x, test_y = load_split(args.data_dir, "t10k")
    train_loader = DataLoader(TensorDataset(train_x, train_y), batch_size=BATCH, shuffle=True)
    test_loader = DataLoader(TensorDataset(test_x, test_y), batch_size=BATCH)

    model = FlexibleFMNIST()
    decayed = [p for name, p in model.named_parameters() if name != "threshold"]
    optimizer = torch.optim.SGD([{"params": decayed, "weight_decay": 0.006},
                                 {"params": [model.threshold], "weight_decay": 0.0}], lr=0.001, momentum=0.9)

    epoch_s = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        loss = train_epoch(model, train_loader, optimizer)
        epoch_s.append(time.perf_counter() - start)
        print(f"epoch {epoch}: loss {loss:.4f}, {epoch_s[-1]:.2f} s", file=sys.stderr, flush=True)
    start = time.perf_counter()
    clean, fgsm = evaluate(model, test_loader)
    eval_s = time.perf_counter() - start

    result = {"framework": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(),
              "train_epoch_s": epoch_s, "eval_s": eval_s, "clean_accuracy": clean, "fgsm_accuracy": fgsm,
              "train_images_per_s": len(train_y) * len(epoch_s) / sum(epoch_s)}
    print(json.dumps(result))
    if args.json:
        write_json(args.json, result)


if __name__ == "__main__":
    main()
