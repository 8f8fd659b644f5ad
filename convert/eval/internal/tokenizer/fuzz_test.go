package tokenizer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// addSeeds adds the golden texts as fuzz seeds.
func addSeeds(f *testing.F) {
	for _, name := range []string{"golden-stories260K.json", "golden-tiny-bpe.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b[:min(len(b), 300)]))
	}
	for _, s := range []string{"", " ", "Once upon a time", "\xff\xfe a\xc3", "▁▁ x ▁", "😀 \n\t<s>"} {
		f.Add(s)
	}
}

// FuzzEncode checks, for any string s, that no loader fails or panics, that
// tokenizer.json and tokenizer.model give the same ids, and that with byte
// fallback and spaces kept (stories260K) decoding gives s back, except
// that "▁" in s comes back as a space (it is SentencePiece's space) and
// each invalid UTF-8 byte as U+FFFD (Encode's first step).
func FuzzEncode(f *testing.F) {
	addSeeds(f)
	tiny, err := LoadFile(filepath.Join("testdata", "tiny-bpe.model"))
	if err != nil {
		f.Fatal(err)
	}
	both := loadBoth(f) // skips without the fixture
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := tiny.Encode(s)
		if err != nil {
			t.Fatalf("tiny: Encode(%q): %v", s, err)
		}
		for _, id := range ids {
			if id < 0 || id >= tiny.VocabSize() {
				t.Fatalf("tiny: Encode(%q) gave id %d", s, id)
			}
		}
		tiny.Decode(ids)
		var first []int
		for _, name := range loaders {
			tok := both[name]
			ids, err := tok.Encode(s)
			if err != nil {
				t.Fatalf("%s: Encode(%q): %v", name, s, err)
			}
			if first == nil {
				first = ids
			} else if !slices.Equal(ids, first) {
				t.Fatalf("Encode(%q): %s gives %v, %s gives %v", s, loaders[0], first, name, ids)
			}
			if got, want := tok.DecodeSpecial(ids), wantDecoded(tok, s); got != want {
				t.Fatalf("%s: Decode(Encode(%q)) = %q, want %q", name, s, got, want)
			}
		}
	})
}

// wantDecoded is what DecodeSpecial of Encode(s) gives for stories260K:
// s with each invalid byte as U+FFFD and "▁" as a space, and a space in
// front of each text after a special token (the dummy prefix each text
// between special tokens gets, kept as transformers keeps it).
func wantDecoded(tok *Tokenizer, s string) string {
	s = replaceInvalid(s)
	var b strings.Builder
	at := 0
	text := func(p string) {
		if p != "" && at > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strings.ReplaceAll(p, spaceMark, " "))
	}
	for _, sp := range tok.raw.findRaw(s) {
		text(s[at:sp.start])
		b.WriteString(s[sp.start:sp.end])
		at = int(sp.end)
	}
	text(s[at:])
	return b.String()
}

// FuzzParseModel feeds arbitrary bytes as a tokenizer.model: errors are
// fine, panics are not, and what loads must encode and decode.
func FuzzParseModel(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "tiny-bpe.model"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add([]byte(spModel([]string{"▁", "a", "b", "▁a", "ab", "▁ab"}, nil, nil)))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseModel(data)
		if err != nil {
			return
		}
		exercise(t, tok)
	})
}

// FuzzParseJSON feeds arbitrary bytes as a tokenizer.json.
func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"added_tokens": [{"id": 4, "content": "<x>"}], "model": {"type": "BPE", "vocab": {"<unk>": 0, "▁": 1, "a": 2, "▁a": 3}, "merges": ["▁ a"], "unk_token": "<unk>"}, "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]}}`))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"<0x41>": 0, "b": 1}, "merges": [], "byte_fallback": true}, "pre_tokenizer": {"type": "Metaspace", "replacement": "▁"}}`))
	f.Add([]byte(`{"added_tokens": [{"id": 3, "content": "<x>", "lstrip": true, "rstrip": true, "special": true}], "normalizer": {"type": "NFC"}, "model": {"type": "BPE", "vocab": {"a": 0, "Ġ": 1, "Ġa": 2}, "merges": [["Ġ", "a"]], "ignore_merges": true}, "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\s+(?!\\S)|\\p{L}+"}, "behavior": "Isolated", "invert": false}, {"type": "Digits", "individual_digits": true}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]}, "decoder": {"type": "ByteLevel"}, "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<x>"}}]}}`))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"<0x41>": 0, "▁": 1, "b": 2}, "merges": [], "byte_fallback": true}, "normalizer": {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}, "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false}, "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 1}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := parseJSON(data)
		if err != nil {
			return
		}
		exercise(t, tok)
	})
}

// FuzzByteLevel checks that a byte-level tokenizer gives any text back,
// each invalid UTF-8 byte as U+FFFD, special tokens written in it
// included, and that tokenizer.json's spellings of the same parts agree.
func FuzzByteLevel(f *testing.F) {
	addSeeds(f)
	for _, s := range []string{"<|im_start|>user\n", "a<|w|>b <|w|> ", "the   the\t\n", "'S 's 123456 ١٢٣"} {
		f.Add(s)
	}
	added := map[string]any{"added_tokens": []map[string]any{
		{"id": 300, "content": "<|im_start|>", "special": true, "normalized": false},
		{"id": 303, "content": "<|w|>", "single_word": true, "normalized": false},
	}}
	tok := mustParse(f, byteLevelJSON(f, added))
	// The same through a Split with GPT-2's pattern and a ByteLevel
	// without it.
	added["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{
		map[string]any{"type": "Split", "pattern": map[string]any{"Regex": gpt2Pattern}, "behavior": "Isolated", "invert": false},
		map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}}}
	split := mustParse(f, byteLevelJSON(f, added))
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := tok.Encode(s)
		if err != nil {
			t.Fatalf("Encode(%q): %v", s, err)
		}
		if got := tok.DecodeSpecial(ids); got != replaceInvalid(s) {
			t.Fatalf("DecodeSpecial(Encode(%q)) = %q (ids %v)", s, got, ids)
		}
		if other, err := split.Encode(s); err != nil || !slices.Equal(other, ids) {
			t.Fatalf("Encode(%q) = %v; with Split: %v, %v", s, ids, other, err)
		}
	})
}

// exercise encodes and decodes a few strings with a fuzzed tokenizer.
func exercise(t *testing.T, tok *Tokenizer) {
	for _, s := range []string{"", "a", " ab  ab\n", "<x>a😀"} {
		ids, err := tok.Encode(s)
		if err != nil {
			continue
		}
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() {
				t.Fatalf("Encode(%q) gave id %d of %d", s, id, tok.VocabSize())
			}
		}
		tok.Decode(ids)
		tok.DecodeSpecial(ids)
		if _, err := tok.EncodeInput(s); err != nil {
			t.Fatalf("EncodeInput(%q): %v after Encode gave none", s, err)
		}
	}
	all := make([]int, tok.VocabSize()+2)
	for i := range all {
		all[i] = i - 1
	}
	tok.Decode(all)
}
