#!/usr/bin/python3
"""Golden logits for convert/eval/internal/model's tests, from an independent torch forward pass.

Written from Hugging Face transformers' formulas (modeling_llama, modeling_mistral,
modeling_phi3, modeling_qwen2, modeling_rope_utils), not from the Go code: float32
RMSNorm, rotate-half RoPE (default, linear, llama3, longrope with its attention
factor and partial_rotary_factor), GQA, causal (and sliding-window) attention with
softmax in float32, SiLU-gated MLP, tied embeddings.

It writes, under convert/eval/internal/model/testdata/:
  - tiny synthetic checkpoints (config.json + model.safetensors) for Qwen2 (q/k/v
    biases, BF16), Mistral (sliding window, head_dim != hidden/heads) and Llama
    (llama3 rope_scaling, attention_bias, mlp_bias, tied embeddings);
  - config.json files that put the stories260K weights under Phi-3 with longrope;
  - golden/<case>.json: the token ids, some positions and their logits.

Usage (from the repository root): /usr/bin/python3 scripts/model_ref_torch.py
"""
import json
import math
import os
import struct
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "convert", "model", "testdata")
STORIES = os.path.join(ROOT, "testdata", "stories260K")
SHARED_PHI3 = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "llm", "stories260K-phi3")


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        raw = bytearray(data[base + b:base + e])
        if t["dtype"] == "F32":
            v = torch.frombuffer(raw, dtype=torch.float32)
        elif t["dtype"] == "BF16":
            v = (torch.frombuffer(raw, dtype=torch.int16).to(torch.int32) << 16).view(torch.float32)
        else:
            raise SystemExit(f"{path}: {name}: dtype {t['dtype']} not handled")
        out[name] = v.reshape(t["shape"]).clone()
    return out


def write_safetensors(path, tensors, dtype):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        if dtype == "BF16":
            raw = t.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
        else:
            raw = t.to(torch.float32).numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


class Cfg:
    def __init__(self, d):
        self.d = d
        self.arch = d["architectures"][0]
        self.hidden = d["hidden_size"]
        self.heads = d["num_attention_heads"]
        self.kv = d.get("num_key_value_heads") or self.heads
        self.head_dim = d.get("head_dim") or self.hidden // self.heads
        self.layers = d["num_hidden_layers"]
        self.eps = d.get("rms_norm_eps", 1e-6)
        self.theta = d.get("rope_theta", 10000.0)
        self.rot = int(self.head_dim * d.get("partial_rotary_factor", 1.0))
        self.rs = d.get("rope_scaling") or {}
        self.max_pos = d["max_position_embeddings"]
        self.window = None
        if self.arch in ("MistralForCausalLM", "Phi3ForCausalLM"):
            self.window = d.get("sliding_window")
        self.tie = d.get("tie_word_embeddings", False)


def inv_freq(c, seq_len):
    """modeling_rope_utils: (inverse frequencies, attention scaling) for seq_len positions."""
    dim, base = c.rot, c.theta
    shape = torch.arange(0, dim, 2, dtype=torch.int64).float() / dim
    kind = c.rs.get("rope_type", c.rs.get("type", "default"))
    if kind in ("default", "dynamic"):
        return 1.0 / (base ** shape), 1.0
    if kind == "linear":
        return (1.0 / (base ** shape)) / c.rs["factor"], 1.0
    if kind == "llama3":
        inv = 1.0 / (base ** shape)
        factor, low, high = c.rs["factor"], c.rs["low_freq_factor"], c.rs["high_freq_factor"]
        old = c.rs["original_max_position_embeddings"]
        low_wave, high_wave = old / low, old / high
        wave = 2 * math.pi / inv
        scaled = torch.where(wave > low_wave, inv / factor, inv)
        smooth = (old / wave - low) / (high - low)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wave < high_wave) * ~(wave > low_wave)
        return torch.where(medium, smoothed, scaled), 1.0
    if kind in ("longrope", "su"):
        orig = c.d.get("original_max_position_embeddings")
        factor = c.rs.get("factor")
        if orig is not None:
            factor = c.max_pos / orig
        else:
            orig = c.max_pos
        att = c.rs.get("attention_factor")
        if att is None:
            att = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig))
        ext = c.rs["long_factor"] if seq_len > orig else c.rs["short_factor"]
        return 1.0 / (torch.tensor(ext, dtype=torch.float32) * base ** shape), att
    raise SystemExit(f"rope type {kind}")


def rms(x, w, eps):
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def linear(x, W, name, bias=False):
    y = x @ W[name + ".weight"].T
    if bias:
        y = y + W[name + ".bias"]
    return y


