package main

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
)

const stories = "../../testdata/stories260K"

// evalJSON is the contract of `qins eval --json`.
type evalJSON struct {
	Ref, Cand, Architecture string
	IDs                     []int `json:"ids"`
	Tokens, Positions       int
	Top1                    *float64 `json:"top1"`
	KLD                     map[string]*float64
	PPL                     map[string]*float64 `json:"ppl"`
	Greedy                  *struct {
		Prompt          []int   `json:"prompt"`
		FirstDivergence *int    `json:"first_divergence"`
		RefIDs          []int   `json:"ref_ids"`
		CandIDs         []int   `json:"cand_ids"`
		RefText         *string `json:"ref_text"`
		CandText        *string `json:"cand_text"`
	}
	Fails []string
}

func TestEval(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "stories.qins.safetensors")
	// The reference's encoding: enough error for --min-top1 1 to fail.
	if code, _, errs := runQINS(t, "convert", stories, "-o", q, "--quiet", "--reference"); code != 0 {
		t.Fatalf("convert: %s", errs)
	}
	text, _ := os.ReadFile(filepath.Join(stories, "expected-greedy-200.txt"))
	textFile := filepath.Join(dir, "story.txt")
	os.WriteFile(textFile, text, 0o644)
	tokens := filepath.Join(dir, "ids.json")
	os.WriteFile(tokens, []byte("[1, 403, 407, 261, 378, 1, 9]"), 0o644)

	// Default stream, JSON: every field of the contract.
	code, out, errs := runQINS(t, "eval", stories, q, "--json", "--generate", "40")
	if code != 0 || errs != "" {
		t.Fatalf("eval --json: exit %d: %s", code, errs)
	}
	var r evalJSON
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.Architecture != "LlamaForCausalLM" || r.Tokens != 41 || len(r.IDs) != 41 || r.Positions != 40 || r.IDs[0] != 1 ||
		r.Top1 == nil || *r.Top1 <= 0 || *r.Top1 > 1 || !strings.HasSuffix(r.Cand, q) {
		t.Errorf("report: %+v", r)
	}
	for _, k := range []string{"mean", "median", "p99", "max"} {
		if v := r.KLD[k]; v == nil || *v <= 0 {
			t.Errorf("kld.%s = %v", k, v)
		}
	}
	for _, k := range []string{"ref", "cand", "ratio"} {
		if v := r.PPL[k]; v == nil || *v <= 0 {
			t.Errorf("ppl.%s = %v", k, v)
		}
	}
	if g := r.Greedy; g == nil || len(g.RefIDs) != 40 || len(g.CandIDs) != 40 || g.RefText == nil || g.CandText == nil ||
		!strings.HasPrefix(*g.RefText, "Once upon a time") || len(g.Prompt) != 1 {
		t.Errorf("greedy: %+v", r.Greedy)
	}

	// Thresholds: exit 1 with the report printed; met: exit 0.
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"--max-kld", "1e-9"}, 1, "FAIL: mean KLD"},
		{[]string{"--min-top1", "1"}, 1, "FAIL: top-1"},
		{[]string{"--max-kld", "1", "--min-top1", "0.5"}, 0, "top-1"},
		{[]string{"--generate", "3", "--memory", "1GiB"}, 0, "memory       1.07 GB for the weights of each generation: REF 1.0 MB resident\ngreedy"},
		{[]string{"--generate", "3", "--memory", "10kB"}, 0, "REF 1.0 MB streamed (over the budget, read every token)"},
		{[]string{"--tokens", tokens, "--generate", "0"}, 0, "--tokens"},
		{[]string{"--text", textFile, "--generate", "5"}, 0, "REF:\nShe loved to play"},
	} {
		code, out, errs := runQINS(t, append([]string{"eval", stories, q}, c.args...)...)
		if code != c.code || !strings.Contains(out, c.says) {
			t.Errorf("%v: exit %d (want %d), output lacks %q:\n%s%s", c.args, code, c.code, c.says, out, errs)
		}
	}
}

func TestEvalErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	bare := filepath.Join(dir, "bare")
	os.Mkdir(bare, 0o755)
	m, _ := os.ReadFile(filepath.Join(stories, "model.safetensors"))
	os.WriteFile(filepath.Join(bare, "model.safetensors"), m, 0o644)
	cfg, _ := os.ReadFile(filepath.Join(stories, "config.json"))
	mistral := write("mistral.json", strings.Replace(string(cfg), "LlamaForCausalLM", "FalconForCausalLM", 1))
	for _, c := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{stories}, 2, "usage error"},
		{[]string{stories, tiny}, 2, "vocab_size 128, but"},
		{[]string{tiny, filepath.Join(tiny, "model-00001-of-00002.safetensors")}, 2, "does not have the tensors of"},
		{[]string{bare, stories}, 2, "no config.json"},
		{[]string{bare, stories}, 2, "\nhint: pass --config FILE\n"},
		{[]string{bare, stories, "--config", mistral}, 2, "FalconForCausalLM"},
		{[]string{stories, stories, "--tokens", write("big.json", "[1, 512]")}, 2, "outside the vocabulary of 512"},
		{[]string{stories, stories, "--tokens", write("bad.json", `{"ids": [1]}`)}, 2, "not a JSON array"},
		{[]string{stories, stories, "--tokens", write("long.json", "["+strings.Repeat("1, ", 600)+"1]")}, 2, "max_position_embeddings 512"},
		{[]string{stories, stories, "--text", filepath.Join(dir, "missing.txt")}, 2, "missing.txt"},
		{[]string{stories, stories, "--text", write("a.txt", "x"), "--tokens", write("b.json", "[1, 2]")}, 2, "not both"},
		{[]string{stories, stories, "--text", write("latin1.txt", "caf\xe9 ok")}, 2, "latin1.txt: byte 3 (0xe9) is not UTF-8"},
		{[]string{stories, stories, "--generate", "0"}, 2, "--generate 0 needs"},
		{[]string{stories, stories, "--min-top1", "97.5"}, 2, "fraction"},
		{[]string{stories, stories, "--memory", "lots"}, 2, `--memory: size "lots"`},
		{[]string{stories, stories, "--memory", "2XB"}, 2, "usage error"},
		{[]string{stories, stories, "--memory", "0"}, 2, `--memory: size "0": out of range: want 1 byte to 4 EiB`},
		{[]string{stories, stories, "--memory", "-1"}, 2, "want 1 byte to 4 EiB"},
		{[]string{stories, stories, "--memory", "1e30"}, 2, "want 1 byte to 4 EiB"},
		{[]string{stories, filepath.Join(dir, "nothing")}, 2, "nothing"},
	} {
		code, _, errs := runQINS(t, append([]string{"eval"}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.says) {
			t.Errorf("%v: exit %d (want %d), stderr lacks %q: %s", c.args, code, c.code, c.says, errs)
		}
		if lines := strings.Count(strings.TrimSpace(errs), "\n"); lines > 1 {
			t.Errorf("%v: %d lines on stderr: %s", c.args, lines+1, errs)
		}
	}
}

// Decoded texts and paths cannot drive the terminal: controls other than
// newline and tab are written as escapes.
func TestPrintableText(t *testing.T) {
	for in, want := range map[string]string{
		"Once upon a time,\nthere\twas": "Once upon a time,\nthere\twas",
		"\x1b]0;pwned\x07\x1b[2J":       `\x1b]0;pwned\a\x1b[2J`,
		"caf\u00e9 \u202e":              "caf\u00e9 \\u202e",
	} {
		if got := printableText(in); got != want {
			t.Errorf("printableText(%q) = %q, want %q", in, got, want)
		}
	}
}

