#!/usr/bin/env python3
"""Independent float64 reference for `qins eval`, written from transformers.

    scripts/eval_ref.py REF CAND --tokens IDS.json [--config config.json]
                        [--json] [--check QINS_EVAL.json [--mutants]]
                        [--break WHAT]
    scripts/eval_ref.py REF --greedy N [--expect IDS.json] [--config config.json]
    scripts/eval_ref.py --make KIND SRC OUT [--same-as FIXTURE]

Why: `qins eval` runs a causal language model forward pass in Go. This
script recomputes its teacher-forced comparison with numpy in float64 from
the published formulas (transformers' modeling_llama.py, modeling_mistral.py,
modeling_phi3.py, modeling_qwen2.py, modeling_qwen3.py, modeling_qwen3_moe.py,
modeling_mixtral.py, modeling_gemma2.py, modeling_gemma3.py and
modeling_rope_utils.py), never from
the Go sources, so that a bug in the Go model, its RoPE, its weight decoding
or its statistics shows up as a difference here.

REF and CAND are a .safetensors file, a checkpoint folder (its index, its only
index or its only .safetensors file) or an index, read with scripts/parity.py's
reader; a QINS file is decoded with the README formula to float32 exactly as
`qins restore` writes it (float64 magnitude, rounded once to float32), then
widened to float64. config.json is read beside REF (its folder, or the folder
of the file or index) unless --config is given, and used for CAND too, as
`qins eval` does, except when a config.json beside CAND names another
architecture: CAND then uses it, and tensor names are not compared (so
stories260K-phi3 can be compared with stories260K; `qins eval` refuses
that pair because the names differ).

Architectures: LlamaForCausalLM and MistralForCausalLM (GQA, head_dim,
rope_theta; Llama's attention_bias and mlp_bias, Mistral's sliding_window),
Phi3ForCausalLM (fused qkv_proj rows q, k, v and gate_up_proj rows gate, up;
rope_scaling longrope or su: long_factor when the sequence length
max(position)+1 exceeds original_max_position_embeddings, short_factor
otherwise, cos and sin multiplied by the attention factor
sqrt(1 + ln(factor)/ln(original_max)) with factor = max_position_embeddings /
original_max_position_embeddings unless rope_scaling gives factor or
attention_factor; partial_rotary_factor; sliding_window), Qwen2ForCausalLM
(q/k/v biases, sliding window from max_window_layers when use_sliding_window).
Qwen3ForCausalLM and Qwen3MoeForCausalLM (RMSNorm q_norm/k_norm over each
head's head_dim before RoPE; attention_bias for q, k, v and o; Qwen3's window
as Qwen2's, Qwen3-MoE's on every layer when use_sliding_window).
MixtralForCausalLM and Qwen3MoeForCausalLM's sparse blocks: softmax of the
router's logits (block_sparse_moe.gate / mlp.gate), the num_experts_per_tok
most probable experts, their probabilities divided by their sum (Mixtral
always, Qwen3-MoE when norm_topk_prob), the weighted sum of those experts'
SwiGLU MLPs (experts.N.w1/w3/w2, experts.N.gate_proj/up_proj/down_proj);
Qwen3-MoE's dense MLP in mlp_only_layers and where (layer + 1) %
decoder_sparse_step != 0. Gemma2ForCausalLM and Gemma3ForCausalLM (text):
RMSNorm times (1 + w); embeddings times float32(sqrt(hidden_size));
post_attention_layernorm on the attention's output before the residual,
pre_ and post_feedforward_layernorm around the MLP; hidden_activation
(gelu_pytorch_tanh by default); scores times query_pre_attn_scalar^-0.5;
Gemma 2's attention soft-capping cap tanh(s / cap) before the mask
(attn_logit_softcapping, default 50) and both's final_logit_softcapping
(Gemma 2 default 30); sliding layers from layer_types, else Gemma 2's every
other layer from 0 and Gemma 3's all but every sliding_window_pattern-th;
Gemma 3's (1 + w) q_norm/k_norm and its sliding layers' RoPE base
rope_local_base_freq without rope_scaling.
Tied embeddings when lm_head.weight is absent. RoPE scaling "linear" is also
computed; other types are refused.

Statistics, over positions t = 0..T-2 of the T ids (each predicting ids[t+1]):
top-1 agreement (fraction of t where argmax of REF's logits equals CAND's),
KL(P_ref || P_cand) in nats per position (mean, median as numpy.median, p99
as numpy.percentile(x, 99), max), perplexity exp(mean NLL of ids[t+1]) of
each model and their ratio cand/ref.

--check QINS_EVAL.json reads `qins eval --json` output and exits 1 unless:
ids equal the --tokens ids, tokens == T and positions == T-1; kld.mean,
ppl.ref and ppl.cand agree within 1e-3 relative (kld.mean: or within 1e-9
absolute, since two identical models give 0 here and a float32 forward pass
differs from a float64 one by a KLD of about 1e-12: mean 9.0e-13, max 6.2e-12
measured on stories260K); top1 agrees within 1e-3 relative of the interval of
legitimate values: a position where REF's or CAND's two largest logits are
within TIE_GAP (1e-3) of each other is a near tie (float32 rounding in Go may
pick either), so it may count as agreeing or not; the number of such
positions is printed, and with none the interval is the single value; and,
when the output has greedy ids, greedy.ref_ids and greedy.cand_ids equal this
script's greedy generation of each model from greedy.prompt (or first differ
at a step where some step up to it had a near tie), and
greedy.first_divergence is the 1-based index of the first difference between
them (null when none). Every field is printed with both values. kld
median/p99/max and ppl.ratio are printed for information. --mutants then
proves the check can fail: each of a list of small edits of the qins output
(top1 - 0.005, kld.mean x 1.002, ppl x 1.002, an id, positions, a greedy id,
first_divergence) must make it fail.

--greedy N generates N tokens from BOS (config's bos_token_id) with a KV
cache, in float64 (Phi-3 with rope_scaling: when the sequence first exceeds
original_max_position_embeddings the cache, rotated with short_factor, is
dropped and everything recomputed with long_factor, as transformers'
Phi3ForCausalLM.prepare_inputs_for_generation does), and
with --expect compares BOS + the N ids with a JSON id list (exit 1 if not
equal).

--make KIND SRC OUT writes a variant of a plain F32 Llama checkpoint folder
(model.safetensors, config.json and the tokenizer files) for the checks:
  phi3            Phi3ForCausalLM: q, k, v rows stacked into
                  self_attn.qkv_proj, gate, up rows into mlp.gate_up_proj;
  longrope        phi3 with max_position_embeddings 256,
                  original_max_position_embeddings 64 and a rope_scaling of
                  type longrope: a 201-token stream selects long_factor and
                  the attention factor is sqrt(1 + ln 4 / ln 64);
  longrope-short  the same with 1024 and 256: short_factor, attention factor
                  sqrt(1 + ln 4 / ln 256);
  qwen2           Qwen2ForCausalLM with small seeded q/k/v biases added;
  mistral         MistralForCausalLM, same weights, no sliding window;
  mistral-window  the same with sliding_window 48 (binds on 201 tokens);
  qwen3           Qwen3ForCausalLM: + seeded q_norm/k_norm (1 + 0.3 N(0,1));
  qwen3-moe       Qwen3MoeForCausalLM: q/k norms as qwen3; in layers 0, 1, 3,
                  4 a router (0.5 N(0,1)) and 4 experts of 43 units, expert e
                  the MLP's units 43e..43e+42 (gate doubled), top-2,
                  norm_topk_prob false; layer 2 in mlp_only_layers;
  mixtral         MixtralForCausalLM: 4 experts per layer, expert 0 the MLP,
                  1..3 the MLP times (1 + 0.5 N(0,1)) elementwise, top-2;
  gemma2          Gemma2ForCausalLM: norms w - 1 (so 1 + w is stories'),
                  post_attention_layernorm the pre_feedforward one, new
                  post-attention and post-feedforward norms 0.2 N(0,1) - 0.5,
                  query_pre_attn_scalar 16, caps 4 (attention) and 8 (final),
                  sliding_window 48 on layers 0, 2, 4;
  gemma3          Gemma3ForCausalLM: as gemma2 without caps, query_pre_attn_scalar
                  12, q_norm/k_norm 0.3 N(0,1), sliding_window_pattern 3 (layer
                  2 global with rope_theta 1e6 and linear factor 8, the others
                  local with base 10000).
  All keep stories260K's vocabulary and tokenizer; their predictions are
  not a trained model's, but peaked enough that a layout error shows.
--same-as FIXTURE requires the copy's tensors (names, dtypes, shapes, bytes)
and, for phi3, config.json to equal FIXTURE's.

--break WHAT computes a deliberately wrong variant, so that a check shown to
pass would fail on that layout error: gemma-norm (w instead of 1 + w),
gemma-embed-scale (no sqrt(hidden) scaling), gemma-attn-softcap and
gemma-final-softcap (no cap), gemma3-local-rope (the global RoPE on sliding
layers), qwen3-qnorm (no q_norm), moe-renorm (top-k weights not divided by
their sum), moe-top1 (one expert per token).

Exit status: 0 pass, 1 a check failed, 2 usage error or unreadable input.
"""

