package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// editJSON returns the fixture tokenizer.json with fn applied to it.
func editJSON(t testing.TB, fn func(m map[string]any)) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir(t), JSONFile))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func model(m map[string]any) map[string]any { return m["model"].(map[string]any) }

// metaspace is the pre-tokenizer newer Llama files use instead of the
// Prepend + Replace normalizer.
func metaspace(extra map[string]any) map[string]any {
	p := map[string]any{"type": "Metaspace", "replacement": spaceMark}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// TestJSONVariants checks other tokenizer.json spellings of the same
// tokenizer against the sentencepiece golden ids: merges as "a b" strings,
// and the Metaspace pre-tokenizer (which adds "▁" only when the text does
// not start with one, so cases starting with a space are left out).
func TestJSONVariants(t *testing.T) {
	g := readGolden(t, "golden-stories260K.json")
	tests := []struct {
		name       string
		edit       func(m map[string]any)
		metaspaced bool
	}{
		{"merges as strings", func(m map[string]any) {
			var s []any
			for _, p := range model(m)["merges"].([]any) {
				pair := p.([]any)
				s = append(s, pair[0].(string)+" "+pair[1].(string))
			}
			model(m)["merges"] = s
		}, false},
		{"Metaspace prepend_scheme first, no split", func(m map[string]any) {
			m["normalizer"] = nil
			m["pre_tokenizer"] = metaspace(map[string]any{"prepend_scheme": "first", "split": false})
			m["decoder"] = map[string]any{"type": "Sequence", "decoders": []any{
				map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"},
				metaspace(map[string]any{"prepend_scheme": "first"})}}
		}, true},
		{"Metaspace add_prefix_space, split", func(m map[string]any) {
			m["normalizer"] = nil
			m["pre_tokenizer"] = metaspace(map[string]any{"add_prefix_space": true})
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := parseJSON(editJSON(t, tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, c := range g.Encode {
				if tc.metaspaced && (strings.HasPrefix(c.Text, " ") || strings.HasPrefix(c.Text, spaceMark)) || hasSpecial(tok, c.Text) {
					continue
				}
				n++
				got, err := tok.Encode(c.Text)
				if err != nil || !slices.Equal(got, c.IDs) {
					t.Errorf("Encode(%q) = %v, %v; want %v", c.Text, got, err, c.IDs)
				}
			}
			if n < len(g.Encode)/2 {
				t.Fatalf("only %d of %d cases compared", n, len(g.Encode))
			}
			ids, _ := tok.Encode("Lily and Tom")
			if s := tok.Decode(ids); s != "Lily and Tom" {
				t.Errorf("Decode = %q, want %q", s, "Lily and Tom")
			}
		})
	}
}

// TestMetaspaceLeadingSpace pins the one place Metaspace and
// SentencePiece differ: a text that already starts with a space gets no
// second one.
func TestMetaspaceLeadingSpace(t *testing.T) {
	tok, err := parseJSON(editJSON(t, func(m map[string]any) {
		m["normalizer"] = nil
		m["pre_tokenizer"] = metaspace(map[string]any{"prepend_scheme": "always", "split": false})
	}))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := tok.Encode(" Lily")
	b, _ := tok.Encode("Lily")
	if !slices.Equal(a, b) || len(a) == 0 {
		t.Errorf("Encode(\" Lily\") = %v, Encode(\"Lily\") = %v; want equal", a, b)
	}
}

// TestConfig checks what tokenizer_config.json changes, and that Load
// prefers tokenizer.json.
func TestConfig(t *testing.T) {
	src := fixtureDir(t)
	tests := []struct {
		name    string
		config  string // "" for no file
		file    string
		bos     int
		eos     int
		addBOS  bool
		addEOS  bool
		wantErr string
	}{
		{"no config, model", "", ModelFile, 1, 2, true, false, ""},
		{"no config, json", "", JSONFile, 1, 2, true, false, ""},
		{"no BOS", `{"add_bos_token": false, "add_eos_token": true}`, ModelFile, 1, 2, false, true, ""},
		{"object tokens", `{"bos_token": {"content": "</s>", "lstrip": false}, "eos_token": {"content": "<s>"}}`, JSONFile, 2, 1, true, false, ""},
		{"null tokens", `{"bos_token": null, "eos_token": null}`, ModelFile, 1, 2, true, false, ""},
		{"unknown token", `{"eos_token": "<|end|>"}`, ModelFile, 0, 0, false, false, `eos_token "<|end|>" is not in the vocabulary`},
		{"bad token", `{"bos_token": 7}`, JSONFile, 0, 0, false, false, `tokenizer_config.json: bos_token: want a string or an object with "content"`},
		{"bad object token", `{"eos_token": {"content": 7}}`, ModelFile, 0, 0, false, false, "tokenizer_config.json: eos_token: want a string"},
		{"not json", `{"add_bos_token": tru`, ModelFile, 0, 0, false, false, ConfigFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			b, err := os.ReadFile(filepath.Join(src, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, tc.file), b, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.config != "" {
				if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(tc.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			tok, err := Load(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Load: %v, want error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.BOS() != tc.bos || tok.EOS() != tc.eos || tok.AddBOS() != tc.addBOS || tok.AddEOS() != tc.addEOS {
				t.Errorf("BOS %d EOS %d AddBOS %v AddEOS %v, want %d %d %v %v",
					tok.BOS(), tok.EOS(), tok.AddBOS(), tok.AddEOS(), tc.bos, tc.eos, tc.addBOS, tc.addEOS)
			}
			if !strings.HasSuffix(tok.src, tc.file) {
				t.Errorf("read %s, want %s", tok.src, tc.file)
			}
		})
	}
}

// TestLoadPrefersJSON checks Load's choice when both files exist, and its
// error when neither does.
func TestLoadPrefersJSON(t *testing.T) {
	tok, err := Load(fixtureDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(tok.src) != JSONFile {
		t.Errorf("Load read %s, want %s", tok.src, JSONFile)
	}
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Load(empty dir) = %v, want an error naming it", err)
	}
}

// TestDecodeSkipsEOS checks that BOS and EOS are skipped even when the
// file does not mark them special (Phi-3's tokenizer.json has "</s>" with
// "special": false), while other non-special added tokens print.
func TestDecodeSkipsEOS(t *testing.T) {
	tok, err := parseJSON(editJSON(t, func(m map[string]any) {
		m["added_tokens"] = []any{
			map[string]any{"id": 0, "content": "<unk>", "special": true},
			map[string]any{"id": 1, "content": "<s>", "special": true},
			map[string]any{"id": 2, "content": "</s>", "special": false},
			map[string]any{"id": 512, "content": "<|user|>", "special": false},
			map[string]any{"id": 513, "content": "<|end|>", "special": true},
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if tok.EOS() != 2 || tok.VocabSize() != 514 {
		t.Fatalf("EOS %d VocabSize %d, want 2 514", tok.EOS(), tok.VocabSize())
	}
	a, err := tok.Encode("a")
	if err != nil {
		t.Fatal(err)
	}
	ids := append([]int{1, 512}, append(a, 513, 2)...)
	if s := tok.Decode(ids); s != "<|user|> a" {
		t.Errorf("Decode(%v) = %q, want %q", ids, s, "<|user|> a")
	}
	u, err := tok.Encode("x<|user|>")
	if err != nil || len(u) == 0 || u[len(u)-1] != 512 {
		t.Errorf("Encode(\"x<|user|>\") = %v, %v; want it to end with 512", u, err)
	}
}
