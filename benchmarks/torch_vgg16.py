#!/usr/bin/python3
"""PyTorch reference for bench_vgg16_train: the paper's single-flexible-layer VGG16 (Supporting
Information) trained on synthetic CIFAR-10-sized batches, timed step by step after warm-up.

    torch_vgg16.py [--flex single|none] [--batch 100] [--steps 3] [--warmup 1] [--threads 2] [--seed 1]

Written as a PyTorch user naturally would (nn.Sequential blocks as in the authors'
network_definitions.py, the flexible layer as a module with a learned threshold, optim.SGD with the
paper's two parameter groups), so the times are what flexnn is measured against. Meant for Debian's
python3-torch (1.13, CPU): run it with /usr/bin/python3. Prints one JSON object on stdout.
"""
import argparse
import json
import resource
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as missing:
    print(f"error: PyTorch is not installed ({missing}); run `bash tools/setup.sh --bench` "
          "and use Debian's /usr/bin/python3", file=sys.stderr)
    sys.exit(2)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # the authors' normalisation, as in flexnn's vgg16


class FlexibleLayer(nn.Module):
    """Conv 64->64 3x3 unpadded | max-pool 3x3 stride 1 of the input, blended per unit by a learned
    threshold T ~ N(0, 1) (Eq. 1: pool where m < T, sharpness 50); `flexible=False` is the baseline,
    the convolution alone."""

    def __init__(self, size, flexible):
        super().__init__()
        self.conv = nn.Conv2d(64, 64, 3)
        self.flexible = flexible
        if flexible:
            self.pool = nn.MaxPool2d(3, stride=1)
            self.threshold = nn.Parameter(torch.randn(64, size - 2, size - 2))

    def forward(self, x):
        c = self.conv(x)
        if not self.flexible:
            return c
        m = self.pool(x)
        d = self.threshold - m
        return torch.sigmoid(50 * d) * m + torch.sigmoid(-50 * d) * c


def unit(c_in, c_out):
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out, momentum=0.1), nn.ReLU()]


class VGG16(nn.Module):
    def __init__(self, flexible, size=32):
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN).view(3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(3, 1, 1))
        self.block1 = nn.Sequential(*unit(3, 64), FlexibleLayer(size, flexible), nn.BatchNorm2d(64, momentum=0.1),
                                    nn.ReLU(), nn.Dropout2d(0.3))
        blocks, c_in = [], 64
        for channels, dropout in (((128, 128), 0.4), ((256,) * 3, 0.4), ((512,) * 3, 0.4), ((512,) * 3, 0.5)):
            layers = []
            for c_out in channels:
                layers += unit(c_in, c_out)
                c_in = c_out
            blocks.append(nn.Sequential(*layers, nn.MaxPool2d(2, 2), nn.Dropout2d(dropout)))
        self.block2, self.block3, self.block4, self.block5 = blocks
        self.fc = nn.Sequential(nn.Linear(512, 100), nn.Dropout(0.5), nn.BatchNorm1d(100, momentum=0.1), nn.ReLU(),
                                nn.Dropout(0.5), nn.Linear(100, 10))

    def forward(self, x):
        h = (x - self.mean) / self.std
        for block in (self.block1, self.block2, self.block3, self.block4, self.block5):
            h = block(h)
        return self.fc(torch.flatten(h, 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flex", choices=("single", "none"), default="single")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=3, help="timed steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.batch < 1 or args.steps < 1 or args.warmup < 0 or args.threads < 1:
        parser.error("--batch, --steps and --threads must be positive, --warmup not negative")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    model = VGG16(args.flex == "single")
    model.train()
    decayed = [p for name, p in model.named_parameters() if not name.endswith("threshold")]
    thresholds = [p for name, p in model.named_parameters() if name.endswith("threshold")]
    optimizer = torch.optim.SGD([{"params": decayed, "weight_decay": 0.006},
                                 {"params": thresholds, "weight_decay": 0.0}], lr=0.001, momentum=0.9)
    images = torch.rand(args.batch, 3, 32, 32)
    labels = torch.arange(args.batch) % 10

    step_s, losses = [], []
    for step in range(args.warmup + args.steps):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if step >= args.warmup:
            step_s.append(time.perf_counter() - start)

    result = {"framework": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(),
              "flex": args.flex, "batch": args.batch, "step_s": step_s, "loss": losses,
              "images_per_s": args.batch * len(step_s) / sum(step_s),
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