import argparse
import json
import math
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import parity  # noqa: E402  (its safetensors reader and README decoder)

InputError = parity.InputError

TIE_GAP = 1e-3      # logits closer than this: the argmax is a near tie
                    # (float32 vs float64 logits differ by 1.7e-5 on stories260K)
REL_TOL = 1e-3      # relative agreement asked of top1, kld.mean and ppl
KLD_ABS = 1e-9      # kld.mean: absolute floor (two equal models give ~0)
MEMO_BYTES = 64 << 20  # checkpoints smaller than this are kept in memory once read
ARCHS = ("LlamaForCausalLM", "MistralForCausalLM", "Phi3ForCausalLM",
         "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Qwen3MoeForCausalLM",
         "MixtralForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM")
GEMMA = ("Gemma2ForCausalLM", "Gemma3ForCausalLM")
QWEN3 = ("Qwen3ForCausalLM", "Qwen3MoeForCausalLM")
# --break WHAT: a deliberately wrong variant of the formulas, to show that
# the comparison with qins fails on such a layout error.
BREAKS = ("gemma-norm", "gemma-embed-scale", "gemma-attn-softcap", "gemma-final-softcap",
          "gemma3-local-rope", "qwen3-qnorm", "moe-renorm", "moe-top1")


# ------------------------------------------------------------ checkpoints

class Checkpoint:
    """A checkpoint's tensors by Hugging Face name, read as float64.

    QINS tensors are decoded with the README formula to float32, as
    `qins restore` writes them, then widened.
    """

    def __init__(self, arg):
        self.arg = arg
        src = parity.open_source(arg)
        self.raw = src.tensors
        # Small checkpoints keep decoded tensors: greedy steps reread every layer.
        self.memo = {} if sum(t.nbytes for t in self.raw.values()) < MEMO_BYTES else None
        self.meta = {}
        for m in src.metadatas:
            self.meta.update(m)
        # 2: per-row ranges; 3: the rational codec (and the i8 layout, which
        # this script does not decode); 4: the rational codec per row
        self.qins = self.meta.get("qins") in ("1", "2", "3", "4")
        self.encoded = {}
        if self.qins:
            for key, text in self.meta.items():
                if key.startswith("qins:"):
                    try:
                        self.encoded[key[5:]] = json.loads(text)
                    except ValueError as e:
                        raise InputError("%s: metadata %r: %s" % (arg, key, e))
        hidden = set()
        for name in self.encoded:
            hidden.update({name + ".qins", name + ".sign", name + ".signbits", name + ".logrange", name + ".alpha"})
        self.names = set(self.encoded) | (set(self.raw) - hidden)

    def shape(self, name):
        if name in self.encoded:
            return self._raw(name + ".qins").shape
        return self._raw(name).shape

    def _raw(self, key):
        if key not in self.raw:
            raise InputError("%s: no tensor %r" % (self.arg, key))
        return self.raw[key]

    def get(self, name):
        if self.memo is not None and name in self.memo:
            return self.memo[name]
        a = self._get(name)
        if self.memo is not None:
            self.memo[name] = a
        return a

    def _get(self, name):
        if name not in self.names:
            raise InputError("%s: no tensor %r" % (self.arg, name))
        if name in self.encoded:
            return self._decode(name)
        t = self.raw[name]
        if t.dtype in ("F32", "F64", "F16"):
            a = parity.read_array(t, {"F32": "<f4", "F64": "<f8", "F16": "<f2"}[t.dtype], 0, t.numel)
        elif t.dtype == "BF16":
            bits = parity.read_array(t, "<u2", 0, t.numel).astype(np.uint32) << 16
            a = bits.view(np.float32)
        else:
            raise InputError("%s: tensor %r has dtype %s, not a float" % (self.arg, name, t.dtype))
        return a.astype(np.float64).reshape(t.shape)

    def _decode(self, name):
        meta = self.encoded[name]
        if meta.get("codec") == "rational":
            # The spec: z = q/127.5 - 1, sign(z) (1 - |z|) / (alpha |z|) in
            # float64, with the tensor's alpha or, with granularity "row",
            # each row's from NAME.alpha (F32 [rows]).
            q = self._raw(name + ".qins")
            codes = parity.read_array(q, "u1", 0, q.numel)
            alpha = float(meta["alpha"])
            if meta.get("granularity") == "row":
                r = self._raw(name + ".alpha")
                per = q.shape[-1] if q.shape else 1
                alpha = np.repeat(parity.read_array(r, "<f4", 0, r.numel).astype(np.float64), per)
            w = parity.rational_decode(codes, alpha)
            return w.astype(np.float32).astype(np.float64).reshape(q.shape)
        if meta.get("layout") == "i8":
            raise InputError("%s: %s is in the i8 layout, which this script does not decode" % (self.arg, name))
        try:
            lo, hi = float(meta["log_min"]), float(meta["log_max"])
        except (KeyError, TypeError, ValueError):
            raise InputError("%s: qins:%s lacks log_min/log_max" % (self.arg, name))
        packed = meta.get("layout", "u8+i8") == "packed"
        q = self._raw(name + ".qins")
        codes = parity.read_array(q, "u1", 0, q.numel)
        if packed:
            sb = self._raw(name + ".signbits")
            bits = np.unpackbits(parity.read_array(sb, "u1", 0, sb.numel), bitorder="little")
            signs = np.where(codes == 0, 0, 1 - 2 * bits[:codes.size].astype(np.int8))
        else:
            s = self._raw(name + ".sign")
            signs = parity.read_array(s, "i1", 0, s.numel)
        if meta.get("granularity") == "row":
            # README: one (log_min, log_max) per row of the last dimension,
            # F32 [rows, 2] in NAME.logrange; the same decode per row.
            r = self._raw(name + ".logrange")
            rng = parity.read_array(r, "<f4", 0, r.numel).astype(np.float64).reshape(-1, 2)
            per = q.shape[-1] if q.shape else 1
            lo, hi = np.repeat(rng[:, 0], per), np.repeat(rng[:, 1], per)
            mag = np.exp(lo + (255 - codes.astype(np.float64)) / 254 * (hi - lo))
            w = np.where(signs == 0, 0.0, signs * mag)
            return w.astype(np.float32).astype(np.float64).reshape(q.shape)
        dec = parity.Decoder(lo, hi, packed=packed)
        w = np.where(signs == 0, 0.0, signs * dec.magnitude[codes])
        return w.astype(np.float32).astype(np.float64).reshape(q.shape)


