package eval

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// storiesDir makes a folder in dir holding stories260K's weights (plus
// the extra F32 tensors named, each of one value) and its config.json with
// change applied.
func storiesDir(t *testing.T, dir string, change map[string]any, extra ...string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(stories, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if len(extra) > 0 {
		n := binary.LittleEndian.Uint64(b)
		var h map[string]any
		if err := json.Unmarshal(b[8:8+n], &h); err != nil {
			t.Fatal(err)
		}
		data := b[8+n:]
		for _, name := range extra {
			h[name] = map[string]any{"dtype": "F32", "shape": []int{1}, "data_offsets": []int{len(data), len(data) + 4}}
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(math.NaN())))
		}
		js, _ := json.Marshal(h)
		for len(js)%8 != 0 {
			js = append(js, ' ')
		}
		b = append(binary.LittleEndian.AppendUint64(nil, uint64(len(js))), js...)
		b = append(b, data...)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, dir, change)
	return dir
}

// oneLine fails the test unless err is one line without ESC.
func oneLine(t *testing.T, what string, err error) {
	t.Helper()
	if s := err.Error(); strings.ContainsAny(s, "\n\x1b") {
		t.Errorf("%s: the error is not one printable line: %q", what, s)
	}
}

// Issue 23: a config.json, CAND's extra tensors, thresholds and counts
// that are hostile or wrong give one error line naming the culprit.
func TestHostileInputs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tokens := Options{Tokens: []int{1, 403, 407, 261}, Generate: -1}
	for _, c := range []struct {
		name   string
		change map[string]any
		opts   Options
		as     any
		says   []string
	}{
		// Item 1: 8 × (2^61 + 8) wraps around to the real 64.
		{"head_dim wraps", map[string]any{"head_dim": 2305843009213693960}, tokens, new(*InputError), []string{"config.json", "head_dim is 2305843009213693960"}},
		{"layers", map[string]any{"num_hidden_layers": 2000000}, tokens, new(*InputError), []string{"config.json", "num_hidden_layers is 2000000"}},
		// Item 3: within bounds, but far more layers than the checkpoint.
		{"layers missing", map[string]any{"num_hidden_layers": 65536}, tokens, new(*InputError), []string{"model.safetensors", "model.layers.5.", "missing"}},
		// Item 6: fewer layers than the checkpoint.
		{"layers unused", map[string]any{"num_hidden_layers": 4}, tokens, new(*InputError), []string{"9 tensors", "model.layers.4.", "and 6 more", "num_hidden_layers 4"}},
		// Item 7.
		{"rope_theta 0", map[string]any{"rope_theta": 0}, tokens, new(*InputError), []string{"config.json", "rope_theta is 0"}},
		{"rms_norm_eps negative", map[string]any{"rms_norm_eps": -1}, tokens, new(*InputError), []string{"config.json", "rms_norm_eps is -1"}},
		{"factor 1e-300", map[string]any{"rope_scaling": map[string]any{"type": "linear", "factor": 1e-300}}, tokens, new(*InputError), []string{"config.json", "rope_scaling factor is 1e-300"}},
		// Round 4: float32 holds no 1e-300, so it is refused up front.
		{"rope_theta 1e-300", map[string]any{"rope_theta": 1e-300}, tokens, new(*InputError), []string{"config.json", "rope_theta is 1e-300"}},
		{"rope_theta 1e39", map[string]any{"rope_theta": 1e39}, tokens, new(*InputError), []string{"config.json", "rope_theta is 1e+39"}},
		{"rms_norm_eps 0", map[string]any{"rms_norm_eps": 0}, tokens, new(*InputError), []string{"config.json", "rms_norm_eps is 0"}},
		{"rms_norm_eps 1e30", map[string]any{"rms_norm_eps": 1e30}, tokens, new(*InputError), []string{"config.json", "rms_norm_eps is 1e+30"}},
		// Item 2.
		{"generate MaxInt", nil, Options{Tokens: tokens.Tokens, Generate: math.MaxInt}, new(*GenerateError), []string{"config.json", "max_position_embeddings 512", "at most 508"}},
		{"generate MaxInt from BOS", nil, Options{Generate: math.MaxInt}, new(*StreamError), []string{"max_position_embeddings 512", "at most 511"}},
		// Item 8.
		{"max-kld NaN", nil, Options{Tokens: tokens.Tokens, Generate: -1, MaxKLD: fptr(math.NaN())}, nil, []string{"MaxKLD NaN"}},
		{"max-kld negative", nil, Options{Tokens: tokens.Tokens, Generate: -1, MaxKLD: fptr(-1)}, nil, []string{"MaxKLD -1"}},
		{"max-kld Inf", nil, Options{Tokens: tokens.Tokens, Generate: -1, MaxKLD: fptr(math.Inf(1))}, nil, []string{"MaxKLD +Inf"}},
		{"min-top1 NaN", nil, Options{Tokens: tokens.Tokens, Generate: -1, MinTop1: fptr(math.NaN())}, nil, []string{"MinTop1 NaN"}},
	} {
		d := storiesDir(t, filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")), c.change)
		_, err := Eval(ctx, d, d, c.opts)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if c.as != nil && !errors.As(err, c.as) {
			t.Errorf("%s: %v (%T) is not %T", c.name, err, err, c.as)
		}
		for _, s := range c.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not say %q", c.name, err, s)
			}
		}
		oneLine(t, c.name, err)
	}
}