// Issue 23, hostile input round three: each refused with one line that
// quotes what would not print, with the exit status of a usage error or an
// unusable input, never a stack trace.
func TestEvalHostile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "e\x1b[31m\nx")
	os.MkdirAll(dir, 0o755)
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	model, _ := os.ReadFile(filepath.Join(stories, "model.safetensors"))
	cfg, _ := os.ReadFile(filepath.Join(stories, "config.json"))
	folder := func(name, config string) string {
		d := filepath.Join(dir, name)
		os.Mkdir(d, 0o755)
		os.WriteFile(filepath.Join(d, "model.safetensors"), model, 0o644)
		os.WriteFile(filepath.Join(d, "config.json"), []byte(config), 0o644)
		return d
	}
	set := func(kv string) string { // the last of a key wins
		i := strings.LastIndex(string(cfg), "}")
		return string(cfg[:i]) + "," + kv + "}"
	}
	// A tokenizer eval cannot read: a pre-tokenizer it does not know.
	unreadable := folder("bert-like", string(cfg))
	write("bert-like/tokenizer.json", `{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "pre_tokenizer": {"type": "BertPreTokenizer"}, "decoder": {"type": "ByteLevel"}}`)
	ids := write("ids.json", "[1, 403, 407, 261]")
	zero := filepath.Join(dir, "zero")
	os.Symlink("/dev/zero", zero)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	quoted := `"` + strings.ReplaceAll(filepath.Join(dir), "\n", `\n`)
	quoted = strings.ReplaceAll(quoted, "\x1b", `\x1b`)

	for _, c := range []struct {
		args []string
		code int
		says []string
	}{
		// Item 1: 8 × (2^61 + 8) wraps around to 64.
		{[]string{folder("wrap", set(`"head_dim": 2305843009213693960`)), stories, "--tokens", ids}, 2, []string{quoted, "config.json", "head_dim is 2305843009213693960"}},
		// Item 2.
		{[]string{stories, stories, "--tokens", ids, "--generate", "9223372036854775807"}, 2, []string{"usage error", "--generate 9223372036854775807", "at most 508"}},
		// Item 3.
		{[]string{folder("layers", set(`"num_hidden_layers": 1000000000000`)), stories, "--tokens", ids}, 2, []string{"num_hidden_layers is 1000000000000"}},
		// Item 4.
		{[]string{stories, stories, "--tokens", zero}, 2, []string{quoted, "is a character device, not a regular file"}},
		{[]string{stories, stories, "--text", zero}, 2, []string{quoted, "is a character device, not a regular file"}},
		{[]string{stories, stories, "--config", zero, "--tokens", ids}, 2, []string{quoted, "is a character device, not a regular file"}},
		// Round four: a FIFO is refused at once, never waited on.
		{[]string{stories, stories, "--tokens", fifo}, 2, []string{quoted, "is a FIFO, not a regular file"}},
		{[]string{stories, stories, "--text", fifo}, 2, []string{quoted, "is a FIFO, not a regular file"}},
		{[]string{stories, stories, "--config", fifo, "--tokens", ids}, 2, []string{quoted, "is a FIFO, not a regular file"}},
		// Item 6.
		{[]string{folder("four", set(`"num_hidden_layers": 4`)), stories, "--tokens", ids}, 2, []string{quoted, "9 tensors", "model.layers.4.", "and 6 more"}},
		// Item 7.
		{[]string{folder("theta", set(`"rope_theta": -1`)), stories, "--tokens", ids}, 2, []string{quoted, "rope_theta is -1"}},
		{[]string{folder("eps", set(`"rms_norm_eps": -1e-5`)), stories, "--tokens", ids}, 2, []string{"rms_norm_eps is -1e-05"}},
		{[]string{folder("factor", set(`"rope_scaling": {"type": "linear", "factor": 1e-300}`)), stories, "--tokens", ids}, 2, []string{"rope_scaling factor is 1e-300"}},
		{[]string{folder("tiny-theta", set(`"rope_theta": 1e-300`)), stories, "--tokens", ids}, 2, []string{quoted, "config.json", "rope_theta is 1e-300"}},
		{[]string{folder("huge-eps", set(`"rms_norm_eps": 1e39`)), stories, "--tokens", ids}, 2, []string{quoted, "config.json", "rms_norm_eps is 1e+39"}},
		// Item 8.
		{[]string{stories, stories, "--tokens", ids, "--min-top1", "NaN"}, 2, []string{"usage error", "--min-top1 NaN"}},
		{[]string{stories, stories, "--tokens", ids, "--max-kld", "NaN"}, 2, []string{"usage error", "--max-kld NaN"}},
		{[]string{stories, stories, "--tokens", ids, "--max-kld", "-1"}, 2, []string{"usage error", "--max-kld -1"}},
		{[]string{stories, stories, "--tokens", ids, "--max-kld", "+Inf"}, 2, []string{"usage error", "--max-kld +Inf"}},
		// Item 9.
		{[]string{stories, stories, "--tokens", write("bad.json", "{")}, 2, []string{quoted, "not a JSON array"}},
		{[]string{stories, stories, "--tokens", write("null.json", "[1, null]"), "--generate", "0"}, 2, []string{quoted, "null.json", "element 1 is null"}},
		{[]string{stories, stories, "--tokens", write("frac.json", "[1, 2, 3.5]"), "--generate", "0"}, 2, []string{quoted, "element 2 is 3.5"}},
		{[]string{stories, stories, "--tokens", write("big.json", "[1, 600]")}, 2, []string{quoted, "outside the vocabulary"}},
		{[]string{stories, stories, "--tokens", filepath.Join(dir, "missing.json")}, 2, []string{quoted, "no such file"}},
		{[]string{unreadable, unreadable, "--text", ids}, 2, []string{quoted, "BertPreTokenizer"}},
	} {
		code, _, errs := runQINS(t, append([]string{"eval", "-q"}, c.args...)...)
		if code != c.code {
			t.Errorf("%q: exit %d, want %d: %s", c.args, code, c.code, errs)
		}
		for _, s := range c.says {
			if !strings.Contains(errs, s) {
				t.Errorf("%q: stderr lacks %q: %s", c.args, s, errs)
			}
		}
		if strings.Contains(errs, "\x1b") || strings.Count(strings.TrimSpace(errs), "\n") > 1 {
			t.Errorf("%q: stderr is not one printable error line (and a hint): %q", c.args, errs)
		}
	}

	// Item 5: beside a tokenizer eval cannot read, --tokens runs; the
	// generations are ids, with the reason.
	code, out, errs := runQINS(t, "eval", "-q", unreadable, unreadable, "--tokens", ids, "--generate", "0")
	if code != 0 || !strings.Contains(out, "top-1        100.00%") {
		t.Errorf("unreadable tokenizer, --generate 0: exit %d: %s%s", code, out, errs)
	}
	code, out, errs = runQINS(t, "eval", "-q", unreadable, unreadable, "--tokens", ids, "--generate", "3")
	if code != 0 || !strings.Contains(out, "ids only, the tokenizer cannot be used: "+quoted) || !strings.Contains(out, "REF ids:  [") || strings.Contains(out, "\x1b") {
		t.Errorf("unreadable tokenizer, --generate 3: exit %d: %s%s", code, out, errs)
	}
	code, out, _ = runQINS(t, "eval", unreadable, unreadable, "--tokens", ids, "--generate", "3", "--json")
	var r evalJSON
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.Greedy == nil || len(r.Greedy.RefIDs) != 3 || r.Greedy.RefText != nil {
		t.Errorf("unreadable tokenizer, --json: exit %d, %v: %s", code, err, out)
	}
	if !strings.Contains(out, `"text_error": "`) {
		t.Errorf("--json lacks text_error: %s", out)
	}

	// Item 9: CAND's extra tensor names.
	extra := folder("extra", string(cfg))
	h := `{"x\u001b[2J\ny":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`
	os.WriteFile(filepath.Join(extra, "model.safetensors"), stFile(h, make([]byte, 4)), 0o644)
	code, _, errs = runQINS(t, "eval", "-q", stories, extra, "--tokens", ids)
	if code != 2 || !strings.Contains(errs, `"x\x1b[2J\ny"`) || strings.Contains(errs, "\x1b") || strings.Count(strings.TrimSpace(errs), "\n") > 0 {
		t.Errorf("extra tensor with ESC: exit %d: %q", code, errs)
	}
}