def config_path(arg, override):
    if override:
        return override
    folder = arg if os.path.isdir(arg) else os.path.dirname(os.path.abspath(arg))
    return os.path.join(folder, "config.json")


def load_json(path, what):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError) as e:
        raise InputError("%s (%s): %s" % (path, what, e))


# ------------------------------------------------------------------ model

def flatten_rope_parameters(c, arch, path):
    """transformers 5 writes rope_theta and rope_scaling into rope_parameters
    (Gemma 3: one set per layer type); read them back into the older keys."""
    rp = c.get("rope_parameters")
    if not rp:
        return c
    c = dict(c)
    if "full_attention" in rp or "sliding_attention" in rp:
        if arch != "Gemma3ForCausalLM":
            raise InputError("%s: rope_parameters per layer type on %s" % (path, arch))
        full, sliding = rp.get("full_attention") or {}, rp.get("sliding_attention") or {}
        if sliding.get("rope_type", "default") != "default":
            raise InputError("%s: sliding_attention rope_type %r" % (path, sliding.get("rope_type")))
        if "rope_theta" in sliding:
            c["rope_local_base_freq"] = sliding["rope_theta"]
        rp = full
    if "rope_theta" in rp:
        c["rope_theta"] = rp["rope_theta"]
    c["rope_scaling"] = {k: v for k, v in rp.items() if k != "rope_theta"}
    return c


class Config:
    """The fields of config.json the forward pass needs."""

    def __init__(self, c, path, broken=None):
        archs = c.get("architectures") or []
        self.arch = archs[0] if archs else None
        if self.arch not in ARCHS:
            raise InputError("%s: unsupported architecture %r" % (path, self.arch))
        self.broken = broken
        if self.arch == "Gemma3ForCausalLM" and "hidden_size" not in c and isinstance(c.get("text_config"), dict):
            c = dict(c["text_config"], architectures=archs)
        c = flatten_rope_parameters(c, self.arch, path)
        gemma = self.arch in GEMMA
        if gemma:
            # Gemma2Config / Gemma3TextConfig defaults that differ from Llama's.
            c = dict({"head_dim": 256, "query_pre_attn_scalar": 256, "sliding_window": 4096,
                      "rope_theta": 1e6 if self.arch == "Gemma3ForCausalLM" else 10000.0}, **c)
        if self.arch == "Qwen3ForCausalLM":
            c = dict({"head_dim": 128}, **c)  # Qwen3Config's, not hidden / heads
        elif self.arch == "MixtralForCausalLM":
            c = dict({"rms_norm_eps": 1e-5, "rope_theta": 1e6}, **c)  # MixtralConfig's
        elif self.arch == "MistralForCausalLM":
            c = dict({"sliding_window": 4096}, **c)  # MistralConfig's; null is no window
        elif self.arch == "Phi3ForCausalLM":
            c = dict({"rms_norm_eps": 1e-5}, **c)  # Phi3Config's
        self.hidden = c["hidden_size"]
        self.layers = c["num_hidden_layers"]
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads") or self.heads
        self.head_dim = c.get("head_dim") or self.hidden // self.heads
        self.eps = c.get("rms_norm_eps", 1e-6)
        self.theta = c.get("rope_theta", 10000.0)
        self.vocab = c["vocab_size"]
        self.max_pos = c.get("max_position_embeddings")
        self.bos = c.get("bos_token_id", 1)
        # Gemma's MLP reads hidden_activation (GELU, tanh approximation by
        # default); the others hidden_act.
        self.act = (c.get("hidden_activation") or "gelu_pytorch_tanh") if gemma else c.get("hidden_act", "silu")
        if self.act not in ("silu", "gelu_pytorch_tanh", "gelu"):
            raise InputError("%s: activation %r is not supported here" % (path, self.act))
        self.rot_dim = int(self.head_dim * c.get("partial_rotary_factor", 1.0))
        self.rope = c.get("rope_scaling") or None
        self.orig_max = c.get("original_max_position_embeddings")
        # Only Llama reads attention_bias (q, k, v, o) and mlp_bias; Mistral
        # and Phi-3 have no biases, Qwen2 always q, k, v (see _qkv).
        # Qwen3, Qwen3-MoE and Gemma read attention_bias too (q, k, v and o).
        llama = self.arch == "LlamaForCausalLM"
        self.attn_bias = (llama or self.arch in QWEN3 + GEMMA) and bool(c.get("attention_bias", False))
        self.mlp_bias = llama and bool(c.get("mlp_bias", False))
        self.windows = self._windows(c)
        self._extras(c)
        self.rope_type = "default"
        if self.rope:
            self.rope_type = self.rope.get("rope_type", self.rope.get("type", "default"))
            if self.rope_type == "su":
                self.rope_type = "longrope"
            if self.rope_type not in ("default", "linear", "longrope"):
                raise InputError("%s: rope_scaling type %r is not supported here" % (path, self.rope_type))

    def _extras(self, c):
        """Qwen3's q/k norms, Gemma's layer, the mixtures of experts."""
        a = self.arch
        self.gemma = a in GEMMA
        self.qk_norm = a in QWEN3 or a == "Gemma3ForCausalLM"
        # Gemma2Attention / Gemma3Attention: scores times query_pre_attn_scalar^-0.5
        self.scaling = (c["query_pre_attn_scalar"] if self.gemma else self.head_dim) ** -0.5
        self.attn_cap = self.final_cap = None
        if a == "Gemma2ForCausalLM":
            self.attn_cap = c.get("attn_logit_softcapping", 50.0)
            self.final_cap = c.get("final_logit_softcapping", 30.0)
        elif a == "Gemma3ForCausalLM":
            # Gemma3Attention does not pass attn_logit_softcapping on.
            self.final_cap = c.get("final_logit_softcapping")
        # Gemma 3: sliding layers use RoPE base rope_local_base_freq, unscaled.
        self.local_theta = c.get("rope_local_base_freq", 10000.0) if a == "Gemma3ForCausalLM" else None
        self.experts = 0
        self.moe_layers = [False] * self.layers
        if a == "MixtralForCausalLM":
            self.experts = c.get("num_local_experts", 8)
            self.top_k = c.get("num_experts_per_tok", 2)
            self.norm_topk = True
            self.expert_inter = c["intermediate_size"]
            self.moe_layers = [True] * self.layers
        elif a == "Qwen3MoeForCausalLM":
            # transformers 5 may write num_experts as num_local_experts.
            self.experts = c.get("num_experts", c.get("num_local_experts", 128))
            self.top_k = c.get("num_experts_per_tok", 8)
            self.norm_topk = bool(c.get("norm_topk_prob", False))
            self.expert_inter = c.get("moe_intermediate_size", 768)
            step = c.get("decoder_sparse_step", 1)
            dense = c.get("mlp_only_layers") or []
            self.moe_layers = [i not in dense and self.experts > 0 and (i + 1) % step == 0
                               for i in range(self.layers)]
        if self.experts and not 0 < self.top_k <= self.experts:
            raise InputError("num_experts_per_tok %r for %r experts" % (self.top_k, self.experts))

    def _windows(self, c):
        """Sliding window of each layer (None: full causal attention)."""
        w = c.get("sliding_window")
        if self.arch in GEMMA:
            types = c.get("layer_types")
            if types is None:
                # Gemma 2: every other layer from the first; Gemma 3: all
                # but every sliding_window_pattern-th.
                p = 2 if self.arch == "Gemma2ForCausalLM" else c.get("sliding_window_pattern", 6)
                types = ["sliding_attention" if (i + 1) % p else "full_attention" for i in range(self.layers)]
            return [w if t == "sliding_attention" else None for t in types]
        if self.arch == "LlamaForCausalLM" or not w:
            return [None] * self.layers
        if self.arch == "Qwen3MoeForCausalLM":
            return [w if c.get("use_sliding_window", False) else None] * self.layers
        if self.arch in ("Qwen2ForCausalLM", "Qwen3ForCausalLM"):
            if not c.get("use_sliding_window", False):
                return [None] * self.layers
            if self.arch == "Qwen3ForCausalLM" and c.get("layer_types") is not None:
                return [w if t == "sliding_attention" else None for t in c["layer_types"]]
            # Qwen2Config and Qwen3Config: max_window_layers defaults to 28.
            first = c.get("max_window_layers", 28)
            return [w if i >= first else None for i in range(self.layers)]
        return [w] * self.layers

    def rope_tables(self, positions, seq_len, local=False):
        """cos, sin [len(positions), rot_dim] (rotate-half order), scaled;
        local: Gemma 3's sliding layers (rope_local_base_freq, no scaling)."""
        half = self.rot_dim // 2
        exponent = np.arange(0, self.rot_dim, 2, dtype=np.float64) / self.rot_dim
        if local:
            inv_freq = 1.0 / self.local_theta ** exponent
            freqs = np.outer(np.asarray(positions, dtype=np.float64), inv_freq)
            emb = np.concatenate([freqs, freqs], axis=1)
            return np.cos(emb), np.sin(emb)
        base = self.theta ** exponent
        scale = 1.0
        if self.rope_type == "linear":
            base = base * float(self.rope["factor"])
        elif self.rope_type == "longrope":
            base, scale = self._longrope(base, seq_len, half)
        inv_freq = 1.0 / base
        freqs = np.outer(np.asarray(positions, dtype=np.float64), inv_freq)
        emb = np.concatenate([freqs, freqs], axis=1)
        return np.cos(emb) * scale, np.sin(emb) * scale

    def longrope_switch(self):
        """original_max_position_embeddings when generation must recompute
        its cache on crossing it (Phi-3 with rope_scaling), else None."""
        if self.arch == "Phi3ForCausalLM" and self.rope and self.orig_max:
            return self.orig_max
        return None

    def _longrope(self, base, seq_len, half):
        orig = self.orig_max or self.rope.get("original_max_position_embeddings") or self.max_pos
        factor = self.rope.get("factor")
        if factor is None:
            factor = self.max_pos / orig
        att = self.rope.get("attention_factor")
        if att is None:
            att = 1.0 if factor <= 1.0 else math.sqrt(1 + math.log(factor) / math.log(orig))
        key = "long_factor" if seq_len > orig else "short_factor"
        ext = np.asarray(self.rope[key], dtype=np.float64)
        if ext.shape != (half,):
            raise InputError("rope_scaling %s has %d values, want %d" % (key, ext.size, half))
        return ext * base, att


