#!/usr/bin/env python3
"""Golden token ids from the real SentencePiece library, for the Go tokenizer.

    scripts/tokenizer_golden.py [STORIES260K_DIR]

Why: convert/eval/internal/tokenizer is a hand-written SentencePiece BPE. Its tests compare
it with what Google's own sentencepiece (Debian python3-sentencepiece) does,
on strings chosen to hit the edges: spaces at the ends and in runs, newlines,
accents, CJK, emoji and other characters outside the vocabulary (byte
fallback), repeated letters (ties between equal pieces), literal "<s>", U+2581 itself, the empty string, and seeded random
mixtures of all of these.

It writes, under convert/eval/internal/tokenizer/testdata/:

* golden-stories260K.json: encode cases (text -> ids) and decode cases
  (ids -> text) for STORIES260K_DIR/tokenizer.model (default
  testdata/stories260K, else ../shared/fixtures/llm/stories260K): BPE, byte fallback, dummy prefix, no
  whitespace collapsing, as Llama-2 ships.
* tiny-bpe.model and golden-tiny-bpe.json: a small BPE model trained here
  with the options stories260K lacks: no byte fallback (unknown characters
  -> <unk>, runs fused), remove_extra_whitespaces on, user-defined symbols
  matched whole, and a <pad> control piece.
* stories-unused.model and golden-stories-unused.json: the stories260K
  model with a few pieces marked UNUSED, which SentencePiece merges into
  and then splits back.

Run it again after changing the cases; the output is deterministic.
"""

import io
import json
import os
import random
import sys

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "convert", "tokenizer", "testdata")

FIXED = [
    "",
    " ",
    "  ",
    "a",
    " a",
    "a ",
    "  leading spaces",
    "trailing spaces  ",
    "multiple   spaces   inside",
    "\n",
    "line one\nline two\n",
    "\n\nLily",
    "\r\n windows",
    "\ttab\tseparated",
    "Once upon a time, there was a little girl named Lily.",
    "Hello, World! 123 4567",
    "é",
    "café naïve résumé",
    "e\u0301 combining",
    "日本語のテキスト",
    "😀",
    "👍🏽 family 👨\u200d👩\u200d👧",
    "🤖🤖🤖",
    "Ω≈ç√∫",
    "\u00a0no-break\u00a0space",
    "\u2581 a literal mark \u2581\u2581",
    "\u2581",
    "<s> </s> <unk> <0x41>",
    "\u0000nul and \u007fdel",
    "\ufffd replacement",
    "\U0010ffff last code point",
    "x" * 300,
    "llll allll ppppp oooo",  # equal scores: the leftmost pair merges first
    "aaaa eeee    tttttt",
    "the the the " * 40,
]

ALPHABET = list("abcdefghij ETAONIS.,!?'") + [" ", " ", "  ", "\n", "é", "ß", "日", "😀", "\u2581", "\t", "~"]


def random_cases(n, seed):
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 40))) for _ in range(n)]


def cases(sp, texts, decode_ids):
    enc = [{"text": t, "ids": sp.encode(t)} for t in texts]
    dec = [{"ids": ids, "text": sp.decode(ids)} for ids in decode_ids]
    return {"encode": enc, "decode": dec}


def write_json(name, obj):
    path = os.path.join(OUT, name)
    # One case per line: small diffs when cases change.
    dump = lambda v: json.dumps(v, ensure_ascii=False)
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"model": %s,\n' % dump(obj["model"]))
        for key in ("encode", "decode"):
            f.write(' "%s": [\n  ' % key)
            f.write(",\n  ".join(dump(c) for c in obj[key]))
            f.write("\n ]%s\n" % ("," if key == "encode" else ""))
        f.write("}\n")
    print("wrote", os.path.relpath(path, ROOT))


def stories(model):
    sp = spm.SentencePieceProcessor(model_file=model)
    byte = lambda b: sp.piece_to_id("<0x%02X>" % b)
    sp_ = sp.piece_to_id("\u2581")
    a = sp.piece_to_id("\u2581a")
    decode_ids = [
        [],
        [1],
        [1, 2],
        [sp_, sp_],
        [1, sp_, a],
        [1, 2, sp_, a],
        [byte(0x0A), sp_, a],
        [byte(0x20), sp_],
        [byte(0xF0), byte(0x9F)],
        [byte(0xF0), byte(0x9F), sp_, a],
        [byte(0xF0), byte(0x9F), byte(0x98), byte(0x80), byte(0x80)],
        [byte(0xC3), byte(0xA9), byte(0xC3)],
        [0, 0, a],
        [0, sp_],
        [1, 0, a],
        [a, 1, a, 2, a],
    ]
    texts = FIXED + random_cases(60, 260)
    out = cases(sp, texts, decode_ids)
    out["model"] = "stories260K/tokenizer.model"
    write_json("golden-stories260K.json", out)


