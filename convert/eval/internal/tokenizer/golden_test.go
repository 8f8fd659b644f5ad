package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// golden is a file written by scripts/tokenizer_golden.py from Google's
// sentencepiece library.
type golden struct {
	Model  string `json:"model"`
	Encode []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	} `json:"encode"`
	Decode []struct {
		IDs  []int  `json:"ids"`
		Text string `json:"text"`
	} `json:"decode"`
}

func readGolden(t *testing.T, name string) *golden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(g.Encode) == 0 {
		t.Fatalf("%s: no cases", name)
	}
	return &g
}

// checkGolden compares one tokenizer with sentencepiece on every case
// but those that write a special token ("<s>"): sentencepiece encodes
// its characters, transformers (and so Encode) its id; TestSpecialInText
// and scripts/tokcheck check those.
func checkGolden(t *testing.T, tok *Tokenizer, g *golden) {
	t.Helper()
	for _, c := range g.Encode {
		if hasSpecial(tok, c.Text) {
			continue
		}
		got, err := tok.Encode(c.Text)
		if err != nil {
			t.Errorf("Encode(%q): %v", c.Text, err)
			continue
		}
		if !slices.Equal(got, c.IDs) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", c.Text, got, c.IDs)
		}
	}
	for _, c := range g.Decode {
		if got := tok.Decode(c.IDs); got != c.Text {
			t.Errorf("Decode(%v) = %q, want %q", c.IDs, got, c.Text)
		}
	}
}

// hasSpecial reports whether text writes a token matched in the text as
// given (a special token).
func hasSpecial(tok *Tokenizer, text string) bool {
	for _, a := range tok.added {
		if !a.normalized && strings.Contains(text, a.content) {
			return true
		}
	}
	return false
}

// TestGoldenStories checks both loaders of the stories260K tokenizer
// (byte fallback, dummy prefix, spaces kept) against sentencepiece.
func TestGoldenStories(t *testing.T) {
	g := readGolden(t, "golden-stories260K.json")
	for name, tok := range loadBoth(t) {
		t.Run(name, func(t *testing.T) { checkGolden(t, tok, g) })
	}
}

// TestGoldenTiny checks a model trained by the golden script for the
// options stories260K lacks: no byte fallback (unknown runs fused),
// remove_extra_whitespaces, user-defined pieces, a <pad> control piece.
func TestGoldenTiny(t *testing.T) {
	g := readGolden(t, "golden-tiny-bpe.json")
	tok, err := LoadFile(filepath.Join("testdata", g.Model))
	if err != nil {
		t.Fatal(err)
	}
	user := 0
	for _, a := range tok.added {
		if !a.special {
			user++
		}
	}
	if tok.byteFall || !tok.norm.removeExtra || user != 2 {
		t.Fatalf("tiny-bpe.model read as byte fallback %v, remove extra spaces %v, user pieces %+v; want false, true, 2",
			tok.byteFall, tok.norm.removeExtra, tok.added)
	}
	checkGolden(t, tok, g)
}

// TestGoldenUnused checks SentencePiece's handling of UNUSED pieces on a
// copy of stories260K with five pieces marked so: merged into, then split
// back into the two symbols they were made of.
func TestGoldenUnused(t *testing.T) {
	g := readGolden(t, "golden-stories-unused.json")
	tok, err := LoadFile(filepath.Join("testdata", g.Model))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range tok.pieces {
		if p.kind == unused {
			n++
		}
	}
	if n != 5 || tok.wordSplit {
		t.Fatalf("%s: %d unused pieces, wordSplit %v; want 5, false", g.Model, n, tok.wordSplit)
	}
	checkGolden(t, tok, g)
}