def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rotate(x, cos, sin, rot):
    """x [heads, T, head_dim]; RoPE on the first rot dims, rotate-half."""
    xr, xp = x[..., :rot], x[..., rot:]
    h = rot // 2
    rh = np.concatenate([-xr[..., h:], xr[..., :h]], axis=-1)
    return np.concatenate([xr * cos + rh * sin, xp], axis=-1)


def silu(x):
    return x / (1.0 + np.exp(-x))


def gelu_tanh(x):
    """GELU, tanh approximation (gelu_pytorch_tanh)."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def gelu(x):
    """GELU, exact: x Phi(x)."""
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


ACTS = {"silu": silu, "gelu_pytorch_tanh": gelu_tanh, "gelu": gelu}


def softcap(x, cap):
    return cap * np.tanh(x / cap) if cap else x


class Model:
    """A causal LM in float64, weights read layer by layer from a Checkpoint."""

    def __init__(self, cfg, ck):
        self.cfg, self.ck = cfg, ck
        self.embed = ck.get("model.embed_tokens.weight")
        if self.embed.shape != (cfg.vocab, cfg.hidden):
            raise InputError("%s: embed_tokens shape %s, config says %s" % (
                ck.arg, self.embed.shape, (cfg.vocab, cfg.hidden)))
        head = "lm_head.weight"
        self.lm_head = ck.get(head) if head in ck.names else self.embed
        self.norm = ck.get("model.norm.weight")
        self.greedy_memo = {}

    def _norm(self, x, w):
        """RMSNorm; Gemma's multiplies by (1 + w)."""
        c = self.cfg
        if c.gemma and c.broken != "gemma-norm":
            w = 1.0 + w
        return rms_norm(x, w, c.eps)

    def _moe(self, p, x):
        """Sparse MoE block (modeling_mixtral.py, modeling_qwen3_moe.py):
        softmax over the router's logits, the top_k experts of each token,
        their probabilities renormalized to sum 1 (Mixtral; Qwen3-MoE when
        norm_topk_prob), the weighted sum of their SwiGLU MLPs."""
        c = self.cfg
        mixtral = c.arch == "MixtralForCausalLM"
        router = self._linear(p + ("block_sparse_moe.gate" if mixtral else "mlp.gate"), x, False)
        z = np.exp(router - router.max(axis=-1, keepdims=True))
        prob = z / z.sum(axis=-1, keepdims=True)
        k = 1 if c.broken == "moe-top1" else c.top_k
        top = np.argsort(-prob, axis=-1, kind="stable")[:, :k]
        w = np.take_along_axis(prob, top, axis=-1)
        if c.norm_topk and c.broken != "moe-renorm":
            w = w / w.sum(axis=-1, keepdims=True)
        out = np.zeros_like(x)
        for e in range(c.experts):
            rows, slot = np.nonzero(top == e)
            if len(rows) == 0:
                continue
            if mixtral:
                names = ["block_sparse_moe.experts.%d.%s" % (e, n) for n in ("w1", "w3", "w2")]
            else:
                names = ["mlp.experts.%d.%s" % (e, n) for n in ("gate_proj", "up_proj", "down_proj")]
            xe = x[rows]
            y = self._linear(p + names[2], ACTS[c.act](self._linear(p + names[0], xe, False)) *
                             self._linear(p + names[1], xe, False), False)
            out[rows] += y * w[rows, slot][:, None]
        return out

    def _linear(self, prefix, x, bias):
        w = self.ck.get(prefix + ".weight")
        y = x @ w.T
        if bias:
            y = y + self.ck.get(prefix + ".bias")
        return y

    def _qkv(self, p, x):
        c = self.cfg
        nq, nk = c.heads * c.head_dim, c.kv_heads * c.head_dim
        if c.arch == "Phi3ForCausalLM":
            qkv = self._linear(p + "self_attn.qkv_proj", x, False)
            if qkv.shape[1] != nq + 2 * nk:
                raise InputError("%s: %sself_attn.qkv_proj has %d rows, want %d" % (
                    self.ck.arg, p, qkv.shape[1], nq + 2 * nk))
            return qkv[:, :nq], qkv[:, nq:nq + nk], qkv[:, nq + nk:]
        b = c.attn_bias or c.arch == "Qwen2ForCausalLM"
        return (self._linear(p + "self_attn.q_proj", x, b),
                self._linear(p + "self_attn.k_proj", x, b),
                self._linear(p + "self_attn.v_proj", x, b))

    def _mlp(self, p, x):
        c = self.cfg
        if c.arch == "Phi3ForCausalLM":
            gu = self._linear(p + "mlp.gate_up_proj", x, False)
            half = gu.shape[1] // 2
            gate, up = gu[:, :half], gu[:, half:]
        else:
            gate = self._linear(p + "mlp.gate_proj", x, c.mlp_bias)
            up = self._linear(p + "mlp.up_proj", x, c.mlp_bias)
        return self._linear(p + "mlp.down_proj", ACTS[c.act](gate) * up, c.mlp_bias)

    def run(self, ids, start, cache):
        """Logits [len(ids), vocab] for ids at positions start.., using and
        extending cache (a list of per-layer (K, V) [kv_heads, t, head_dim])."""
        c = self.cfg
        ids = np.asarray(ids)
        if ids.min() < 0 or ids.max() >= c.vocab:
            raise InputError("token id outside the vocabulary (0..%d)" % (c.vocab - 1))
        n = len(ids)
        pos = np.arange(start, start + n)
        tables = c.rope_tables(pos, start + n)
        local = tables
        if c.local_theta is not None and c.broken != "gemma3-local-rope":
            local = c.rope_tables(pos, start + n, local=True)
        x = self.embed[ids]
        if c.gemma and c.broken != "gemma-embed-scale":
            # Gemma scales the embeddings by sqrt(hidden_size), a float32
            # normalizer in a float32 pass.
            x = x * float(np.float32(math.sqrt(c.hidden)))
        kpos = np.arange(start + n)
        for l in range(c.layers):
            p = "model.layers.%d." % l
            cos, sin = local if c.windows[l] else tables
            h = self._norm(x, self.ck.get(p + "input_layernorm.weight"))
            q, k, v = self._qkv(p, h)
            q = q.reshape(n, c.heads, c.head_dim)
            k = k.reshape(n, c.kv_heads, c.head_dim)
            if c.qk_norm:
                # Qwen3 / Gemma 3: RMSNorm over each head's head_dim, before RoPE.
                if c.broken != "qwen3-qnorm":
                    q = self._norm(q, self.ck.get(p + "self_attn.q_norm.weight"))
                k = self._norm(k, self.ck.get(p + "self_attn.k_norm.weight"))
            q = rotate(q.transpose(1, 0, 2), cos, sin, c.rot_dim)
            k = rotate(k.transpose(1, 0, 2), cos, sin, c.rot_dim)
            v = v.reshape(n, c.kv_heads, c.head_dim).transpose(1, 0, 2)
            if len(cache) > l:
                k = np.concatenate([cache[l][0], k], axis=1)
                v = np.concatenate([cache[l][1], v], axis=1)
                cache[l] = (k, v)
            else:
                cache.append((k, v))
            visible = kpos[None, :] <= pos[:, None]
            if c.windows[l]:
                visible &= kpos[None, :] > pos[:, None] - c.windows[l]
            rep = c.heads // c.kv_heads
            kr, vr = np.repeat(k, rep, axis=0), np.repeat(v, rep, axis=0)
            s = q @ kr.transpose(0, 2, 1) * c.scaling
            if c.broken != "gemma-attn-softcap":
                s = softcap(s, c.attn_cap)
            s = np.where(visible[None], s, -np.inf)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            a = (s / s.sum(axis=-1, keepdims=True)) @ vr
            a = a.transpose(1, 0, 2).reshape(n, c.heads * c.head_dim)
            a = self._linear(p + "self_attn.o_proj", a, c.attn_bias)
            if c.gemma:
                # Gemma: norms after attention and around the MLP.
                x = x + self._norm(a, self.ck.get(p + "post_attention_layernorm.weight"))
                h = self._norm(x, self.ck.get(p + "pre_feedforward_layernorm.weight"))
                x = x + self._norm(self._mlp(p, h), self.ck.get(p + "post_feedforward_layernorm.weight"))
                continue
            x = x + a
            h = self._norm(x, self.ck.get(p + "post_attention_layernorm.weight"))
            x = x + (self._moe(p, h) if c.moe_layers[l] else self._mlp(p, h))
        logits = self._norm(x, self.norm) @ self.lm_head.T
        return logits if c.broken == "gemma-final-softcap" else softcap(logits, c.final_cap)

    def greedy(self, prompt, n):
        """n ids generated greedily after prompt, and the top-two logit gap
        of each step."""
        cache, out, gaps = [], [], []
        logits = self.run(prompt, 0, cache)
        switch = self.cfg.longrope_switch()
        for i in range(n):
            out.append(int(np.argmax(logits[-1])))
            gaps.append(float(top_gap(logits[-1:])[0]))
            if i + 1 == n:
                break
            ids, past = list(prompt) + out, len(prompt) + i
            if switch is not None and len(ids) >= switch + 1 and past <= switch:
                # Phi3ForCausalLM.prepare_inputs_for_generation: the cache
                # holds short-factor keys; drop it and recompute with long.
                cache = []
                logits = self.run(ids, 0, cache)
            else:
                logits = self.run([out[-1]], past, cache)
        return out, gaps