// scaledStories writes stories260K's model.safetensors with its (tied)
// embedding times k to dir, and its config.json and tokenizer beside it;
// it returns dir.
func scaledStories(t *testing.T, dir string, k float32) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stories, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(b)
	var header map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &header); err != nil {
		t.Fatal(err)
	}
	var e struct {
		DType   string   `json:"dtype"`
		Offsets []uint64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(header["model.embed_tokens.weight"], &e); err != nil || e.DType != "F32" {
		t.Fatalf("embedding: %v %+v", err, e)
	}
	data := b[8+n:]
	for off := e.Offsets[0]; off < e.Offsets[1]; off += 4 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(data[off:]))
		binary.LittleEndian.PutUint32(data[off:], math.Float32bits(v*k))
	}
	os.MkdirAll(dir, 0o755)
	for _, name := range []string{"config.json", "tokenizer.json", "tokenizer_config.json"} {
		side, _ := os.ReadFile(filepath.Join(stories, name))
		os.WriteFile(filepath.Join(dir, name), side, 0o644)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// An infinite perplexity (logits 1e4 times too large) is reported: the
// text says "inf" and "-" for a NaN ratio, the JSON null with the figures
// named in "nonfinite", and neither fails.
func TestEvalInfinitePerplexity(t *testing.T) {
	dir := t.TempDir()
	big := scaledStories(t, filepath.Join(dir, "big"), 1e4)
	big2 := scaledStories(t, filepath.Join(dir, "big2"), 1e4)
	text := filepath.Join(stories, "expected-greedy-200.txt")
	for _, c := range []struct {
		ref, cand string
		text      string
		ppl       map[string]bool // finite or not
		nonfinite []string
	}{
		{stories, big, "  cand inf  ratio inf\n", map[string]bool{"ref": true}, []string{"ppl_cand", "ppl_ratio"}},
		{big, big2, "perplexity   ref inf  cand inf  ratio -\n", nil, []string{"ppl_ref", "ppl_cand", "ppl_ratio"}},
	} {
		code, out, errs := runQINS(t, "eval", c.ref, c.cand, "--text", text, "--generate", "8", "-q")
		if code != 0 || !strings.Contains(out, c.text) {
			t.Errorf("%s against %s: exit %d, output lacks %q:\n%s%s", c.ref, c.cand, code, c.text, out, errs)
		}
		code, out, errs = runQINS(t, "eval", c.ref, c.cand, "--text", text, "--generate", "8", "--json")
		var r struct {
			PPL       map[string]*float64 `json:"ppl"`
			NonFinite []string            `json:"nonfinite"`
		}
		if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil {
			t.Errorf("%s against %s --json: exit %d, %v: %s%s", c.ref, c.cand, code, err, out, errs)
			continue
		}
		for _, k := range []string{"ref", "cand", "ratio"} {
			if (r.PPL[k] != nil) != c.ppl[k] {
				t.Errorf("%s against %s --json: ppl.%s = %v", c.ref, c.cand, k, r.PPL[k])
			}
		}
		if !slices.Equal(r.NonFinite, c.nonfinite) {
			t.Errorf("%s against %s --json: nonfinite %q, want %q", c.ref, c.cand, r.NonFinite, c.nonfinite)
		}
	}
}

// Logits that turn NaN during the generation (a LongRoPE long factor of
// 2e-38, used past original_max_position_embeddings) are an unusable input: exit
// 2, naming the model, the position and the config value.
func TestEvalNonFiniteGeneration(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(tiny, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `"original_max_position_embeddings": 4096`, `"original_max_position_embeddings": 8`, 1)
	s = strings.Replace(s, "1.0800000429153442", "2e-38", 1)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	os.WriteFile(cfg, []byte(s), 0o644)
	tokens := filepath.Join(dir, "ids.json")
	os.WriteFile(tokens, []byte("[1, 5, 9, 3, 7]"), 0o644)
	// The stream is short enough for the short factors: only the
	// generation reaches the long ones.
	code, out, errs := runQINS(t, "eval", tiny, tiny, "--config", cfg, "--tokens", tokens, "--generate", "12", "-q")
	want := "REF's logits at position 8 are not finite (greedy generation after a 5-token prompt): likely from the config's rope_scaling long_factor[0] 2e-38"
	if code != 2 || !strings.Contains(errs, want) || out != "" {
		t.Errorf("exit %d (want 2), stderr lacks %q:\n%s%s", code, want, out, errs)
	}
}

// --save-ref writes REF's side, which then stands in for REF: the same
// report (KLD within 1e-3 relative); an existing file is kept without
// --force; a saved file that is damaged is one line naming it.
func TestEvalSaveRef(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "stories.qins")
	if code, _, errs := runQINS(t, "convert", stories, "-o", q, "--quiet"); code != 0 {
		t.Fatalf("convert: %s", errs)
	}
	ref := filepath.Join(dir, "stories.ref")
	code, live, errs := runQINS(t, "eval", stories, q, "--json", "--generate", "24", "--save-ref", ref)
	if code != 0 {
		t.Fatalf("eval --save-ref: exit %d: %s", code, errs)
	}
	code, saved, errs := runQINS(t, "eval", ref, q, "--json")
	if code != 0 {
		t.Fatalf("eval FILE CAND: exit %d: %s", code, errs)
	}
	var a, b evalJSON
	json.Unmarshal([]byte(live), &a)
	json.Unmarshal([]byte(saved), &b)
	if !slices.Equal(a.IDs, b.IDs) || *a.Top1 != *b.Top1 || *a.PPL["ref"] != *b.PPL["ref"] || *a.PPL["cand"] != *b.PPL["cand"] ||
		math.Abs(*a.KLD["mean"]/(*b.KLD["mean"])-1) > 1e-3 || b.Greedy == nil || b.Greedy.CandText == nil || *b.Greedy.CandText != *a.Greedy.CandText || a.Ref != b.Ref {
		t.Errorf("live\n%s\nsaved\n%s", live, saved)
	}
	if code, out, _ := runQINS(t, "eval", ref, q); code != 0 || !strings.Contains(out, "as saved in "+ref) {
		t.Errorf("text report: exit %d\n%s", code, out)
	}
	// REF alone saves the same file.
	alone := filepath.Join(dir, "alone.ref")
	if code, out, errs := runQINS(t, "eval", stories, "--generate", "24", "--save-ref", alone); code != 0 || !strings.Contains(out, "saved in") {
		t.Errorf("REF alone: exit %d: %s%s", code, out, errs)
	}
	ba, _ := os.ReadFile(alone)
	bb, _ := os.ReadFile(ref)
	if !slices.Equal(ba, bb) {
		t.Error("REF alone saved another file")
	}
	if code, _, errs := runQINS(t, "eval", stories, "--save-ref", filepath.Join(dir, "x.ref"), "--max-kld", "1"); code == 0 || !strings.Contains(errs, "need a CAND") {
		t.Errorf("REF alone with a threshold: exit %d: %s", code, errs)
	}
	os.Remove(alone)
	// An existing file is not replaced without --force.
	before, _ := os.ReadFile(ref)
	if code, _, errs := runQINS(t, "eval", stories, q, "--generate", "8", "--save-ref", ref); code == 0 || !strings.Contains(errs, ref) {
		t.Errorf("existing --save-ref: exit %d: %s", code, errs)
	}
	if after, _ := os.ReadFile(ref); !slices.Equal(before, after) {
		t.Error("the existing file changed")
	}
	if code, _, errs := runQINS(t, "eval", stories, q, "--generate", "8", "--save-ref", ref, "--force", "-q"); code != 0 {
		t.Errorf("--force: exit %d: %s", code, errs)
	}
	// Other options than those it was saved with.
	if code, _, errs := runQINS(t, "eval", ref, q, "--generate", "9"); code == 0 || !strings.Contains(errs, "generation 8, not 9") {
		t.Errorf("other --generate: exit %d: %s", code, errs)
	}
	// A damaged file.
	b8, _ := os.ReadFile(ref)
	os.WriteFile(ref, b8[:len(b8)-3], 0o644)
	code, _, errs = runQINS(t, "eval", ref, q)
	if code == 0 || !strings.Contains(errs, ref) || strings.Count(strings.TrimSpace(errs), "\n") > 1 {
		t.Errorf("truncated saved REF: exit %d: %q", code, errs)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("left in the folder: %v", entries)
	}
}

