#!/usr/bin/env python3
"""Check a restored model folder against the folder it came from.

    scripts/check_folder.py ORIG_FOLDER RESTORED_FOLDER [--max-rel-rmse X]

RESTORED_FOLDER is what `qins convert ORIG_FOLDER` then `qins restore` wrote.
With numpy alone (no safetensors package), this checks that:
- the weights are named as Hugging Face names them: model.safetensors, or
  model-0000i-of-0000n.safetensors shards listed by model.safetensors.index.json;
- every header is well formed (offsets tile the data, sizes match dtypes,
  every dtype of the safetensors specification, F4 and F6 packed);
- the index agrees with the shards: every weight_map entry is in its shard,
  every shard tensor is listed, no other .safetensors file is there, and
  metadata.total_size is the sum of the tensor bytes;
- every tensor of the original is there with the same shape; floating-point
  tensors in the restored dtype (config.json's torch_dtype), within
  --max-rel-rmse of the original (default 0.05), all finite; others (FP8,
  FP6, FP4, C64, integers, and the NAME_scale/NAME_scale_inv of an FP8, FP6
  or FP4 tensor NAME) byte-identical;
- every other file of the original (config, tokenizer, ...) is there and
  byte-identical, except config.json, byte-identical but for the value of
  its torch_dtype (or added torch_dtype); and the restored folder holds
  nothing else.
Exit status 0 when all hold, 1 otherwise.
"""
import argparse
import json
import os
import re
import struct
import sys

import numpy as np

# Bits per element of every dtype of the safetensors specification; F4 and
# F6 elements are packed across the whole tensor, which fills whole bytes.
BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8,
        "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
        "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
        "C64": 64, "F64": 64, "I64": 64, "U64": 64}
NUMPY = {"BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "I16": np.int16, "U16": np.uint16,
         "F16": np.float16, "BF16": np.uint16, "I32": np.int32, "U32": np.uint32, "F32": np.float32,
         "I64": np.int64, "U64": np.uint64, "F64": np.float64}
FLOATS = {"F16", "BF16", "F32", "F64"}
# FP8, FP6 and FP4: their scales (NAME_scale, NAME_scale_inv) keep their dtype.
LOW_PRECISION = {"F4", "F6_E2M3", "F6_E3M2", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ"}
TORCH = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "float64": "F64"}
WEIGHT_SUFFIXES = (".safetensors", ".safetensors.index.json", ".pth", ".pt", ".ckpt", ".gguf",
                   ".h5", ".msgpack", ".onnx", ".onnx_data", ".tflite", ".ot")

problems = []


def problem(msg):
    problems.append(msg)
    print("FAIL: " + msg)


