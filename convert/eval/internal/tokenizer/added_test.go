package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// withAdded returns an edit of the fixture tokenizer.json that appends
// non-special added tokens (ids from 512 on, single_word where the content
// ends with "|w") and gives "</s>" special false, as Phi-3's file does.
func withAdded(contents ...string) func(m map[string]any) {
	return func(m map[string]any) {
		list := m["added_tokens"].([]any)
		for _, a := range list {
			if a := a.(map[string]any); a["content"] == "</s>" {
				a["special"] = false
			}
		}
		for i, c := range contents {
			c, single := strings.CutSuffix(c, "|w")
			list = append(list, map[string]any{"id": 512 + i, "content": c, "special": false, "single_word": single,
				"lstrip": false, "rstrip": false, "normalized": true})
		}
		m["added_tokens"] = list
	}
}

// addedVariants are the fixture tokenizer.json's pre-tokenizing variants:
// the Prepend + Replace normalizer, and Metaspace with and without split.
var addedVariants = []struct {
	name string
	edit func(m map[string]any)
}{
	{"Prepend", func(m map[string]any) {}},
	{"Metaspace split", func(m map[string]any) {
		m["normalizer"] = nil
		m["pre_tokenizer"] = metaspace(map[string]any{"add_prefix_space": true})
	}},
	{"Metaspace no split", func(m map[string]any) {
		m["normalizer"] = nil
		m["pre_tokenizer"] = metaspace(map[string]any{"prepend_scheme": "first", "split": false})
		m["decoder"] = map[string]any{"type": "Sequence", "decoders": []any{
			map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"},
			metaspace(map[string]any{"prepend_scheme": "first"})}}
	}},
}

// TestAddedTokens checks that added tokens are matched leftmost-longest
// in the whole text, that single_word ones only between non-word
// characters, that BOS and EOS stay text, and that the ids of any text
// decode to that text: no added token takes text that is encoded again.
func TestAddedTokens(t *testing.T) {
	added := []string{"<|user|>", "a b", "ily", "Lily and", "and|w", " foo", "x▁y"}
	cases := []struct {
		text string
		want []string // the added tokens the ids hold, in order
	}{
		{"a b", []string{"a b"}},
		{"a bc", []string{"a b"}},
		{"ab", nil},
		{"a b b a b", []string{"a b", "a b"}},
		{"Lily and Tom", []string{"Lily and"}},
		{"Tom and Lily", []string{"and", "ily"}},
		{"candy and<|user|>x", []string{"and", "<|user|>"}},
		{"candy_and dandy", nil},
		{"<|user|><|user|>", []string{"<|user|>", "<|user|>"}},
		{"foo", []string{" foo"}},
		{"x foo", []string{" foo"}},
		{"Once upon a time foo bar", []string{" foo"}},
		{"tea b and\nand", []string{"a b", "and", "and"}},
		{"x y", []string{"x▁y"}},
		{"x yz x y", []string{"x▁y", "x▁y"}},
		{"", nil},
	}
	for _, v := range addedVariants {
		t.Run(v.name, func(t *testing.T) {
			tok, err := parseJSON(editJSON(t, func(m map[string]any) { v.edit(m); withAdded(added...)(m) }))
			if err != nil {
				t.Fatal(err)
			}
			isAdded := map[int]string{}
			for i, c := range added {
				isAdded[512+i], _ = strings.CutSuffix(c, "|w")
			}
			for _, c := range cases {
				ids, err := tok.Encode(c.text)
				if err != nil {
					t.Fatalf("Encode(%q): %v", c.text, err)
				}
				var got []string
				for _, id := range ids {
					if s, ok := isAdded[id]; ok {
						got = append(got, s)
					}
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("Encode(%q) = %v: added tokens %q, want %q", c.text, ids, got, c.want)
				}
				if s := tok.Decode(ids); s != c.text {
					t.Errorf("Decode(Encode(%q)) = %q (ids %v)", c.text, s, ids)
				}
			}
		})
	}
}

// TestAddedTokensModel checks a SentencePiece user-defined piece that
// spans a word: it is one token, and the word after it is encoded once.
func TestAddedTokensModel(t *testing.T) {
	tok, err := parseModel(pb{}.bytes(modelPieces, spPiece("a▁b", 0, 4)).append(spModel([]string{"▁", "a", "b", "▁a", "▁b"}, nil, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Encode("a b b")
	var got []string
	for _, id := range ids {
		got = append(got, tok.Piece(id))
	}
	if want := []string{"▁", "a▁b", "▁b"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Encode(\"a b b\") = %q, %v; want %q", got, err, want)
	}
	if s := tok.Decode(ids); s != "a b b" {
		t.Errorf("Decode = %q", s)
	}
}

// TestMatcherNaive compares the automaton with the obvious search (the
// longest token at the first position that has one, and on after it) on
// random tokens and texts over a small alphabet, where they overlap a lot.
func TestMatcherNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abc"[rng.IntN(3)]
		}
		return string(b)
	}
	for round := range 300 {
		var toks []addedToken
		var pats []string
		for i := range 1 + rng.IntN(12) {
			pats = append(pats, word(1+rng.IntN(6)))
			toks = append(toks, addedToken{content: pats[i], id: int32(i)})
		}
		m := newMatcher(toks, pats)
		for range 20 {
			text := word(rng.IntN(40))
			var want []span
			for i := 0; i < len(text); {
				best := -1
				for k, p := range pats {
					if strings.HasPrefix(text[i:], p) && (best < 0 || len(p) > len(pats[best])) {
						best = k
					}
				}
				if best < 0 {
					i++
					continue
				}
				want = append(want, span{int32(i), int32(i + len(pats[best])), int32(best), int32(best)})
				i += len(pats[best])
			}
			if got := m.find(text); !slices.Equal(got, want) {
				t.Fatalf("round %d: tokens %q, text %q: got %v, want %v", round, pats, text, got, want)
			}
		}
	}
}

