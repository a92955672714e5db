#!/usr/bin/env python3
"""Checks that checkpoints move between flexnn and PyTorch both ways (optional; not run by CI).

    torch_checkpoint_interop.py FLEXNN_DEMO_CHECKPOINT OUT_DIR

1. Loads the checkpoint written by `flexnn demo` (runs/demo/small_cnn.safetensors) into the same network
   built in PyTorch, with load_state_dict(strict=True): every name, shape and dtype must match.
2. Writes OUT_DIR/torch_conv_bn.safetensors from a PyTorch Conv2d + BatchNorm2d state_dict (float32
   weights and the int64 num_batches_tracked), which flexnn's load_checkpoint reads into
   nn::Sequential{Conv2d(1, 4, 3), BatchNorm2d(4)}.
Needs torch and the PyPI safetensors package (e.g. a venv with --system-site-packages over Debian's
python3-torch, then `pip install safetensors`).
"""
import sys
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    state = load_file(sys.argv[1])
    small_cnn = nn.Sequential(nn.Conv2d(1, 8, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 8 * 8, 4))
    small_cnn.load_state_dict(state, strict=True)
    print(f"PyTorch loaded {sys.argv[1]} strictly: {sorted(state)}")

    torch.manual_seed(0)
    conv_bn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4))
    conv_bn(torch.rand(2, 1, 5, 5))  # moves the running statistics and num_batches_tracked
    out = Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in conv_bn.state_dict().items()}, str(out / "torch_conv_bn.safetensors"),
              metadata={"format": "pt"})
    print(f"wrote {out / 'torch_conv_bn.safetensors'} for flexnn to load")


if __name__ == "__main__":
    main()