# -------------------------------------------------------------- statistics

def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def top_gap(z):
    """Difference between the largest and second largest logit per row."""
    s = np.sort(z, axis=-1)
    return s[:, -1] - s[:, -2]


def compare(ref_logits, cand_logits, ids):
    ids = np.asarray(ids)
    r, c = ref_logits[:-1], cand_logits[:-1]
    lr, lc = log_softmax(r), log_softmax(c)
    kld = np.sum(np.exp(lr) * (lr - lc), axis=-1)
    nxt = ids[1:]
    rows = np.arange(len(nxt))
    nll_r, nll_c = -lr[rows, nxt], -lc[rows, nxt]
    agree = np.argmax(r, axis=-1) == np.argmax(c, axis=-1)
    near = (top_gap(r) < TIE_GAP) | (top_gap(c) < TIE_GAP)
    n = len(nxt)
    ppl_r, ppl_c = math.exp(nll_r.mean()), math.exp(nll_c.mean())
    return {
        "tokens": len(ids), "positions": n,
        "top1": float(agree.mean()),
        "top1_range": [float((agree & ~near).sum() / n), float((agree | near).sum() / n)],
        "near_ties": int(near.sum()),
        "min_gap": float(min(top_gap(r).min(), top_gap(c).min())),
        "kld": {"mean": float(kld.mean()), "median": float(np.median(kld)),
                "p99": float(np.percentile(kld, 99)), "max": float(kld.max())},
        "ppl": {"ref": ppl_r, "cand": ppl_c, "ratio": ppl_c / ppl_r},
    }