def forward(c, W, ids):
    T, hd, nh, nkv = len(ids), c.head_dim, c.heads, c.kv
    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    inv, att = inv_freq(c, T)
    freqs = torch.arange(T).float()[:, None] * inv[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos() * att, emb.sin() * att
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    allowed = j <= i
    if c.window is not None:
        allowed = allowed & (j > i - c.window)
    mask = torch.where(allowed, 0.0, torch.finfo(torch.float32).min)
    qkv_bias = c.arch == "Qwen2ForCausalLM" or c.d.get("attention_bias", False)
    o_bias = c.arch == "LlamaForCausalLM" and c.d.get("attention_bias", False)
    mlp_bias = c.arch == "LlamaForCausalLM" and c.d.get("mlp_bias", False)
    for l in range(c.layers):
        p = f"model.layers.{l}."
        h = rms(x, W[p + "input_layernorm.weight"], c.eps)
        if c.arch == "Phi3ForCausalLM":
            qkv = linear(h, W, p + "self_attn.qkv_proj")
            q, k, v = qkv[:, :nh * hd], qkv[:, nh * hd:(nh + nkv) * hd], qkv[:, (nh + nkv) * hd:]
        else:
            q = linear(h, W, p + "self_attn.q_proj", qkv_bias)
            k = linear(h, W, p + "self_attn.k_proj", qkv_bias)
            v = linear(h, W, p + "self_attn.v_proj", qkv_bias)
        q = q.view(T, nh, hd).transpose(0, 1)
        k = k.view(T, nkv, hd).transpose(0, 1)
        v = v.view(T, nkv, hd).transpose(0, 1)
        r = c.rot
        q = torch.cat((q[..., :r] * cos + rotate_half(q[..., :r]) * sin, q[..., r:]), dim=-1)
        k = torch.cat((k[..., :r] * cos + rotate_half(k[..., :r]) * sin, k[..., r:]), dim=-1)
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        s = (q @ k.transpose(1, 2)) * hd ** -0.5 + mask
        a = torch.softmax(s, dim=-1, dtype=torch.float32) @ v
        a = a.transpose(0, 1).reshape(T, nh * hd)
        x = x + linear(a, W, p + "self_attn.o_proj", o_bias)
        h = rms(x, W[p + "post_attention_layernorm.weight"], c.eps)
        if c.arch == "Phi3ForCausalLM":
            gu = linear(h, W, p + "mlp.gate_up_proj")
            gate, up = gu.chunk(2, dim=-1)
        else:
            gate = linear(h, W, p + "mlp.gate_proj", mlp_bias)
            up = linear(h, W, p + "mlp.up_proj", mlp_bias)
        x = x + linear(torch.nn.functional.silu(gate) * up, W, p + "mlp.down_proj", mlp_bias)
    x = rms(x, W["model.norm.weight"], c.eps)
    head = W.get("lm_head.weight")
    if c.tie or head is None:
        head = W["model.embed_tokens.weight"]
    return x @ head.T


def phi3_weights(W, layers):
    """The Llama-layout weights stacked into Phi-3's fused projections."""
    out = {k: v for k, v in W.items() if ".self_attn." not in k and ".mlp." not in k}
    for l in range(layers):
        p = f"model.layers.{l}."
        out[p + "self_attn.qkv_proj.weight"] = torch.cat([W[p + f"self_attn.{x}_proj.weight"] for x in "qkv"])
        out[p + "self_attn.o_proj.weight"] = W[p + "self_attn.o_proj.weight"]
        out[p + "mlp.gate_up_proj.weight"] = torch.cat([W[p + "mlp.gate_proj.weight"], W[p + "mlp.up_proj.weight"]])
        out[p + "mlp.down_proj.weight"] = W[p + "mlp.down_proj.weight"]
    return out


def synthetic(d, seed, bf16):
    """Random weights for config d, rounded to bfloat16 when bf16."""
    g = torch.Generator().manual_seed(seed)
    c = Cfg(d)
    H, I, V = c.hidden, d["intermediate_size"], d["vocab_size"]
    q, kv = c.heads * c.head_dim, c.kv * c.head_dim

    def rnd(*shape, scale):
        return torch.randn(*shape, generator=g) * scale

    W = {"model.embed_tokens.weight": rnd(V, H, scale=1.0), "model.norm.weight": 1 + rnd(H, scale=0.1)}
    if not c.tie:
        W["lm_head.weight"] = rnd(V, H, scale=H ** -0.5)
    qkv_bias = c.arch == "Qwen2ForCausalLM" or d.get("attention_bias", False)
    for l in range(c.layers):
        p = f"model.layers.{l}."
        W[p + "input_layernorm.weight"] = 1 + rnd(H, scale=0.1)
        W[p + "post_attention_layernorm.weight"] = 1 + rnd(H, scale=0.1)
        for name, out, inp in (("self_attn.q_proj", q, H), ("self_attn.k_proj", kv, H), ("self_attn.v_proj", kv, H),
                               ("self_attn.o_proj", H, q), ("mlp.gate_proj", I, H), ("mlp.up_proj", I, H),
                               ("mlp.down_proj", H, I)):
            W[p + name + ".weight"] = rnd(out, inp, scale=inp ** -0.5)
            llama = c.arch == "LlamaForCausalLM"
            bias = (qkv_bias and name in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")) \
                or (llama and name == "self_attn.o_proj" and d.get("attention_bias", False)) \
                or (llama and name.startswith("mlp") and d.get("mlp_bias", False))
            if bias:
                W[p + name + ".bias"] = rnd(out, scale=0.5)
    if bf16:
        W = {k: v.to(torch.bfloat16).to(torch.float32) for k, v in W.items()}
    return W


def tiny(arch, **kw):
    d = {"architectures": [arch], "hidden_size": 24, "intermediate_size": 40, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 64, "max_position_embeddings": 64,
         "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False}
    d.update(kw)
    return d


def save_json(path, obj, compact=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=None if compact else 2)
        f.write("\n")


def golden(case, c, W, ids, positions):
    with torch.no_grad():
        logits = forward(c, W, ids)
    rows = [[float(f"{v:.9g}") for v in logits[p].tolist()] for p in positions]  # float32 round-trips in 9 digits
    save_json(os.path.join(OUT, "golden", case + ".json"), {"case": case, "ids": ids, "positions": positions, "logits": rows}, compact=True)
    print(f"{case}: {len(ids)} tokens, argmax at {positions[-1]} = {int(logits[positions[-1]].argmax())}")


def main():
    torch.set_num_threads(1)
    with open(os.path.join(STORIES, "config.json")) as f:
        story_cfg = json.load(f)
    with open(os.path.join(STORIES, "expected-greedy-200.ids.json")) as f:
        story_ids = json.load(f)
    story_w = read_safetensors(os.path.join(STORIES, "model.safetensors"))
    pos = [0, 1, 2, 50, 100, 150, 199, 200]
    golden("stories260K", Cfg(story_cfg), story_w, story_ids, pos)

    phi3_base = {k: v for k, v in story_cfg.items() if k not in ("mlp_bias", "pretraining_tp")}
    phi3_base.update({"architectures": ["Phi3ForCausalLM"], "model_type": "phi3", "sliding_window": None})
    phi3_w = phi3_weights(story_w, story_cfg["num_hidden_layers"])
    if os.path.isdir(SHARED_PHI3):
        with open(os.path.join(SHARED_PHI3, "config.json")) as f:
            golden("stories260K-phi3", Cfg(json.load(f)), read_safetensors(os.path.join(SHARED_PHI3, "model.safetensors")), story_ids, pos)

    # LongRoPE on the stories weights: original length 64 < 201, so the long factors apply.
    longrope = dict(phi3_base, original_max_position_embeddings=64, max_position_embeddings=512,
                    rope_scaling={"type": "longrope", "short_factor": [1.0, 1.05, 1.2, 1.6],
                                  "long_factor": [1.0, 1.5, 3.0, 7.5]})
    save_json(os.path.join(OUT, "phi3-longrope", "config.json"), longrope)
    golden("phi3-longrope", Cfg(longrope), phi3_w, story_ids, pos)
    golden("phi3-longrope-short", Cfg(longrope), phi3_w, story_ids[:48], [0, 10, 30, 47])
    partial = dict(longrope, partial_rotary_factor=0.5,
                   rope_scaling={"rope_type": "longrope", "short_factor": [1.0, 1.1], "long_factor": [2.0, 5.0],
                                 "attention_factor": 1.25})
    save_json(os.path.join(OUT, "phi3-partial", "config.json"), partial)
    golden("phi3-partial", Cfg(partial), phi3_w, story_ids, pos)

    g = torch.Generator().manual_seed(11)
    ids = torch.randint(0, 64, (20,), generator=g).tolist()
    for case, d, seed, bf16 in (
        ("qwen2-tiny", tiny("Qwen2ForCausalLM", sliding_window=4, use_sliding_window=False), 1, True),
        ("mistral-tiny", tiny("MistralForCausalLM", head_dim=8, sliding_window=6), 2, False),
        ("llama3-tiny", tiny("LlamaForCausalLM", attention_bias=True, mlp_bias=True, tie_word_embeddings=True,
                             rope_theta=500000.0,
                             rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                           "high_freq_factor": 4.0, "original_max_position_embeddings": 16}), 3, False),
    ):
        W = synthetic(d, seed, bf16)
        save_json(os.path.join(OUT, case, "config.json"), d)
        write_safetensors(os.path.join(OUT, case, "model.safetensors"), W, "BF16" if bf16 else "F32")
        golden(case, Cfg(d), W, ids, list(range(len(ids))))


if __name__ == "__main__":
    sys.exit(main())