// CAND's unused layer is all NaN: the run fails, naming it, rather than
// reporting a KLD of 0 (issue 23, item 6).
func TestUnusedNaNLayer(t *testing.T) {
	dir := t.TempDir()
	ref := storiesDir(t, filepath.Join(dir, "ref"), nil)
	cand := storiesDir(t, filepath.Join(dir, "cand"), nil, "model.layers.5.input_layernorm.weight")
	_, err := Eval(context.Background(), ref, cand, Options{Tokens: []int{1, 403, 407}, Generate: -1})
	var me *MismatchError
	if !errors.As(err, &me) || len(me.Extra) != 1 || !strings.Contains(err.Error(), "model.layers.5.input_layernorm.weight") {
		t.Errorf("extra tensor in CAND: %v", err)
	}
	// Both with it, and a config that does not read it.
	both := storiesDir(t, filepath.Join(dir, "both"), nil, "model.layers.5.input_layernorm.weight")
	_, err = Eval(context.Background(), both, both, Options{Tokens: []int{1, 403, 407}, Generate: -1})
	if err == nil || !strings.Contains(err.Error(), "1 tensor the LlamaForCausalLM") || !strings.Contains(err.Error(), "model.layers.5.input_layernorm.weight") {
		t.Errorf("unused tensor: %v", err)
	}
}

// Every file eval reads whole has a limit; past it, one error names the
// file and the limit (issue 23, item 4).
func TestReadLimits(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.json")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(MaxConfigBytes + 1) // sparse: no disk, all zeros
	f.Close()
	_, err = Eval(context.Background(), stories, stories, Options{Config: big, Tokens: []int{1, 2}, Generate: -1})
	if err == nil || !strings.Contains(err.Error(), big+": larger than 16 MiB, the limit for a config.json") {
		t.Errorf("config.json over the limit: %v", err)
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		zero := filepath.Join(dir, "zero")
		os.Symlink("/dev/zero", zero)
		if _, err := ReadFile(zero, 1<<20, "a test"); err == nil || !strings.Contains(err.Error(), "is a character device, not a regular file") {
			t.Errorf("/dev/zero: %v", err)
		}
		// config.json beside REF is a link to /dev/zero.
		ref := storiesDir(t, filepath.Join(dir, "ref"), nil)
		os.Remove(filepath.Join(ref, "config.json"))
		os.Symlink("/dev/zero", filepath.Join(ref, "config.json"))
		_, err := Eval(context.Background(), ref, ref, Options{Tokens: []int{1, 2}, Generate: -1})
		if err == nil || !strings.Contains(err.Error(), "config.json: is a character device, not a regular file") {
			t.Errorf("config.json -> /dev/zero: %v", err)
		}
	}
	if b, err := ReadFile(filepath.Join(stories, "config.json"), MaxConfigBytes, "a config.json"); err != nil || len(b) == 0 {
		t.Errorf("config.json: %d bytes, %v", len(b), err)
	}
}