def rel_ok(a, b, tol=REL_TOL, floor=0.0):
    return abs(a - b) <= tol * max(abs(a), abs(b)) or abs(a - b) <= floor


def greedy_line(line, g, side, model):
    """Check greedy.<side>_ids against this model's own greedy run from
    greedy.prompt: equal, or first differing after a near-tied step."""
    field = "greedy." + side
    if not isinstance(g, dict) or not g.get(side + "_ids"):
        line(field, True, "absent", "-", "not checked")
        return
    prompt, theirs = g.get("prompt") or [], g[side + "_ids"]
    if not prompt or not all(type(i) is int for i in prompt + theirs):
        line(field, False, "bad prompt or ids", "-")
        return
    key = (tuple(prompt), len(theirs))
    if key not in model.greedy_memo:
        model.greedy_memo[key] = model.greedy(prompt, len(theirs))
    ours, gaps = model.greedy_memo[key]
    first = next((i for i, (x, y) in enumerate(zip(theirs, ours)) if x != y), None)
    if first is None:
        line(field, True, "%d ids" % len(theirs), "%d ids" % len(ours),
             "equal (prompt %d ids; smallest gap %.3g)" % (len(prompt), min(gaps)))
        return
    tied = min(gaps[:first + 1]) < TIE_GAP
    line(field, tied, "differs at %d" % (first + 1), "%d ids" % len(ours),
         "step %d: qins %d, ref %d; smallest gap up to it %.3g%s" % (
             first + 1, theirs[first], ours[first], min(gaps[:first + 1]),
             " (a near tie: allowed)" if tied else ""))


def check(mine, ids, theirs, models=None):
    """Lines comparing `qins eval --json` output theirs with mine; ok flag.
    models: {"ref": Model, "cand": Model} to check the greedy ids too."""
    if not isinstance(theirs, dict):
        return ["FAIL the qins output is not a JSON object"], False
    lines, ok = [], True

    def line(field, good, their, our, note=""):
        nonlocal ok
        ok &= good
        lines.append("%-4s %-12s qins %-24s ref %-24s %s" % (
            "ok" if good else "FAIL", field, their, our, note))

    def num(*keys):
        v = theirs
        for k in keys:
            v = v.get(k) if isinstance(v, dict) else None
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    tid = theirs.get("ids")
    note = ""
    if isinstance(tid, list) and tid != list(ids):
        i = next((i for i, (x, y) in enumerate(zip(tid, ids)) if x != y), min(len(tid), len(ids)))
        note = "first difference at index %d: qins %s, ref %s" % (
            i, tid[i] if i < len(tid) else "(end)", ids[i] if i < len(ids) else "(end)")
    line("ids", tid == list(ids), "%d ids" % len(tid) if isinstance(tid, list) else repr(tid),
         "%d ids" % len(ids), note)
    for field in ("tokens", "positions"):
        line(field, num(field) == mine[field], num(field), mine[field])
    t1 = num("top1")
    lo, hi = mine["top1_range"]
    good = t1 is not None and lo * (1 - REL_TOL) <= t1 <= hi * (1 + REL_TOL)
    line("top1", good, t1, mine["top1"],
         "%d near-tied positions (gap < %g), allowed [%g, %g]; smallest gap %.3g"
         % (mine["near_ties"], TIE_GAP, lo, hi, mine["min_gap"]))
    km = num("kld", "mean")
    line("kld.mean", km is not None and rel_ok(km, mine["kld"]["mean"], floor=KLD_ABS),
         km, mine["kld"]["mean"], "rel 1e-3 or abs 1e-9")
    for field in ("ref", "cand"):
        v = num("ppl", field)
        line("ppl." + field, v is not None and rel_ok(v, mine["ppl"][field]), v, mine["ppl"][field])
    g = theirs.get("greedy")
    for side in ("ref", "cand") if models else ():
        greedy_line(line, g, side, models[side])
    if isinstance(g, dict) and isinstance(g.get("ref_ids"), list) and isinstance(g.get("cand_ids"), list):
        r, c = g["ref_ids"], g["cand_ids"]
        want = next((i + 1 for i, (x, y) in enumerate(zip(r, c)) if x != y),
                    None if len(r) == len(c) else min(len(r), len(c)) + 1)
        line("greedy.first", g.get("first_divergence") == want, g.get("first_divergence"), want,
             "first_divergence, 1-based, from qins's ref_ids and cand_ids")
    for keys in (("kld", "median"), ("kld", "p99"), ("kld", "max"), ("ppl", "ratio")):
        lines.append("info %-12s qins %-24s ref %-24s" % (
            ".".join(keys), num(*keys), mine[keys[0]][keys[1]]))
    return lines, ok


# ------------------------------------------------------------ phi3 copies

def write_safetensors(path, tensors):
    """tensors: list of (name, float32 array); written F32, temp + rename."""
    header, off = {}, 0
    for name, a in tensors:
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for _, a in tensors:
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())
    os.replace(tmp, path)


LONGROPE = {  # head_dim 8: 4 factors each; long > short so the choice shows
    "short_factor": [1.0, 1.05, 1.2, 1.5],
    "long_factor": [1.0, 1.6, 2.8, 4.5],
}
KINDS = ("phi3", "longrope", "longrope-short", "qwen2", "mistral", "mistral-window",
         "qwen3", "qwen3-moe", "mixtral", "gemma2", "gemma3")
NEW_KINDS = KINDS[6:]


