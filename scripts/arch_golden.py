#!/usr/bin/env python3
"""Tiny random models of the newer architectures, and their logits from
scripts/eval_ref.py's float64 forward pass, for the Go model package's
golden test (TestGoldenNumpy).

    scripts/arch_golden.py [OUT]

OUT defaults to convert/eval/internal/model/testdata. For each KIND of
qwen3, qwen3-moe, mixtral, gemma2 and gemma3 it writes KIND-tiny/config.json
and KIND-tiny/model.safetensors (F32, seeded normal weights: hidden 16, 3
layers, vocabulary 64, 4 experts of 8 units, top-2; sliding windows of 5 and
Gemma's soft-caps small enough to bind), and golden/KIND-tiny.json: the
ids (24, seeded), every position, and the logits eval_ref.py computes for
them, rounded to float32. Run again, it writes the same bytes.
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_ref  # noqa: E402

BASE = {"hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 4, "vocab_size": 64, "max_position_embeddings": 64,
        "rms_norm_eps": 1e-6, "rope_theta": 10000.0, "bos_token_id": 1, "eos_token_id": 2}
KINDS = {
    "qwen3": {"architectures": ["Qwen3ForCausalLM"], "tie_word_embeddings": False, "attention_bias": False},
    "qwen3-moe": {"architectures": ["Qwen3MoeForCausalLM"], "tie_word_embeddings": False, "num_experts": 4,
                  "num_experts_per_tok": 2, "moe_intermediate_size": 8, "norm_topk_prob": True,
                  "mlp_only_layers": [1], "use_sliding_window": True, "sliding_window": 5},
    "mixtral": {"architectures": ["MixtralForCausalLM"], "tie_word_embeddings": False, "num_local_experts": 4,
                "num_experts_per_tok": 2, "intermediate_size": 8, "sliding_window": 5},
    "gemma2": {"architectures": ["Gemma2ForCausalLM"], "hidden_activation": "gelu_pytorch_tanh",
               "query_pre_attn_scalar": 8, "attn_logit_softcapping": 1.0, "final_logit_softcapping": 2.0,
               "sliding_window": 5},
    "gemma3": {"architectures": ["Gemma3ForCausalLM"], "hidden_activation": "gelu_pytorch_tanh",
               "query_pre_attn_scalar": 6, "final_logit_softcapping": 3.0, "sliding_window": 5,
               "sliding_window_pattern": 2, "rope_local_base_freq": 100.0, "rope_theta": 10000.0,
               "rope_scaling": {"rope_type": "linear", "factor": 4.0}},
}


def tensors(cfg, r):
    """Seeded weights for every tensor the configuration reads."""
    c = eval_ref.Config(cfg, "config.json")
    h, hd, inter = c.hidden, c.head_dim, cfg["intermediate_size"]
    t = {"model.embed_tokens.weight": r.standard_normal((c.vocab, h)),
         "model.norm.weight": 0.3 * r.standard_normal(h) + (0 if c.gemma else 1)}
    if not cfg.get("tie_word_embeddings", c.gemma):
        t["lm_head.weight"] = r.standard_normal((c.vocab, h)) / np.sqrt(h)

    def mat(rows, cols):
        return 1.5 * r.standard_normal((rows, cols)) / np.sqrt(cols)
    for i in range(c.layers):
        p = "model.layers.%d." % i
        norms = ["input_layernorm", "post_attention_layernorm"]
        if c.gemma:
            norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
        for n in norms:
            t[p + n + ".weight"] = 0.3 * r.standard_normal(h) + (0 if c.gemma else 1)
        for x, rows in (("q", c.heads * hd), ("k", c.kv_heads * hd), ("v", c.kv_heads * hd)):
            t[p + "self_attn.%s_proj.weight" % x] = mat(rows, h)
        t[p + "self_attn.o_proj.weight"] = mat(h, c.heads * hd)
        if c.qk_norm:
            for x in "qk":
                t[p + "self_attn.%s_norm.weight" % x] = 0.3 * r.standard_normal(hd) + (0 if c.gemma else 1)
        if c.moe_layers[i]:
            mixtral = c.arch == "MixtralForCausalLM"
            t[p + ("block_sparse_moe.gate.weight" if mixtral else "mlp.gate.weight")] = mat(c.experts, h)
            for e in range(c.experts):
                names = ("w1", "w3", "w2") if mixtral else ("gate_proj", "up_proj", "down_proj")
                q = p + ("block_sparse_moe.experts.%d." if mixtral else "mlp.experts.%d.") % e
                t[q + names[0] + ".weight"] = mat(c.expert_inter, h)
                t[q + names[1] + ".weight"] = mat(c.expert_inter, h)
                t[q + names[2] + ".weight"] = mat(h, c.expert_inter)
        else:
            t[p + "mlp.gate_proj.weight"] = mat(inter, h)
            t[p + "mlp.up_proj.weight"] = mat(inter, h)
            t[p + "mlp.down_proj.weight"] = mat(h, inter)
    return sorted((name, a.astype(np.float32)) for name, a in t.items())


def main(argv):
    out = argv[0] if argv else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "convert", "eval",
                                            "internal", "model", "testdata")
    for seed, (kind, extra) in enumerate(KINDS.items()):
        cfg = dict(BASE, **extra)
        r = np.random.default_rng(100 + seed)
        folder = os.path.join(out, kind + "-tiny")
        os.makedirs(folder, exist_ok=True)
        eval_ref.write_safetensors(os.path.join(folder, "model.safetensors"), tensors(cfg, r))
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
            f.write("\n")
        ids = [1] + [int(x) for x in r.integers(3, cfg["vocab_size"], 23)]
        m = eval_ref.Model(eval_ref.Config(cfg, "config.json"), eval_ref.Checkpoint(folder))
        logits = m.run(ids, 0, []).astype(np.float32)
        golden = {"ids": ids, "positions": list(range(len(ids))),
                  "logits": [[float(v) for v in row] for row in logits]}
        with open(os.path.join(out, "golden", kind + "-tiny.json"), "w") as f:
            json.dump(golden, f, separators=(",", ":"))
            f.write("\n")
        print("wrote %s and golden/%s-tiny.json" % (folder, kind))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