def varint(b, i):
    v = shift = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def put_varint(v):
    out = bytearray()
    while True:
        c = v & 0x7F
        v >>= 7
        out.append(c | (0x80 if v else 0))
        if not v:
            return bytes(out)


def fields(b):
    """Yields (number, wire type, raw bytes of the whole field, payload)."""
    i = 0
    while i < len(b):
        start = i
        key, i = varint(b, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            _, i = varint(b, i)
            payload = None
        elif wire == 2:
            n, i = varint(b, i)
            payload = b[i : i + n]
            i += n
        elif wire == 5:
            i += 4
            payload = None
        else:
            raise ValueError("wire type %d" % wire)
        yield num, wire, b[start:i], payload


def mark_unused(model, names):
    """Returns the ModelProto bytes with the pieces in names typed UNUSED (5)."""
    out = bytearray()
    for num, _, raw, payload in fields(model):
        if num != 1:
            out += raw
            continue
        text = next(p for n, _, _, p in fields(payload) if n == 1).decode()
        if text not in names:
            out += raw
            continue
        piece = b"".join(r for n, _, r, _ in fields(payload) if n != 3) + bytes([3 << 3, 5])
        out += bytes([1 << 3 | 2]) + put_varint(len(piece)) + piece
    return bytes(out)


def unused(model, story):
    """stories260K with a few pieces UNUSED: SentencePiece merges into them
    and splits them back, which only a hand-edited model shows."""
    with open(model, "rb") as f:
        data = mark_unused(f.read(), {"he", "\u2581the", "ing", "\u2581a", "ll"})
    path = os.path.join(OUT, "stories-unused.model")
    with open(path, "wb") as f:
        f.write(data)
    print("wrote", os.path.relpath(path, ROOT))
    sp = spm.SentencePieceProcessor(model_proto=data)
    assert sp.is_unused(sp.piece_to_id("he")), "marking pieces unused failed"
    with open(story, encoding="utf-8") as f:
        texts = FIXED + [f.read(), "the theme then he hello thing singing a all"] + random_cases(20, 400)
    out = cases(sp, texts, [])
    out["model"] = "stories-unused.model"
    write_json("golden-stories-unused.json", out)


def tiny(story):
    # Trained on the fixture's story plus a few fixed lines, so reruns match.
    with open(story, encoding="utf-8") as f:
        corpus = [line.strip() for line in f.read().replace(". ", ".\n").split("\n") if line.strip()]
    corpus += ["qins <tool> call", "the tokenizer splits words", "Hello, World! 123 4567"] * 5
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=model,
        model_type="bpe",
        vocab_size=200,
        character_coverage=0.98,
        byte_fallback=False,
        user_defined_symbols=["<tool>", "qins"],
        pad_id=3,
        normalization_rule_name="identity",
        remove_extra_whitespaces=True,
        add_dummy_prefix=True,
        num_threads=1,
        minloglevel=2,
    )
    path = os.path.join(OUT, "tiny-bpe.model")
    with open(path, "wb") as f:
        f.write(model.getvalue())
    print("wrote", os.path.relpath(path, ROOT))
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    texts = FIXED + ["use qins<tool>qins now", "qinsqins", " <tool> ", "日本 語 😀😀 x"] + random_cases(40, 300)
    decode_ids = [[0, 0, 5], [3, 1, 2, 5], [sp.piece_to_id("<tool>"), 5]]
    out = cases(sp, texts, decode_ids)
    out["model"] = "tiny-bpe.model"
    write_json("golden-tiny-bpe.json", out)


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "testdata", "stories260K")
    if not os.path.exists(os.path.join(src, "tokenizer.model")):
        src = os.path.join(ROOT, "..", "shared", "fixtures", "llm", "stories260K")
    os.makedirs(OUT, exist_ok=True)
    stories(os.path.join(src, "tokenizer.model"))
    tiny(os.path.join(src, "expected-greedy-200.txt"))
    unused(os.path.join(src, "tokenizer.model"), os.path.join(src, "expected-greedy-200.txt"))


if __name__ == "__main__":
    main()