def phi3_tensors(ck, n):
    """Llama tensors restacked: q, k, v rows into qkv_proj, gate, up into gate_up_proj."""
    fused = {}
    for i in range(n):
        p = "model.layers.%d." % i
        fused[p + "self_attn.qkv_proj.weight"] = [p + "self_attn.%s_proj.weight" % x for x in "qkv"]
        fused[p + "mlp.gate_up_proj.weight"] = [p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"]
    parts = {x for v in fused.values() for x in v}
    out = [(name, np.concatenate([ck.get(x) for x in v])) for name, v in fused.items()]
    return out + [(name, ck.get(name)) for name in ck.names - parts]


def qkv_biases(cfg, n):
    """Small seeded q/k/v biases, so a forward pass that drops them shows."""
    r = np.random.default_rng(11)
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    rows = {"q": cfg["num_attention_heads"] * hd, "k": cfg["num_key_value_heads"] * hd,
            "v": cfg["num_key_value_heads"] * hd}
    return [("model.layers.%d.self_attn.%s_proj.bias" % (i, x), 0.05 * r.standard_normal(m))
            for i in range(n) for x, m in rows.items()]


def new_arch_copy(kind, ck, cfg, n):
    """Tensors and config of the qwen3, qwen3-moe, mixtral, gemma2 and gemma3
    kinds: stories260K's trained weights where the layouts share them, seeded
    random ones for what they add (see the docstring)."""
    r = np.random.default_rng({"qwen3": 31, "qwen3-moe": 32, "mixtral": 33, "gemma2": 34, "gemma3": 35}[kind])
    t = {name: ck.get(name) for name in ck.names}
    hd, h = cfg["head_dim"], cfg["hidden_size"]
    for k in ("mlp_bias", "attention_bias", "pretraining_tp"):
        cfg.pop(k, None)
    cfg["attention_bias"] = False
    L = lambda i, s: "model.layers.%d.%s" % (i, s)  # noqa: E731
    if kind in ("qwen3", "qwen3-moe", "gemma3"):
        for i in range(n):
            for x in "qk":
                w = 0.3 * r.standard_normal(hd)
                t[L(i, "self_attn.%s_norm.weight" % x)] = w if kind == "gemma3" else 1.0 + w
    if kind in ("qwen3-moe", "mixtral"):
        experts, inter = 4, cfg["intermediate_size"]
        dense = [2] if kind == "qwen3-moe" else []
        for i in range(n):
            if i in dense:
                continue
            mlp = [t.pop(L(i, "mlp.%s_proj.weight" % x)) for x in ("gate", "up", "down")]
            gate = 0.5 * r.standard_normal((experts, h))
            if kind == "mixtral":
                t[L(i, "block_sparse_moe.gate.weight")] = gate
                for e in range(experts):
                    # expert 0 is stories260K's MLP, the others perturbed copies
                    g, u, d = (m * (1.0 + (0.5 * r.standard_normal(m.shape) if e else 0.0)) for m in mlp)
                    for name, m in (("w1", g), ("w3", u), ("w2", d)):
                        t[L(i, "block_sparse_moe.experts.%d.%s.weight" % (e, name))] = m
            else:
                t[L(i, "mlp.gate.weight")] = gate
                per = inter // experts  # expert e: MLP units [e per, (e+1) per)
                for e in range(experts):
                    sl = slice(e * per, (e + 1) * per)
                    t[L(i, "mlp.experts.%d.gate_proj.weight" % e)] = 2.0 * mlp[0][sl]
                    t[L(i, "mlp.experts.%d.up_proj.weight" % e)] = mlp[1][sl]
                    t[L(i, "mlp.experts.%d.down_proj.weight" % e)] = mlp[2][:, sl]
        if kind == "mixtral":
            cfg.update({"architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
                        "num_local_experts": experts, "num_experts_per_tok": 2, "sliding_window": None})
        else:
            cfg.update({"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
                        "num_experts": experts, "num_experts_per_tok": 2, "moe_intermediate_size": per,
                        "norm_topk_prob": False, "decoder_sparse_step": 1, "mlp_only_layers": dense,
                        "use_sliding_window": False, "sliding_window": None})
    elif kind == "qwen3":
        cfg.update({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3",
                    "use_sliding_window": False, "sliding_window": None, "max_window_layers": n})
    else:
        # Gemma multiplies by (1 + w): stories260K's norms become w - 1; the
        # norms Gemma adds after attention and the MLP are random near 1.
        for i in range(n):
            t[L(i, "input_layernorm.weight")] -= 1.0
            t[L(i, "pre_feedforward_layernorm.weight")] = t.pop(L(i, "post_attention_layernorm.weight")) - 1.0
            t[L(i, "post_attention_layernorm.weight")] = 0.2 * r.standard_normal(h) - 0.5
            t[L(i, "post_feedforward_layernorm.weight")] = 0.2 * r.standard_normal(h) - 0.5
        t["model.norm.weight"] -= 1.0
        cfg.update({"architectures": ["Gemma2ForCausalLM" if kind == "gemma2" else "Gemma3ForCausalLM"],
                    "model_type": "gemma2" if kind == "gemma2" else "gemma3_text",
                    "hidden_activation": "gelu_pytorch_tanh", "hidden_act": "gelu_pytorch_tanh",
                    "sliding_window": 48, "tie_word_embeddings": True})
        if kind == "gemma2":
            # caps that bind on this model's scores and logits
            cfg.update({"query_pre_attn_scalar": 16, "attn_logit_softcapping": 4.0,
                        "final_logit_softcapping": 8.0})
        else:
            # layers 0, 1, 3, 4 slide (local RoPE base 10000), layer 2 is
            # global (rope_theta 1e6, linear scaling by 8)
            cfg.update({"query_pre_attn_scalar": 12, "attn_logit_softcapping": None,
                        "final_logit_softcapping": None, "sliding_window_pattern": 3,
                        "rope_local_base_freq": 10000.0, "rope_theta": 1e6,
                        "rope_scaling": {"rope_type": "linear", "factor": 8.0}})
    return list(t.items())


def make_copy(kind, src, out, same_as):
    """Write a variant of a plain Llama checkpoint folder; see the docstring."""
    ck = Checkpoint(src)
    cfg = load_json(os.path.join(src, "config.json"), "config")
    if ck.qins or cfg.get("architectures") != ["LlamaForCausalLM"]:
        raise InputError("%s: --make wants a plain Llama checkpoint folder" % src)
    bad = sorted(n for n, t in ck.raw.items() if t.dtype != "F32")
    if bad:
        raise InputError("%s: %r is %s, --make keeps F32 only" % (src, bad[0], ck.raw[bad[0]].dtype))
    n = cfg["num_hidden_layers"]
    cfg.pop("pretraining_tp", None)
    if kind in ("phi3", "longrope", "longrope-short"):
        tensors = phi3_tensors(ck, n)
        cfg.pop("mlp_bias", None)
        cfg.update({"architectures": ["Phi3ForCausalLM"], "model_type": "phi3",
                    "original_max_position_embeddings": cfg["max_position_embeddings"],
                    "sliding_window": None, "resid_pdrop": 0.0, "embd_pdrop": 0.0})
        if kind != "phi3":
            orig, mx = {"longrope": (64, 256), "longrope-short": (256, 1024)}[kind]
            cfg.update({"max_position_embeddings": mx, "original_max_position_embeddings": orig,
                        "rope_scaling": dict(LONGROPE, type="longrope")})
    elif kind in NEW_KINDS:
        tensors = new_arch_copy(kind, ck, cfg, n)
    elif kind == "qwen2":
        tensors = [(name, ck.get(name)) for name in ck.names] + qkv_biases(cfg, n)
        for k in ("mlp_bias", "attention_bias"):
            cfg.pop(k, None)
        cfg.update({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2",
                    "use_sliding_window": False, "sliding_window": None, "max_window_layers": n})
    else:
        tensors = [(name, ck.get(name)) for name in ck.names]
        cfg.pop("mlp_bias", None)
        cfg.update({"architectures": ["MistralForCausalLM"], "model_type": "mistral",
                    "sliding_window": 48 if kind == "mistral-window" else None})
    tensors = sorted((name, a.astype(np.float32)) for name, a in tensors)
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), tensors)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for extra in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                  "generation_config.json"):
        if os.path.exists(os.path.join(src, extra)):
            shutil.copyfile(os.path.join(src, extra), os.path.join(out, extra))
    print("wrote %s: %d tensors, %s (%s)" % (out, len(tensors), cfg["architectures"][0], kind))
    return compare_fixture(out, same_as, cfg, kind != "phi3") if same_as else 0


def compare_fixture(out, fixture, cfg, longrope):
    mine, theirs = Checkpoint(out), Checkpoint(fixture)
    bad = []
    if mine.names != theirs.names:
        bad.append("tensor names differ: %s" % sorted(mine.names ^ theirs.names)[:4])
    for name in sorted(mine.names & theirs.names):
        a, b = mine.raw[name], theirs.raw[name]
        if (a.dtype, a.shape) != (b.dtype, b.shape):
            bad.append("%s: %s %s vs %s %s" % (name, a.dtype, a.shape, b.dtype, b.shape))
        elif not np.array_equal(parity.read_bytes(a, 0, a.nbytes), parity.read_bytes(b, 0, b.nbytes)):
            bad.append("%s: bytes differ" % name)
    if not longrope:
        fc = load_json(os.path.join(fixture, "config.json"), "config")
        if fc != cfg:
            keys = sorted(k for k in set(fc) | set(cfg) if fc.get(k) != cfg.get(k))
            bad.append("config.json differs in %s" % keys)
    for b in bad[:10]:
        print("FAIL " + b)
    print("same as %s: %s (%d tensors compared byte for byte)" % (
        fixture, "no" if bad else "yes", len(mine.names & theirs.names)))
    return 1 if bad else 0