// A tokenizer eval cannot read does not stop runs that need none, and
// generations are then given as ids, with the reason (issue 23, items 4
// and 5).
func TestUnreadableTokenizer(t *testing.T) {
	dir := t.TempDir()
	d := storiesDir(t, filepath.Join(dir, "unreadable"), nil)
	tok := `{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "pre_tokenizer": {"type": "BertPreTokenizer"}, "decoder": {"type": "ByteLevel"}}`
	os.WriteFile(filepath.Join(d, "tokenizer.json"), []byte(tok), 0o644)
	ids := []int{1, 403, 407, 261}
	if _, err := Eval(context.Background(), d, d, Options{Tokens: ids, Generate: -1}); err != nil {
		t.Errorf("--tokens, no generation: %v", err)
	}
	r, err := Eval(context.Background(), d, d, Options{Tokens: ids, Generate: 3})
	if err != nil {
		t.Fatalf("--tokens, 3 generated: %v", err)
	}
	if g := r.Greedy; g == nil || len(g.RefIDs) != 3 || g.RefText != nil || !strings.Contains(g.TextError, "BertPreTokenizer") {
		t.Errorf("greedy %+v, want ids and why there is no text", r.Greedy)
	}
	// The default stream starts from config.json's BOS.
	r, err = Eval(context.Background(), d, d, Options{Generate: 3})
	if err != nil || r.IDs[0] != 1 || r.Greedy.TextError == "" {
		t.Errorf("default stream: %v %+v", err, r)
	}
	// A text needs it.
	if _, err := Eval(context.Background(), d, d, Options{Text: "Once"}); err == nil || !strings.Contains(err.Error(), "BertPreTokenizer") {
		t.Errorf("text: %v", err)
	}
}

// Paths and names with ESC or a newline are quoted in every error (issue
// 23, item 9).
func TestPrintableErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a\x1b[31m\nb")
	ctx := context.Background()
	ids := Options{Tokens: []int{1, 403, 407}, Generate: -1}
	bad := storiesDir(t, filepath.Join(dir, "badcfg"), map[string]any{"rope_theta": -1})
	tok := storiesDir(t, filepath.Join(dir, "badtok"), nil)
	os.WriteFile(filepath.Join(tok, "tokenizer.json"), []byte(`{"model": {"type": "WordPiece"}}`), 0o644)
	tokCfg := storiesDir(t, filepath.Join(dir, "badtokcfg"), nil)
	for _, n := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, _ := os.ReadFile(filepath.Join(stories, n))
		os.WriteFile(filepath.Join(tokCfg, n), b, 0o644)
	}
	os.WriteFile(filepath.Join(tokCfg, "tokenizer_config.json"), []byte(`{"bos_token": "\u001b[2J"}`), 0o644)
	extra := storiesDir(t, filepath.Join(dir, "extra"), nil, "x\x1b[2J\ny")
	for _, c := range []struct {
		name, ref, cand string
		opts            Options
		says            string
	}{
		{"config", bad, stories, ids, "rope_theta"},
		{"missing config", filepath.Join(dir, "nothing"), stories, Options{Config: filepath.Join(dir, "config.json")}, "no such file"},
		{"given config", stories, stories, Options{Config: filepath.Join(bad, "config.json"), Tokens: ids.Tokens, Generate: -1}, "rope_theta"},
		{"tokenizer", tok, stories, Options{Text: "Once"}, "WordPiece"},
		{"tokenizer_config", tokCfg, stories, Options{Text: "Once"}, "not in the vocabulary"},
		{"extra in CAND", stories, extra, ids, `"x\x1b[2J\ny"`},
		{"unused", extra, extra, ids, `"x\x1b[2J\ny"`},
		{"stream", tok, tok, Options{Tokens: []int{1, 9999}, Generate: -1}, "9999"},
		{"generation", tok, tok, Options{Tokens: ids.Tokens, Generate: 9999}, "9999"},
	} {
		_, err := Eval(ctx, c.ref, c.cand, c.opts)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !strings.Contains(err.Error(), c.says) || !strings.Contains(err.Error(), `\x1b[31m\nb`) && c.name != "extra in CAND" {
			t.Errorf("%s: %q does not say %q and the quoted path", c.name, err, c.says)
		}
		oneLine(t, c.name, err)
	}
}

