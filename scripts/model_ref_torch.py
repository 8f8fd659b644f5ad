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
  - golden/<case>.json: the token ids, some positions and their logits;
  - golden/torch-{qwen3,qwen3-moe,mixtral,gemma2,gemma3,gemma3-tf5}.json: tiny random models
    of the newer architectures (modeling_qwen3, modeling_qwen3_moe,
    modeling_mixtral, modeling_gemma2, modeling_gemma3, masking_utils), each with
    its config.json, the parameters of the generator its weights come from (the
    Go test, TestGoldenTorchArch, makes the same float32 bits; no weights are
    committed), 24 ids and the logits at every position.

Usage (from the repository root): /usr/bin/python3 scripts/model_ref_torch.py [--arch]
(--arch: only the newer architectures' goldens). Debian's python3-torch.
"""
import json
import math
import os
import struct
import sys

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "convert", "eval", "internal", "model", "testdata")
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
        self.eps = d.get("rms_norm_eps", 1e-5 if self.arch == "Phi3ForCausalLM" else 1e-6)  # Phi3Config's 1e-5
        self.theta = d.get("rope_theta", 10000.0)
        self.rot = int(self.head_dim * d.get("partial_rotary_factor", 1.0))
        self.rs = d.get("rope_scaling") or {}
        self.max_pos = d["max_position_embeddings"]
        self.window = None
        if self.arch in ("MistralForCausalLM", "Phi3ForCausalLM"):
            # MistralConfig's default window is 4096, Phi3Config's none.
            self.window = d.get("sliding_window", 4096 if self.arch == "MistralForCausalLM" else None)
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


# --- Qwen3, Qwen3-MoE, Mixtral, Gemma 2 and Gemma 3 -------------------------------
#
# Written from transformers' modeling_qwen3.py, modeling_qwen3_moe.py (its
# Qwen2MoeTopKRouter and decoder layer), modeling_mixtral.py, modeling_gemma2.py,
# modeling_gemma3.py, masking_utils.py (sliding_window_overlay: kv > q - window) and
# the config classes' defaults. The weights come from a generator the Go test
# repeats (a 64-bit LCG seeded by the FNV-1a hash of the tensor's name), so only
# the configs, the generator's parameters and the logits are committed.

M64 = (1 << 64) - 1


def det_tensor(name, shape, scale, offset):
    """offset + uniform(-sqrt(3), sqrt(3)) * scale, each computed in float64 and
    rounded to float32: the same bits as the Go test's generator."""
    seed = 0xCBF29CE484222325
    for b in name.encode():
        seed = ((seed ^ b) * 0x100000001B3) & M64
    n = math.prod(shape)
    out = [0.0] * n
    r3 = math.sqrt(3)
    for i in range(n):
        seed = (seed * 6364136223846793005 + 1442695040888963407) & M64
        u = (seed >> 11) / 9007199254740992.0
        out[i] = offset + (2 * u - 1) * r3 * scale
    return torch.tensor(out, dtype=torch.float64).to(torch.float32).reshape(shape)


class ArchCfg:
    """config.json read with the defaults of transformers' config classes
    (Qwen3Config, Qwen3MoeConfig, MixtralConfig, Gemma2Config, Gemma3TextConfig)."""

    def __init__(self, d):
        a = self.arch = d["architectures"][0]
        self.d = d
        g = d.get
        self.gemma = a in ("Gemma2ForCausalLM", "Gemma3ForCausalLM")
        self.hidden, self.layers, self.heads = d["hidden_size"], d["num_hidden_layers"], d["num_attention_heads"]
        self.vocab, self.inter = d["vocab_size"], d["intermediate_size"]
        self.kv = g("num_key_value_heads") or self.heads
        head_def = {"Qwen3ForCausalLM": 128, "Gemma2ForCausalLM": 256, "Gemma3ForCausalLM": 256}.get(a)
        self.head_dim = g("head_dim", head_def) or self.hidden // self.heads
        self.eps = g("rms_norm_eps", 1e-5 if a == "MixtralForCausalLM" else 1e-6)
        self.theta = g("rope_theta", 1e6 if a in ("MixtralForCausalLM", "Gemma3ForCausalLM") else 10000.0)
        self.rope_scaling = g("rope_scaling")
        self.tie = g("tie_word_embeddings", self.gemma)
        self.bias = bool(g("attention_bias", False)) and a != "MixtralForCausalLM"
        self.qk_norm = a in ("Qwen3ForCausalLM", "Qwen3MoeForCausalLM", "Gemma3ForCausalLM")
        self.act = g("hidden_activation", "gelu_pytorch_tanh") if self.gemma else g("hidden_act", "silu")
        self.scaling = (g("query_pre_attn_scalar", 256) if self.gemma else self.head_dim) ** -0.5
        self.attn_cap = g("attn_logit_softcapping", 50.0) if a == "Gemma2ForCausalLM" else None  # Gemma 3 ignores it
        self.final_cap = g("final_logit_softcapping", 30.0 if a == "Gemma2ForCausalLM" else None) if self.gemma else None
        self.local_theta = g("rope_local_base_freq", 10000.0) if a == "Gemma3ForCausalLM" else None
        # transformers 5 keeps rope_theta and rope_scaling in rope_parameters;
        # Gemma3TextConfig one set per layer type (full_attention: the global
        # layers, sliding_attention: the local ones).
        rp = g("rope_parameters")
        if rp:
            if a == "Gemma3ForCausalLM" and ("full_attention" in rp or "sliding_attention" in rp):
                full, local = rp.get("full_attention") or {}, rp.get("sliding_attention") or {}
                if local.get("rope_type", "default") != "default":
                    raise SystemExit("scaled local RoPE")
                self.local_theta = local.get("rope_theta", self.local_theta)
            else:
                full = rp
            self.theta = full.get("rope_theta", self.theta)
            self.rope_scaling = full
        # Which layers slide, and the window.
        L = self.layers
        if self.gemma:
            self.window = g("sliding_window", 4096)
            p = 2 if a == "Gemma2ForCausalLM" else g("sliding_window_pattern", 6)
            types = g("layer_types") or ["sliding_attention" if (i + 1) % p else "full_attention" for i in range(L)]
        elif a == "Qwen3ForCausalLM":
            self.window = g("sliding_window", 4096) if g("use_sliding_window", False) else None
            first = g("max_window_layers", 28)
            types = g("layer_types") or ["sliding_attention" if self.window is not None and i >= first else "full_attention"
                                         for i in range(L)]
        elif a == "Qwen3MoeForCausalLM":
            self.window = g("sliding_window", 4096) if g("use_sliding_window", False) else None
            types = ["sliding_attention" if self.window is not None else "full_attention"] * L
        else:  # Mixtral: MistralAttention, one window for all layers
            self.window = g("sliding_window")
            types = ["sliding_attention" if self.window is not None else "full_attention"] * L
        self.sliding = [t == "sliding_attention" for t in types]
        # Mixtures of experts.
        self.experts, self.moe = 0, [False] * L
        if a == "MixtralForCausalLM":
            self.experts, self.top_k, self.norm_topk = g("num_local_experts", 8), g("num_experts_per_tok", 2), True
            self.expert_inter = self.inter
            self.moe = [True] * L
        elif a == "Qwen3MoeForCausalLM":
            self.experts, self.top_k = g("num_experts", g("num_local_experts", 128)), g("num_experts_per_tok", 8)
            self.norm_topk, self.expert_inter = g("norm_topk_prob", False), g("moe_intermediate_size", 768)
            step, dense = g("decoder_sparse_step", 1), g("mlp_only_layers") or []
            self.moe = [i not in dense and self.experts > 0 and (i + 1) % step == 0 for i in range(L)]

    def expert_names(self, e):
        if self.arch == "MixtralForCausalLM":
            p = f"block_sparse_moe.experts.{e}."
            return p + "w1", p + "w3", p + "w2"
        p = f"mlp.experts.{e}."
        return p + "gate_proj", p + "up_proj", p + "down_proj"

    def router_name(self):
        return "block_sparse_moe.gate" if self.arch == "MixtralForCausalLM" else "mlp.gate"


def arch_tensor_specs(c):
    """[name, shape, scale, offset] of every tensor: matrices of scale 1/sqrt(in),
    norms near 1 (Gemma's stored as w with 1 + w near 1)."""
    H, hd = c.hidden, c.head_dim
    one = 0.0 if c.gemma else 1.0
    # Gemma's embeddings are small, as trained ones are: times sqrt(hidden), about 1.
    embed = H ** -0.5 if c.gemma else 1.0
    specs = [["model.embed_tokens.weight", [c.vocab, H], embed, 0.0], ["model.norm.weight", [H], 0.2, one]]
    if not c.tie:
        specs.append(["lm_head.weight", [c.vocab, H], H ** -0.5, 0.0])

    def mat(name, out, inp, scale=1.0):
        specs.append([name + ".weight", [out, inp], scale * inp ** -0.5, 0.0])
    for l in range(c.layers):
        p = f"model.layers.{l}."
        norms = ["input_layernorm", "post_attention_layernorm"]
        if c.gemma:
            norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
        for n in norms:
            specs.append([p + n + ".weight", [H], 0.2, one])
        if c.qk_norm:
            for n in ("q_norm", "k_norm"):
                specs.append([p + f"self_attn.{n}.weight", [hd], 0.3, one])
        for n, out, inp in (("q_proj", c.heads * hd, H), ("k_proj", c.kv * hd, H), ("v_proj", c.kv * hd, H),
                            ("o_proj", H, c.heads * hd)):
            mat(p + "self_attn." + n, out, inp, 1.5)
            if c.bias:
                specs.append([p + f"self_attn.{n}.bias", [out], 0.3, 0.0])
        if c.moe[l]:
            mat(p + c.router_name(), c.experts, H, 2.0)
            for e in range(c.experts):
                gate, up, down = c.expert_names(e)
                mat(p + gate, c.expert_inter, H)
                mat(p + up, c.expert_inter, H)
                mat(p + down, H, c.expert_inter)
        else:
            mat(p + "mlp.gate_proj", c.inter, H)
            mat(p + "mlp.up_proj", c.inter, H)
            mat(p + "mlp.down_proj", H, c.inter)
    return specs


def act_fn(name):
    if name == "silu":
        return torch.nn.functional.silu
    if name == "gelu_pytorch_tanh":
        return lambda x: torch.nn.functional.gelu(x, approximate="tanh")
    if name == "gelu":
        return torch.nn.functional.gelu
    raise SystemExit(f"activation {name}")


def arch_forward(c, W, ids):
    """Logits [T, vocab] of one sequence, float32, as transformers' eager path."""
    T, H, hd, nh, nkv = len(ids), c.hidden, c.head_dim, c.heads, c.kv
    f32min = torch.finfo(torch.float32).min

    def norm(x, w):
        # LlamaRMSNorm: w * (x * rsqrt(mean(x^2) + eps)); Gemma's: (x * rsqrt(..)) * (1 + w)
        y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + c.eps)
        return y * (1.0 + w) if c.gemma else w * y

    def lin(x, name, bias=False):
        y = x @ W[name + ".weight"].T
        return y + W[name + ".bias"] if bias else y

    def rope(theta, scaling):
        inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
        kind = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
        if kind == "linear":
            inv = inv / scaling["factor"]
        elif kind != "default":
            raise SystemExit(f"rope type {kind}")
        freqs = torch.arange(T).float()[:, None] * inv[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos(), emb.sin()

    glob = rope(c.theta, c.rope_scaling)
    local = rope(c.local_theta, None) if c.local_theta is not None else glob
    i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
    full_mask = torch.where(j <= i, 0.0, f32min)
    slide_mask = full_mask
    if c.window is not None:
        slide_mask = torch.where((j <= i) & (j > i - c.window), 0.0, f32min)
    act = act_fn(c.act)

    x = W["model.embed_tokens.weight"][torch.tensor(ids)]
    if c.gemma:
        x = x * torch.tensor(H ** 0.5, dtype=torch.float32)
    for l in range(c.layers):
        p = f"model.layers.{l}."
        residual = x
        h = norm(x, W[p + "input_layernorm.weight"])
        q = lin(h, p + "self_attn.q_proj", c.bias).view(T, nh, hd)
        k = lin(h, p + "self_attn.k_proj", c.bias).view(T, nkv, hd)
        v = lin(h, p + "self_attn.v_proj", c.bias).view(T, nkv, hd)
        if c.qk_norm:  # on each head, before RoPE
            q = norm(q, W[p + "self_attn.q_norm.weight"])
            k = norm(k, W[p + "self_attn.k_norm.weight"])
        q, k, v = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
        cos, sin = local if c.sliding[l] else glob
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(nh // nkv, dim=0)
        v = v.repeat_interleave(nh // nkv, dim=0)
        s = (q @ k.transpose(1, 2)) * c.scaling
        if c.attn_cap is not None:
            s = torch.tanh(s / c.attn_cap) * c.attn_cap
        s = s + (slide_mask if c.sliding[l] else full_mask)
        a = torch.softmax(s, dim=-1, dtype=torch.float32) @ v
        a = lin(a.transpose(0, 1).reshape(T, nh * hd), p + "self_attn.o_proj", c.bias)
        if c.gemma:
            x = residual + norm(a, W[p + "post_attention_layernorm.weight"])
            residual = x
            h = norm(x, W[p + "pre_feedforward_layernorm.weight"])
            h = lin(act(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
            x = residual + norm(h, W[p + "post_feedforward_layernorm.weight"])
            continue
        x = residual + a
        residual = x
        h = norm(x, W[p + "post_attention_layernorm.weight"])
        if c.moe[l]:
            # softmax over all experts in float32, top-k, renormalized (Mixtral;
            # Qwen3-MoE when norm_topk_prob), experts summed with index_add_.
            probs = torch.softmax(lin(h, p + c.router_name()), dim=-1, dtype=torch.float32)
            weights, chosen = torch.topk(probs, c.top_k, dim=-1)
            if c.norm_topk:
                weights = weights / weights.sum(dim=-1, keepdim=True)
            out = torch.zeros_like(h)
            for e in range(c.experts):
                tok, slot = torch.where(chosen == e)
                if len(tok) == 0:
                    continue
                gate, up, down = (p + n for n in c.expert_names(e))
                xe = h[tok]
                ye = lin(act(lin(xe, gate)) * lin(xe, up), down)
                out.index_add_(0, tok, ye * weights[tok, slot, None])
            h = out
        else:
            h = lin(act(lin(h, p + "mlp.gate_proj")) * lin(h, p + "mlp.up_proj"), p + "mlp.down_proj")
        x = residual + h
    x = norm(x, W["model.norm.weight"])
    head = W["model.embed_tokens.weight"] if c.tie else W["lm_head.weight"]
    logits = x @ head.T
    if c.final_cap is not None:
        logits = torch.tanh(logits / c.final_cap) * c.final_cap
    return logits


def arch_base(arch, **kw):
    d = {"architectures": [arch], "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 3,
         "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 64,
         "max_position_embeddings": 128, "bos_token_id": 1, "eos_token_id": 2}
    d.update(kw)
    return {k: v for k, v in d.items() if v is not None or k in ("final_logit_softcapping",)}


# Tiny random models of each new architecture: windows of 5 or 6 over 24 tokens,
# sliding and global layers, 4 experts top-2. Keys left out test the defaults.
ARCH_CASES = [
    # No head_dim: Qwen3Config's 128, not hidden / heads (16).
    ("torch-qwen3", arch_base("Qwen3ForCausalLM", head_dim=None, attention_bias=True, use_sliding_window=True,
                              sliding_window=5, max_window_layers=1, rope_theta=1e6, rms_norm_eps=1e-6,
                              tie_word_embeddings=False)),
    ("torch-qwen3-moe", arch_base("Qwen3MoeForCausalLM", num_experts=4, num_experts_per_tok=2,
                                  moe_intermediate_size=48, mlp_only_layers=[1], norm_topk_prob=False,
                                  rope_theta=1e6)),
    # No rms_norm_eps nor rope_theta: MixtralConfig's 1e-5 and 1e6.
    ("torch-mixtral", arch_base("MixtralForCausalLM", num_hidden_layers=2, num_key_value_heads=1, head_dim=None,
                                intermediate_size=64, num_local_experts=4, num_experts_per_tok=2,
                                sliding_window=6, tie_word_embeddings=False)),
    # Tied by default; layers 0 and 2 slide; both caps bind.
    ("torch-gemma2", arch_base("Gemma2ForCausalLM", query_pre_attn_scalar=24, sliding_window=5,
                               attn_logit_softcapping=3.0, final_logit_softcapping=5.0)),
    # Layers 0, 1 and 3 slide (local base 10000), layer 2 is global (rope_theta 1e6
    # by default, linear factor 8); the attention cap is set but Gemma 3 ignores it.
    ("torch-gemma3", arch_base("Gemma3ForCausalLM", num_hidden_layers=4, query_pre_attn_scalar=32,
                               sliding_window=5, sliding_window_pattern=3, attn_logit_softcapping=1.0,
                               rope_scaling={"rope_type": "linear", "factor": 8.0})),
    # As transformers 5 writes Gemma 3's config.json: layer_types, and
    # rope_parameters per layer type.
    ("torch-gemma3-tf5", arch_base("Gemma3ForCausalLM", num_hidden_layers=4, query_pre_attn_scalar=16,
                                   sliding_window=6, final_logit_softcapping=4.0,
                                   layer_types=["full_attention", "sliding_attention", "sliding_attention",
                                                "full_attention"],
                                   rope_parameters={"full_attention": {"rope_type": "linear", "factor": 4.0,
                                                                       "rope_theta": 500000.0},
                                                    "sliding_attention": {"rope_type": "default",
                                                                          "rope_theta": 20000.0}})),
]


def arch_goldens():
    g = torch.Generator().manual_seed(22)
    ids = torch.randint(0, 64, (24,), generator=g).tolist()
    for case, d in ARCH_CASES:
        c = ArchCfg(d)
        specs = arch_tensor_specs(c)
        W = {name: det_tensor(name, shape, scale, off) for name, shape, scale, off in specs}
        with torch.no_grad():
            logits = arch_forward(c, W, ids)
        positions = list(range(len(ids)))
        rows = [[float(f"{v:.9g}") for v in logits[p].tolist()] for p in positions]
        save_json(os.path.join(OUT, "golden", case + ".json"),
                  {"case": case, "config": d, "tensors": specs, "ids": ids, "positions": positions, "logits": rows},
                  compact=True)
        print(f"{case}: {len(specs)} tensors, {sum(math.prod(s[1]) for s in specs)} values, "
              f"argmax at {positions[-1]} = {int(logits[-1].argmax())}")


def main():
    torch.set_num_threads(1)
    if sys.argv[1:] == ["--arch"]:
        return arch_goldens()
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
    arch_goldens()


if __name__ == "__main__":
    sys.exit(main())