def header(path):
    """The tensors of a safetensors file: name -> (dtype, shape, begin, end), checked."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        if n > size - 8:
            raise SystemExit(f"{path}: header length {n} past the end of the file")
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    tensors, spans = {}, []
    for name, t in h.items():
        count = int(np.prod(t["shape"], dtype=np.int64)) if t["shape"] else 1
        b, e = t["data_offsets"]
        if t["dtype"] not in BITS:
            print(f"note: {path}: {name}: dtype {t['dtype']} not known here; compared by bytes only")
        elif count * BITS[t["dtype"]] % 8 or e - b != count * BITS[t["dtype"]] // 8:
            problem(f"{path}: {name}: {e - b} bytes for {t['dtype']} {t['shape']}")
        tensors[name] = (t["dtype"], list(t["shape"]), 8 + n + b, 8 + n + e)
        spans.append((b, e))
    spans.sort()
    at = 0
    for b, e in spans:
        if b != at:
            problem(f"{path}: data offsets do not tile the data (gap or overlap at {at})")
        at = e
    if at != size - 8 - n:
        problem(f"{path}: tensors end at {at}, data section is {size - 8 - n} bytes")
    return tensors


def checkpoint(folder):
    """name -> (file, dtype, shape, begin, end) for the weights of a folder."""
    files = sorted(os.listdir(folder))
    indexes = [f for f in files if f.endswith(".safetensors.index.json")]
    if "model.safetensors.index.json" in indexes:
        indexes = ["model.safetensors.index.json"]
    if len(indexes) == 1:
        with open(os.path.join(folder, indexes[0])) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        shards = [f for f in files if f.endswith(".safetensors")]
        if len(shards) != 1:
            raise SystemExit(f"{folder}: no index and {len(shards)} .safetensors files")
    out = {}
    for s in shards:
        for name, t in header(os.path.join(folder, s)).items():
            out[name] = (os.path.join(folder, s),) + t
    return out


def check_restored_weights(folder):
    files = sorted(f for f in os.listdir(folder) if f.endswith(".safetensors"))
    index_path = os.path.join(folder, "model.safetensors.index.json")
    if not os.path.exists(index_path):
        if files != ["model.safetensors"]:
            problem(f"{folder}: no index, and the weights are {files}, not model.safetensors")
        return
    with open(index_path) as f:
        index = json.load(f)
    wm = index["weight_map"]
    shards = sorted(set(wm.values()))
    n = len(shards)
    want = [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    if shards != want:
        problem(f"{index_path}: shards {shards}, want {want}")
    if files != shards:
        problem(f"{folder}: .safetensors files {files}, the index lists {shards}")
    total = 0
    for s in shards:
        tensors = header(os.path.join(folder, s))
        listed = {name for name, shard in wm.items() if shard == s}
        for name in listed - tensors.keys():
            problem(f"{index_path}: {name} listed in {s}, which does not hold it")
        for name in tensors.keys() - listed:
            problem(f"{index_path}: {name} is in {s} but not listed there")
        total += sum(e - b for _, _, b, e in tensors.values())
    if index.get("metadata", {}).get("total_size") != total:
        problem(f"{index_path}: metadata.total_size {index.get('metadata', {}).get('total_size')}, the shards hold {total} bytes")


def values(entry):
    path, dtype, shape, b, e = entry
    raw = np.fromfile(path, dtype=np.uint8, count=e - b, offset=b)
    if dtype not in NUMPY:
        return raw, raw
    a = raw.view(NUMPY[dtype])
    if dtype == "BF16":
        a = (a.astype(np.uint32) << 16).view(np.float32)
    return raw, a.reshape(shape)


def check_tensors(orig, restored, dtype, max_rel_rmse):
    a_all, b_all = checkpoint(orig), checkpoint(restored)
    for name in sorted(b_all.keys() - a_all.keys()):
        problem(f"{restored}: {name} is not in the original")
    worst = (0.0, "")
    scales = {n + suffix for n, a in a_all.items() if a[1] in LOW_PRECISION
              for suffix in ("_scale", "_scale_inv")}
    for name, a in sorted(a_all.items()):
        b = b_all.get(name)
        if b is None:
            problem(f"{restored}: {name} is missing")
            continue
        if a[2] != b[2]:
            problem(f"{name}: shape {b[2]}, original {a[2]}")
            continue
        ra, va = values(a)
        rb, vb = values(b)
        if a[1] not in FLOATS or a[1] not in NUMPY or name in scales:
            if b[1] != a[1] or not np.array_equal(ra, rb):
                problem(f"{name}: {a[1]} tensor not copied byte for byte")
            continue
        if b[1] != dtype:
            problem(f"{name}: dtype {b[1]}, want the restored dtype {dtype}")
        va, vb = va.astype(np.float64), vb.astype(np.float64)
        if not np.all(np.isfinite(vb)):
            problem(f"{name}: non-finite values")
            continue
        rms = np.sqrt(np.mean(va * va)) if va.size else 0.0
        err = np.sqrt(np.mean((va - vb) ** 2)) if va.size else 0.0
        rel = err / rms if rms > 0 else (0.0 if err == 0 else float("inf"))
        if rel > max_rel_rmse:
            problem(f"{name}: rel_rmse {rel:.4g} above {max_rel_rmse}")
        worst = max(worst, (rel, name))
    return len(a_all), worst


def side_files(folder):
    out = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            low = f.lower()
            if f.startswith(".") or low.endswith(WEIGHT_SUFFIXES) or (
                    low.startswith("pytorch_model") and re.search(r"\.bin(\.index\.json)?$", low)):
                continue
            out.append(os.path.relpath(os.path.join(root, f), folder))
    return out


def strip_dtype(x):
    if isinstance(x, dict):
        return {k: strip_dtype(v) for k, v in x.items() if k not in ("torch_dtype", "dtype")}
    if isinstance(x, list):
        return [strip_dtype(v) for v in x]
    return x


def check_side_files(orig, restored):
    """Returns the dtype config.json names, or None."""
    dtype = None
    want = side_files(orig)
    got = side_files(restored)
    for rel in sorted(set(got) - set(want)):
        problem(f"{restored}: {rel} is not in the original")
    for rel in want:
        pa, pb = os.path.join(orig, rel), os.path.join(restored, rel)
        if not os.path.isfile(pb):
            problem(f"{restored}: {rel} is missing")
            continue
        a, b = open(pa, "rb").read(), open(pb, "rb").read()
        if rel == "config.json":
            ja, jb = json.loads(a), json.loads(b)
            dtype = TORCH.get(jb.get("torch_dtype"))
            if dtype is None:
                problem(f"{pb}: torch_dtype {jb.get('torch_dtype')!r} is not a float dtype")
            # The original with its dtype values replaced should be the
            # restored file byte for byte; without one, it was added.
            swapped, n = re.subn(rb'("(?:torch_)?dtype"\s*:\s*)"[^"]*"',
                                 lambda m: m.group(1) + json.dumps(jb.get("torch_dtype")).encode(), a)
            if (n and swapped != b) or strip_dtype(ja) != strip_dtype(jb):
                problem(f"{pb}: differs from the original beyond torch_dtype")
        elif a != b:
            problem(f"{pb}: differs from the original")
    return len(want), dtype


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("orig")
    p.add_argument("restored")
    p.add_argument("--dtype", help="the restored dtype (default: config.json's torch_dtype, else F32)")
    p.add_argument("--max-rel-rmse", type=float, default=0.05)
    args = p.parse_args()
    n_side, dtype = check_side_files(args.orig, args.restored)
    dtype = args.dtype or dtype or "F32"
    check_restored_weights(args.restored)
    n, worst = check_tensors(args.orig, args.restored, dtype, args.max_rel_rmse)
    if problems:
        print(f"{args.restored}: {len(problems)} problem(s)")
        return 1
    print(f"{args.restored}: OK: {n} tensors ({dtype}; worst rel_rmse {worst[0]:.4g} in {worst[1]}), "
          f"index and shards agree, {n_side} side files equal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