// Round 4: Phi-3's original_max_position_embeddings of 1 derives an
// infinite attention factor; it is refused up front, by its key.
func TestOriginalMaxOne(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(tiny, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int{1, 0, 131073} {
		m["original_max_position_embeddings"] = v
		b, _ = json.Marshal(m)
		p := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err = Eval(context.Background(), tiny, tiny, Options{Config: p, Tokens: []int{1, 2, 3}, Generate: -1})
		var ie *InputError
		if err == nil || !errors.As(err, &ie) || !strings.Contains(err.Error(), "config.json") ||
			!strings.Contains(err.Error(), fmt.Sprintf("original_max_position_embeddings is %d", v)) || strings.Contains(err.Error(), "attention_factor") {
			t.Errorf("%d: %v, want an InputError naming config.json and original_max_position_embeddings", v, err)
		}
	}
}

// Round 4: every element of a token file is a JSON integer; the first
// that is not is named by its index.
func TestParseTokens(t *testing.T) {
	for in, want := range map[string]string{
		`[1, null]`:                       "element 1 is null",
		`[null]`:                          "element 0 is null",
		`[1, 2, 2.5]`:                     "element 2 is 2.5",
		`[1.0]`:                           "element 0 is 1.0",
		`[1, "2"]`:                        "element 1 is a string",
		`[1, [2]]`:                        "element 1 is an array",
		`[true]`:                          "element 0 is a boolean",
		`[1e2]`:                           "element 0 is 1e2",
		`[99999999999999999999999999999]`: "element 0 is 999999999999999999999999…",
		`null`:                            "not a JSON array",
		`{"ids": [1]}`:                    "not a JSON array",
	} {
		ids, err := ParseTokens([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v %v, want an error saying %q", in, ids, err, want)
		}
	}
	ids, err := ParseTokens([]byte(" [1, 403 ,-2, 0]\n"))
	if err != nil || !slices.Equal(ids, []int{1, 403, -2, 0}) {
		t.Errorf("ids %v, %v", ids, err)
	}
	if ids, err := ParseTokens([]byte("[]")); err != nil || ids == nil || len(ids) != 0 {
		t.Errorf("[]: %v, %v, want an empty stream", ids, err)
	}
}

// TestConfigErrorNamesFile checks that a config.json's error names the
// file once, by the path it was read from, whatever its name.
func TestConfigErrorNamesFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	d := storiesDir(t, filepath.Join(dir, "m"), map[string]any{"num_hidden_layers": 0})
	other := filepath.Join(dir, "other.json")
	if err := os.Rename(filepath.Join(d, "config.json"), other); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, d, map[string]any{"num_hidden_layers": 0})
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o644)
	tokens := []int{1, 403, 407, 261}
	for _, c := range []struct {
		name   string
		config string
		want   string
	}{
		{"beside", "", filepath.Join(d, "config.json") + ": LlamaForCausalLM: num_hidden_layers is 0, want > 0 and at most 65536"},
		{"given", other, other + ": LlamaForCausalLM: num_hidden_layers is 0, want > 0 and at most 65536"},
		{"not JSON", bad, bad + ": unexpected end of JSON input"},
	} {
		_, err := Eval(ctx, d, d, Options{Tokens: tokens, Generate: -1, Config: c.config})
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
}

// TestReadText checks that a text file that is not UTF-8 is refused,
// naming the first bad byte, and that UTF-8 is read as it is.
func TestReadText(t *testing.T) {
	for _, c := range []struct {
		name, text, says string
	}{
		{"UTF-8", "caf\u00e9 \U0001F600 \uFFFD", ""},
		{"empty", "", ""},
		{"Latin-1", "caf\xe9", "byte 3 (0xe9) is not UTF-8"},
		{"first byte", "\xff", "byte 0 (0xff)"},
		{"cut at the end", "ok\xe2\x82", "byte 2 (0xe2)"},
		{"overlong", "a\xc0\x80", "byte 1 (0xc0)"},
		{"surrogate", "\xed\xa0\x80", "byte 0 (0xed)"},
	} {
		p := filepath.Join(t.TempDir(), "t.txt")
		os.WriteFile(p, []byte(c.text), 0o644)
		b, err := ReadText(p)
		switch {
		case c.says == "" && (err != nil || string(b) != c.text):
			t.Errorf("%s: %q, %v", c.name, b, err)
		case c.says != "" && (err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.says)):
			t.Errorf("%s: %v, want an error naming %s and saying %q", c.name, err, p, c.says)
		}
	}
}