// TestEvalSaveRefOutputs gives --save-ref files it must not write: an
// output it cannot write is exit status 2 (1 is a failed threshold), and
// no input is overwritten, even with --force; nothing is left behind.
func TestEvalSaveRefOutputs(t *testing.T) {
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref")
	os.Mkdir(ref, 0o755)
	for _, name := range []string{"model.safetensors", "config.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(stories, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(ref, name), b, 0o644)
	}
	cand := filepath.Join(dir, "cand.safetensors")
	b, _ := os.ReadFile(filepath.Join(ref, "model.safetensors"))
	os.WriteFile(cand, b, 0o644)
	ids := filepath.Join(dir, "ids.json")
	os.WriteFile(ids, []byte("[1, 403, 407, 261]"), 0o644)
	exists := filepath.Join(dir, "exists.ref")
	os.WriteFile(exists, []byte("mine"), 0o644)
	sums := func() map[string]string {
		m := map[string]string{}
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				b, _ := os.ReadFile(p)
				m[p] = string(b)
			}
			return nil
		})
		return m
	}
	before := sums()
	for _, c := range []struct {
		name string
		args []string
		says string
	}{
		{"existing", []string{ref, cand, "--save-ref", exists}, exists + ": output exists"},
		{"folder", []string{ref, cand, "--save-ref", ref}, "is a directory"},
		{"device", []string{ref, cand, "--save-ref", "/dev/full"}, "not a regular file"},
		{"missing folder", []string{ref, cand, "--save-ref", filepath.Join(dir, "none", "x.ref")}, "the folder " + filepath.Join(dir, "none") + " does not exist"},
		{"REF's weights", []string{ref, cand, "--save-ref", filepath.Join(ref, "model.safetensors"), "--force"}, "is an input"},
		{"REF's weights, REF alone", []string{ref, "--save-ref", filepath.Join(ref, "model.safetensors"), "--force"}, "is an input"},
		{"CAND", []string{ref, cand, "--save-ref", cand, "--force"}, cand + ": is an input"},
		{"config", []string{ref, "--save-ref", filepath.Join(ref, "config.json"), "--force"}, "config.json: is an input"},
		{"tokenizer", []string{ref, "--save-ref", filepath.Join(ref, "tokenizer.json"), "--force"}, "tokenizer.json: is an input"},
		{"tokenizer config", []string{ref, "--save-ref", filepath.Join(ref, "tokenizer_config.json"), "--force"}, "is an input"},
		{"--tokens file", []string{ref, "--tokens", ids, "--save-ref", ids, "--force"}, "is the --tokens file"},
	} {
		code, out, errs := runQINS(t, append([]string{"eval", "-q", "--generate", "4"}, c.args...)...)
		if code != 2 || !strings.Contains(errs, c.says) || strings.Count(errs, "\n") > 2 {
			t.Errorf("%s: exit %d (want 2), stderr lacks %q:\n%s%s", c.name, code, c.says, out, errs)
		}
	}
	if after := sums(); !reflect.DeepEqual(before, after) {
		t.Errorf("files changed or left behind: %d before, %d after", len(before), len(after))
	}
}

// TestTokenizeNotUTF8 gives qins tokenize a TEXT argument that is not
// UTF-8: refused, not tokenised with U+FFFD in its place.
func TestTokenizeNotUTF8(t *testing.T) {
	for _, text := range []string{"caf\xe9", "\xff", "ok\xe2\x82"} {
		code, out, errs := runQINS(t, "tokenize", stories, text)
		if code != 2 || out != "" || !strings.Contains(errs, "TEXT is not UTF-8") {
			t.Errorf("%q: exit %d, %q %q", text, code, out, errs)
		}
	}
}