# ------------------------------------------------------------------- main

def parse(argv):
    ap = argparse.ArgumentParser(prog="eval_ref.py", usage=__doc__.split("\n\n")[1])
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--tokens")
    ap.add_argument("--config")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--check")
    ap.add_argument("--mutants", action="store_true")
    ap.add_argument("--greedy", type=int)
    ap.add_argument("--expect")
    ap.add_argument("--make", choices=KINDS)
    ap.add_argument("--same-as")
    ap.add_argument("--break", dest="broken", choices=BREAKS)
    return ap.parse_args(argv)


def load_model(arg, config):
    path = config_path(arg, config)
    return Model(Config(load_json(path, "config"), path), Checkpoint(arg))


def cand_config(arg, override, ref_cfg):
    """CAND's config: REF's (as qins eval does), unless the config.json beside
    CAND names another architecture (another layout of the same model)."""
    path = config_path(arg, None)
    if override or not os.path.exists(path):
        return ref_cfg
    own = Config(load_json(path, "config"), path)
    return own if own.arch != ref_cfg.arch else ref_cfg


def run_greedy(a):
    m = load_model(a.paths[0], a.config)
    m.cfg.broken = a.broken
    got = [m.cfg.bos] + m.greedy([m.cfg.bos], a.greedy)[0]
    print(json.dumps(got) if a.json else "greedy %d tokens from BOS %d: %s" % (
        a.greedy, m.cfg.bos, got))
    if a.expect:
        want = load_json(a.expect, "expected ids")
        same = got == want
        first = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), None)
        print("greedy equals %s: %s%s" % (a.expect, "yes" if same else "no",
                                           "" if same else " (first difference at index %s)" % first))
        return 0 if same else 1
    return 0


def run_compare(a):
    ref_arg, cand_arg = a.paths
    ids = load_json(a.tokens, "token ids")
    if not isinstance(ids, list) or len(ids) < 2 or not all(type(i) is int for i in ids):
        raise InputError("%s: not a JSON list of at least 2 integer ids" % a.tokens)
    ref = load_model(ref_arg, a.config)
    cand = Model(cand_config(cand_arg, a.config, ref.cfg), Checkpoint(cand_arg))
    ref.cfg.broken = cand.cfg.broken = a.broken
    for name in sorted(ref.ck.names | cand.ck.names):
        if cand.cfg.arch != ref.cfg.arch:
            break   # another layout of the same model: each side reads its own names
        if name not in ref.ck.names or name not in cand.ck.names:
            raise InputError("%s: tensor %r only on one side" % (cand_arg, name))
        if ref.ck.shape(name) != cand.ck.shape(name):
            raise InputError("%s: tensor %r shape %s, REF has %s" % (
                cand_arg, name, cand.ck.shape(name), ref.ck.shape(name)))
    if ref.cfg.max_pos and len(ids) > ref.cfg.max_pos:
        raise InputError("%d ids exceed max_position_embeddings %d" % (len(ids), ref.cfg.max_pos))
    mine = compare(ref.run(ids, 0, []), cand.run(ids, 0, []), ids)
    mine.update({"ref": ref_arg, "cand": cand_arg, "architecture": ref.cfg.arch, "ids": ids})
    if a.json:
        print(json.dumps(mine))
    else:
        print("%s: %d positions, top-1 %.4f (near ties %d), KLD mean %.6g median %.6g "
              "p99 %.6g max %.6g, ppl ref %.6g cand %.6g ratio %.6g" % (
                  ref.cfg.arch, mine["positions"], mine["top1"], mine["near_ties"],
                  mine["kld"]["mean"], mine["kld"]["median"], mine["kld"]["p99"],
                  mine["kld"]["max"], mine["ppl"]["ref"], mine["ppl"]["cand"],
                  mine["ppl"]["ratio"]))
    if not a.check:
        return 0
    theirs = load_json(a.check, "qins eval --json output")
    # A --break variant must fail on the statistics alone: its greedy runs
    # are not worth their time.
    models = None if a.broken else {"ref": ref, "cand": cand}
    lines, ok = check(mine, ids, theirs, models)
    print("\n".join(lines))
    print("check of %s: %s" % (a.check, "PASS" if ok else "FAIL"))
    if a.mutants:
        ok &= check_fails_on_mutants(mine, ids, theirs, models)
    return 0 if ok else 1


MUTANTS = [  # edits of a passing qins output that the check must reject
    ("top1 - 0.005", lambda d: d.__setitem__("top1", d["top1"] - 0.005)),
    ("kld.mean x 1.002", lambda d: d["kld"].__setitem__("mean", d["kld"]["mean"] * 1.002)),
    ("ppl.ref x 1.002", lambda d: d["ppl"].__setitem__("ref", d["ppl"]["ref"] * 1.002)),
    ("ppl.cand x 0.998", lambda d: d["ppl"].__setitem__("cand", d["ppl"]["cand"] * 0.998)),
    ("ids[7] xor 1", lambda d: d["ids"].__setitem__(7, d["ids"][7] ^ 1)),
    ("positions + 1", lambda d: d.__setitem__("positions", d["positions"] + 1)),
    ("greedy.ref_ids[3] xor 1", lambda d: d["greedy"]["ref_ids"].__setitem__(3, d["greedy"]["ref_ids"][3] ^ 1)),
    ("greedy.cand_ids[3] xor 1", lambda d: d["greedy"]["cand_ids"].__setitem__(3, d["greedy"]["cand_ids"][3] ^ 1)),
    ("greedy.first_divergence + 1", lambda d: d["greedy"].__setitem__(
        "first_divergence", (d["greedy"]["first_divergence"] or 0) + 1)),
]


def check_fails_on_mutants(mine, ids, theirs, models):
    """--mutants: the check must fail on each edit in MUTANTS."""
    ok = True
    for what, edit in MUTANTS:
        d = json.loads(json.dumps(theirs))
        try:
            edit(d)
        except (KeyError, TypeError, IndexError):
            print("skip mutant %s: the output lacks the field" % what)
            continue
        failed = not check(mine, ids, d, models)[1]
        ok &= failed
        print("%-4s the check %s the mutant %s" % ("ok" if failed else "FAIL",
                                                  "fails on" if failed else "PASSES", what))
    return ok


def main(argv):
    a = parse(argv)
    try:
        if a.make:
            if len(a.paths) != 2:
                raise InputError("--make wants SRC OUT")
            return make_copy(a.make, a.paths[0], a.paths[1], a.same_as)
        if a.greedy is not None:
            if len(a.paths) != 1:
                raise InputError("--greedy wants REF only")
            return run_greedy(a)
        if len(a.paths) != 2 or not a.tokens:
            raise InputError("want REF CAND --tokens IDS.json (or --greedy, --make)")
        return run_compare(a)
    except InputError as e:
        sys.stderr.write("eval_ref.py: %s\n" % e)
        return 2
    except (KeyError, TypeError, ValueError) as e:
        sys.stderr.write("eval_ref.py: bad config or input: %r\n" % (e,))
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
