package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fixtureDirs are where the stories260K tokenizer may be, best first: the
// repository's copy, then the shared fixtures beside the worktree.
var fixtureDirs = []string{
	"../../../../testdata/stories260K",
	"../../../../../shared/fixtures/llm/stories260K",
}

// fixtureDir returns the first stories260K folder that exists, or skips.
func fixtureDir(t testing.TB) string {
	t.Helper()
	for _, d := range fixtureDirs {
		_, err1 := os.Stat(filepath.Join(d, ModelFile))
		_, err2 := os.Stat(filepath.Join(d, JSONFile))
		if err1 == nil && err2 == nil {
			return d
		}
	}
	t.Skip("stories260K fixture not found in", fixtureDirs)
	return ""
}

// loaders names both ways to read the fixture tokenizer.
var loaders = []string{JSONFile, ModelFile}

func loadBoth(t testing.TB) map[string]*Tokenizer {
	t.Helper()
	dir := fixtureDir(t)
	out := make(map[string]*Tokenizer)
	for _, name := range loaders {
		tok, err := LoadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = tok
	}
	return out
}

// TestStory checks both loaders against llama2.c's greedy story: the text
// encodes to the expected ids (minus BOS) and the ids decode to the text.
func TestStory(t *testing.T) {
	dir := fixtureDir(t)
	text, err := os.ReadFile(filepath.Join(dir, "expected-greedy-200.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	b, err := os.ReadFile(filepath.Join(dir, "expected-greedy-200.ids.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ids); err != nil {
		t.Fatal(err)
	}
	// The file has no trailing newline: the story is the bytes as they are.
	if len(text) == 0 || text[len(text)-1] == '\n' {
		t.Fatalf("expected-greedy-200.txt: want text without a trailing newline")
	}
	for name, tok := range loadBoth(t) {
		t.Run(name, func(t *testing.T) {
			if tok.BOS() != 1 || tok.EOS() != 2 || !tok.AddBOS() || tok.VocabSize() != 512 {
				t.Errorf("BOS %d EOS %d AddBOS %v VocabSize %d, want 1 2 true 512",
					tok.BOS(), tok.EOS(), tok.AddBOS(), tok.VocabSize())
			}
			if ids[0] != tok.BOS() {
				t.Fatalf("ids.json starts with %d, want BOS %d", ids[0], tok.BOS())
			}
			got, err := tok.Encode(string(text))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, ids[1:]) {
				t.Errorf("Encode(story) differs from ids.json:\n got %v\nwant %v", got, ids[1:])
			}
			if s := tok.Decode(ids); s != string(text) {
				t.Errorf("Decode(ids) = %q\nwant %q", s, text)
			}
		})
	}
}
