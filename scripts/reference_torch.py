#!/usr/bin/env python3
"""The QINS formula written plainly in PyTorch: the baseline `scripts/bench`
times `qins convert` against.

    scripts/reference_torch.py CHECKPOINT OUT

For every floating-point tensor of rank >= 2 of CHECKPOINT (a folder with
model.safetensors.index.json, or one .safetensors file) it computes, with
torch on the CPU in float32 as a plain implementation would, log_min and
log_max of ln|w| over |w| > 1e-8, the codes round(255 - 254 * (ln|w| -
log_min) / (log_max - log_min)) clamped to [1, 255] and the signs (0 for
exact zeros), and appends codes and signs to OUT as uint8 and int8: the same
work as `qins convert`, tensor by tensor. It is a speed baseline: float32
logarithms can move a code by one at a rounding boundary, which
scripts/parity.py (float64, numpy) would not accept. Needs Debian's
python3-torch.
"""
import json
import os
import struct
import sys
import time

import numpy as np
import torch

DTYPES = {"F32": (np.float32, None), "F64": (np.float64, None),
          "F16": (np.float16, None), "BF16": (np.uint16, "bf16")}


def tensors(path):
    """Yields (name, dtype, shape, file, offset) for every tensor."""
    if os.path.isdir(path):
        index = os.path.join(path, "model.safetensors.index.json")
        if os.path.exists(index):
            shards = sorted(set(json.load(open(index))["weight_map"].values()))
            files = [os.path.join(path, s) for s in shards]
        else:
            files = [os.path.join(path, f) for f in sorted(os.listdir(path)) if f.endswith(".safetensors")]
    else:
        files = [path]
    for f in files:
        with open(f, "rb") as fh:
            n = struct.unpack("<Q", fh.read(8))[0]
            header = json.loads(fh.read(n))
        header.pop("__metadata__", None)
        for name, t in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            yield name, t["dtype"], t["shape"], f, 8 + n + t["data_offsets"][0]


def load(dtype, shape, f, offset):
    np_dtype, special = DTYPES[dtype]
    count = int(np.prod(shape)) if shape else 1
    a = np.fromfile(f, dtype=np_dtype, count=count, offset=offset)
    if special == "bf16":
        t = torch.from_numpy(a.astype(np.int32) << 16).view(torch.float32)
    else:
        t = torch.from_numpy(a)
    return t.to(torch.float32)


def encode(w):
    a = w.abs()
    sig = a > 1e-8
    if sig.any():
        la = torch.log(a[sig])
        lo, hi = la.min().item(), la.max().item()
    else:
        lo = hi = float(torch.log(a.max()).item()) if a.max() > 0 else 0.0
    if hi > lo:
        codes = torch.round(255 - 254 * (torch.log(a) - lo) / (hi - lo)).clamp(1, 255)
        codes = torch.where(sig, codes, torch.full_like(codes, 255))
    else:
        codes = torch.where(sig, torch.ones_like(a), torch.full_like(a, 255))
    return codes.to(torch.uint8), torch.sign(w).to(torch.int8), lo, hi


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    src, out = sys.argv[1:]
    start, n = time.time(), 0
    with open(out, "wb") as o:
        for name, dtype, shape, f, offset in tensors(src):
            if dtype not in DTYPES or len(shape) < 2:
                continue
            codes, signs, _, _ = encode(load(dtype, shape, f, offset))
            o.write(codes.numpy().tobytes())
            o.write(signs.numpy().tobytes())
            n += codes.numel()
        o.flush()
        os.fsync(o.fileno())
    print("%d elements in %.1f s" % (n, time.time() - start), file=sys.stderr)


if __name__ == "__main__":
    main()
