#!/usr/bin/env python3
"""Checks that safetensors files move between flexnn and PyTorch both ways (not run by CI).

    safetensors_torch_roundtrip.py OUT_DIR [FLEXNN_FILE]

Writes OUT_DIR/torch_written.safetensors with safetensors.torch.save_file, holding the reference
tensors below, for flexnn to read. If FLEXNN_FILE is given (a file flexnn wrote with the same
reference tensors), loads it with safetensors.torch.load_file and checks names, dtypes, shapes and
values bit for bit. Exits 0 with a 'skipped' message when torch or safetensors is not installed.
"""
import sys
from pathlib import Path

try:
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
except ImportError as missing:
    print(f"skipped: {missing}")
    sys.exit(0)


def reference_tensors():
    return {
        "fc.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3) * 0.5 - 1.0,
        "steps": torch.tensor([-1, 0, 2**40], dtype=torch.int64),
        "scale": torch.tensor(1.0, dtype=torch.bfloat16),  # 0-dim scalar
        "empty": torch.zeros((0, 5), dtype=torch.uint8),
        "mask": torch.tensor([True, False, True]),
    }


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    written = out_dir / "torch_written.safetensors"
    save_file(reference_tensors(), str(written), metadata={"format": "pt"})
    print(f"wrote {written}")

    if len(sys.argv) == 3:
        flexnn_file = sys.argv[2]
        loaded = load_file(flexnn_file)
        expected = reference_tensors()
        assert loaded.keys() == expected.keys(), f"names {sorted(loaded)} != {sorted(expected)}"
        for name, want in expected.items():
            got = loaded[name]
            assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
            assert got.shape == want.shape, f"{name}: shape {tuple(got.shape)} != {tuple(want.shape)}"
            assert torch.equal(got, want), f"{name}: values differ:\n{got}\n!= {want}"
        with safe_open(flexnn_file, framework="pt") as f:
            print(f"read {flexnn_file}: {len(loaded)} tensors match, metadata {f.metadata()}")


if __name__ == "__main__":
    main()