// addedTokensJSON returns the fixture tokenizer.json with n added tokens
// made to be slow to look for: short words that occur in text, and long
// runs of "q" ending in "z" or starting with "z", which a search that
// walks a token from each position follows far in a text of "q"s.
func addedTokensJSON(t testing.TB, n int) []byte {
	rng := rand.New(rand.NewPCG(3, 4))
	contents := make([]string, 0, n)
	seen := map[string]bool{}
	for len(contents) < n {
		var c string
		switch k := len(contents); {
		case k%1000 == 0:
			c = strings.Repeat("q", 200+k/1000) + "z"
		case k%1000 == 1:
			c = "z" + strings.Repeat("q", 200+k/1000)
		default:
			b := make([]byte, 3+rng.IntN(6))
			for i := range b {
				b[i] = byte('a' + rng.IntN(26))
			}
			c = "<" + string(b) + ">"
			if rng.IntN(4) == 0 {
				c = string(b[:3]) + "x" + string(b[3:])
			}
		}
		if !seen[c] {
			seen[c] = true
			contents = append(contents, c)
		}
	}
	return editJSON(t, withAdded(contents...))
}

// addedText is a text of about size bytes: the fixture story, runs of
// "q", and added tokens.
func addedText(size int) string {
	var b strings.Builder
	for b.Len() < size {
		b.WriteString("Once upon a time, there was a little girl named Lily. ")
		b.WriteString(strings.Repeat("q", 300) + " <abc> ")
	}
	return b.String()[:size]
}

// minTime returns the shortest of a few runs of fn.
func minTime(fn func()) time.Duration {
	best := time.Duration(1 << 62)
	for range 5 {
		start := time.Now()
		fn()
		best = min(best, time.Since(start))
	}
	return best
}

// TestAddedTokensLinear checks that many added tokens do not make Encode
// slow: with 20,000 of them (long ones among them) a 20 kB text encodes
// in a small multiple of the time without any. Trying each token at each
// position took hundreds of times as long.
func TestAddedTokensLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	plain, err := parseJSON(editJSON(t, func(m map[string]any) {}))
	if err != nil {
		t.Fatal(err)
	}
	many, err := parseJSON(addedTokensJSON(t, 20000))
	if err != nil {
		t.Fatal(err)
	}
	text := addedText(20 << 10)
	ids, err := many.Encode(text)
	if err != nil || many.Decode(ids) != text {
		t.Fatalf("Encode: %v; round trip %v", err, many.Decode(ids) == text)
	}
	floor := minTime(func() { plain.Encode(text) })
	got := minTime(func() { many.Encode(text) })
	t.Logf("20 kB: %v without added tokens, %v with 20,000", floor, got)
	if got > 8*floor {
		t.Errorf("Encode with 20,000 added tokens took %v, %.0f times the %v without", got, float64(got)/float64(floor), floor)
	}
}

// BenchmarkAddedTokens measures Encode of a 20 kB text with 0 and 200,000
// added tokens.
func BenchmarkAddedTokens(b *testing.B) {
	text := addedText(20 << 10)
	for _, n := range []int{0, 200000} {
		data := addedTokensJSON(b, n)
		tok, err := parseJSON(data)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := tok.Encode(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzAddedTokens checks that with added tokens, overlapping and spanning
// words among them, any text decodes back from its ids (with "▁" as a
// space and invalid UTF-8 as U+FFFD, as FuzzEncode).
func FuzzAddedTokens(f *testing.F) {
	for _, s := range []string{"a b", "x yz x y", "Lily and Tom", "candy and<|user|>x", " foo", "\xff a b\xc3"} {
		f.Add(s)
	}
	tok, err := parseJSON(editJSON(f, withAdded("<|user|>", "a b", "ily", "Lily and", "and|w", " foo", "x▁y", "b a", "▁", "  ")))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := tok.Encode(s)
		if err != nil {
			t.Fatalf("Encode(%q): %v", s, err)
		}
		if got, want := tok.Decode(ids), strings.ReplaceAll(replaceInvalid(s), spaceMark, " "); got != want {
			t.Fatalf("Decode(Encode(%q)) = %q (ids %v)", s, got, ids)
		}
	})
}

// TestAddedEOSFromConfig checks that an added token that
// tokenizer_config.json makes EOS is still matched in the text, as
// transformers matches it, that Decode drops it and DecodeSpecial not.
func TestAddedEOSFromConfig(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, JSONFile), editJSON(t, withAdded("<|end|>", "<|user|>")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{"eos_token": "<|end|>"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Encode("<|user|>hi<|end|>")
	if err != nil || tok.EOS() != 512 || ids[len(ids)-1] != 512 || !slices.Contains(ids, 513) || tok.Decode(ids) != "<|user|>hi" || tok.DecodeSpecial(ids) != "<|user|>hi<|end|>" {
		t.Errorf("EOS %d; Encode = %v, %v; decoded %q, %q", tok.EOS(), ids, err, tok.Decode(ids), tok.DecodeSpecial(ids))
	}
}
