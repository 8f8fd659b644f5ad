#!/usr/bin/env python3
"""scripts/eval_ref.py against the independent torch goldens of the newer
architectures.

    scripts/arch_torch_check.py [GOLDEN_DIR]

GOLDEN_DIR defaults to convert/eval/internal/model/testdata/golden. Each
torch-*.json there (written by scripts/model_ref_torch.py --arch from
transformers' modeling code, the same files the Go test TestGoldenTorchArch
reads) holds a config.json, the parameters of the generator of its weights,
24 ids and torch's float32 logits at every position. This script makes the
same weights (bit for bit), runs eval_ref.py's float64 forward pass and
requires |eval_ref - torch| / (1 + |torch|) <= 1e-4 on every logit: the two
Python references, written separately, agree on Qwen3, Qwen3-MoE, Mixtral,
Gemma 2 and Gemma 3 (windows, layer patterns, local RoPE, caps, routing and
the config classes' defaults). Then each of eval_ref.py's --break layout
errors must exceed that tolerance on at least one golden. Numpy only; it
runs in scripts/eval-check.

Exit status 0 when all agree and every layout error is seen, 1 otherwise.
"""

import glob
import json
import math
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_ref  # noqa: E402

TOL = 1e-4
M64 = (1 << 64) - 1


def det_tensor(name, shape, scale, offset):
    """The generator of model_ref_torch.py's det_tensor: a 64-bit LCG seeded
    by the FNV-1a hash of the name; offset + (2u - 1) sqrt(3) scale in
    float64, rounded to float32."""
    seed = 0xCBF29CE484222325
    for b in name.encode():
        seed = ((seed ^ b) * 0x100000001B3) & M64
    n = math.prod(shape)
    out = np.empty(n, dtype=np.float64)
    r3 = math.sqrt(3)
    for i in range(n):
        seed = (seed * 6364136223846793005 + 1442695040888963407) & M64
        out[i] = offset + (2 * ((seed >> 11) / 9007199254740992.0) - 1) * r3 * scale
    return out.astype(np.float32).reshape(shape)


def worst(golden, folder, broken=None):
    """The largest relative difference from torch; inf when eval_ref.py
    cannot run the model (a tensor of another shape than it expects)."""
    try:
        cfg = eval_ref.Config(golden["config"], "config.json", broken)
        m = eval_ref.Model(cfg, eval_ref.Checkpoint(folder))
        got = m.run(golden["ids"], 0, [])[golden["positions"]]
    except (eval_ref.InputError, ValueError) as e:
        print("     %s: eval_ref.py: %s" % (golden.get("case"), e))
        return math.inf
    want = np.asarray(golden["logits"], dtype=np.float64)
    return float(np.max(np.abs(got - want) / (1 + np.abs(want))))


def main(argv):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    gdir = argv[0] if argv else os.path.join(root, "convert", "eval", "internal", "model", "testdata", "golden")
    paths = sorted(glob.glob(os.path.join(gdir, "torch-*.json")))
    if not paths:
        print("arch_torch_check: no torch-*.json in %s" % gdir, file=sys.stderr)
        return 1
    ok = True
    seen = {b: [] for b in eval_ref.BREAKS}
    with tempfile.TemporaryDirectory() as tmp:
        for path in paths:
            with open(path) as f:
                g = json.load(f)
            case = os.path.basename(path)[:-5]
            folder = os.path.join(tmp, case)
            os.makedirs(folder)
            eval_ref.write_safetensors(os.path.join(folder, "model.safetensors"),
                                       sorted((n, det_tensor(n, s, sc, off)) for n, s, sc, off in g["tensors"]))
            d = worst(g, folder)
            good = d <= TOL
            ok &= good
            print("%s %-16s eval_ref.py vs torch: %.3g (relative, tolerance %g)" % ("ok  " if good else "FAIL", case, d, TOL))
            for b in eval_ref.BREAKS:
                if worst(g, folder, b) > TOL:
                    seen[b].append(case)
    for b, cases in seen.items():
        if cases:
            print("ok   --break %-20s differs from torch on %s" % (b, " ".join(cases)))
        else:
            print("FAIL --break %-20s is within tolerance of every torch golden" % b)
            ok = False
    print("arch_torch_check: %s" % ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
