package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/dlclark/regexp2/v2"
)

// TestByteMap checks GPT-2's byte-to-character map: one printable,
// non-space character per byte, each mapped back, and the characters
// vocabularies are known to hold for a few bytes.
func TestByteMap(t *testing.T) {
	seen := map[rune]bool{}
	for b := 0; b < 256; b++ {
		r := byteRune(byte(b))
		if seen[r] || !unicode.IsPrint(r) || unicode.IsSpace(r) {
			t.Fatalf("byte %#x -> %U: repeated, not printable or a space", b, r)
		}
		seen[r] = true
		if back, ok := runeByte(r); !ok || back != byte(b) {
			t.Fatalf("byte %#x -> %U -> %#x, %v", b, r, back, ok)
		}
	}
	for _, c := range []struct {
		b byte
		r rune
	}{{' ', 'Ġ'}, {'\n', 'Ċ'}, {'\t', 'ĉ'}, {0, 'Ā'}, {0x7f, 'ġ'}, {0xa0, 'ł'}, {0xad, 'Ń'}, {'a', 'a'}, {0xff, 'ÿ'}} {
		if got := byteRune(c.b); got != c.r {
			t.Errorf("byteRune(%#x) = %q, want %q", c.b, got, c.r)
		}
	}
	for _, r := range []rune{'Ŕ', '▁', ' ', 0x100 + 68} {
		if _, ok := runeByte(r); ok {
			t.Errorf("runeByte(%U) stands for a byte", r)
		}
	}
	if got := string(byteDecode(byteEncode("é 😀\x00\xff"))); got != "é 😀\x00\xff" {
		t.Errorf("byteDecode(byteEncode) = %q", got)
	}
}

// TestSplit checks the Split pre-tokenizer's behaviors on the example of
// tokenizers' documentation, inverted patterns, and the regular
// expressions of Llama 3 and GPT-2 (look-aheads, case-insensitive
// contractions, digit runs cut by three).
func TestSplit(t *testing.T) {
	const llama3 = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
	cases := []struct {
		name, pattern string
		literal       bool
		b             behavior
		invert        bool
		in            string
		want          []string
	}{
		{"removed", "-", true, removed, false, "the-final--countdown", []string{"the", "final", "countdown"}},
		{"isolated", "-", true, isolated, false, "the-final--countdown", []string{"the", "-", "final", "-", "-", "countdown"}},
		{"merged with previous", "-", true, mergedWithPrevious, false, "the-final--countdown", []string{"the-", "final-", "-", "countdown"}},
		{"merged with next", "-", true, mergedWithNext, false, "the-final--countdown", []string{"the", "-final", "-", "-countdown"}},
		{"contiguous", "-", true, contiguous, false, "the-final--countdown", []string{"the", "-", "final", "--", "countdown"}},
		{"no match", "-", true, isolated, false, "abc", []string{"abc"}},
		{"all match", "-", true, removed, false, "---", nil},
		{"inverted, removed", `\w+|[^\w\s]+`, false, removed, true, "Hey friend!  How?", []string{"Hey", "friend", "!", "How", "?"}},
		{"llama3", llama3, false, isolated, false, "Hello world's 12345  \n x", []string{"Hello", " world", "'s", " ", "123", "45", "  \n", " x"}},
		{"llama3 spaces before a word", llama3, false, isolated, false, "a   b\t\tc", []string{"a", "  ", " b", "\t", "\tc"}},
		{"llama3 case-insensitive", llama3, false, isolated, false, "HE'S I'M", []string{"HE", "'S", " I", "'M"}},
		{"llama3 unicode", llama3, false, isolated, false, "你好,世界 ١٢٣٤", []string{"你好", ",世界", " ", "١٢٣", "٤"}},
		{"gpt2", gpt2Pattern, false, isolated, false, "I'm 2024ers!!  ok", []string{"I", "'m", " 2024", "ers", "!!", " ", " ok"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expr := c.pattern
			if c.literal {
				expr = regexp2.Escape(expr)
			}
			got, err := regexSplit(regexp2.MustCompile(expr), c.b, c.invert)([]string{c.in}, true)
			if err != nil || !slices.Equal(got, c.want) {
				t.Errorf("split(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
		})
	}
}

// TestCharSplits checks Digits (runs or single digits, Unicode numbers
// too) and Metaspace's prepend schemes.
func TestCharSplits(t *testing.T) {
	runs, _ := charSplit(unicode.IsNumber, contiguous)([]string{"ab1234c٣٤"}, true)
	single, _ := charSplit(unicode.IsNumber, isolated)([]string{"a12"}, true)
	if !slices.Equal(runs, []string{"ab", "1234", "c", "٣٤"}) || !slices.Equal(single, []string{"a", "1", "2"}) {
		t.Errorf("digits: %q, %q", runs, single)
	}
	first := "first"
	ms := metaspaceSplit(&hfStep{Replacement: spaceMark, PrependScheme: &first})
	a, _ := ms([]string{"Hello big world"}, true)
	b, _ := ms([]string{"Hello big"}, false)
	if !slices.Equal(a, []string{"▁Hello", "▁big", "▁world"}) || !slices.Equal(b, []string{"Hello", "▁big"}) {
		t.Errorf("metaspace first: %q, %q", a, b)
	}
}

// byteLevelJSON is a small byte-level tokenizer.json: the 256 byte
// characters, a few merges, added tokens of every kind, and the parts
// given.
func byteLevelJSON(t testing.TB, parts map[string]any) []byte {
	t.Helper()
	vocab := map[string]int{}
	for b := 0; b < 256; b++ {
		vocab[string(byteRune(byte(b)))] = b
	}
	merges := [][]string{{"Ġ", "t"}, {"h", "e"}, {"Ġt", "he"}, {"x", "y"}}
	for _, m := range merges {
		vocab[m[0]+m[1]] = len(vocab)
	}
	vocab["xyz"] = len(vocab) // a word no merge makes
	added := []map[string]any{
		{"id": 300, "content": "<|im_start|>", "special": true, "normalized": false},
		{"id": 301, "content": "<|l|>", "lstrip": true, "normalized": false},
		{"id": 302, "content": "<|r|>", "rstrip": true, "normalized": false},
		{"id": 303, "content": "<|w|>", "single_word": true, "normalized": false},
		{"id": 304, "content": "<|bos|>", "special": true, "normalized": false},
		{"id": 305, "content": "<|eos|>", "special": true, "normalized": false},
	}
	m := map[string]any{
		"added_tokens":  added,
		"model":         map[string]any{"type": "BPE", "vocab": vocab, "merges": merges},
		"pre_tokenizer": map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
		"decoder":       map[string]any{"type": "ByteLevel"},
	}
	for k, v := range parts {
		if k == "ignore_merges" {
			m["model"].(map[string]any)[k] = v
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustParse(t testing.TB, data []byte) *Tokenizer {
	t.Helper()
	tok, err := parseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func pieces(tok *Tokenizer, ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = tok.Piece(id)
	}
	return out
}

// TestByteLevel checks encoding with the byte-level tokenizer: merges,
// ignore_merges, and added tokens matched in the text with lstrip,
// rstrip and single_word, as transformers matches them.
func TestByteLevel(t *testing.T) {
	tok := mustParse(t, byteLevelJSON(t, nil))
	ign := mustParse(t, byteLevelJSON(t, map[string]any{"ignore_merges": true}))
	cases := []struct {
		tok  *Tokenizer
		in   string
		want []string
	}{
		{tok, "the the", []string{"t", "he", "Ġthe"}},
		{tok, "xyz", []string{"xy", "z"}},
		{ign, "xyz", []string{"xyz"}},
		{ign, "the the", []string{"t", "he", "Ġthe"}},
		{tok, "é\n", []string{"Ã", "©", "Ċ"}},
		{tok, "<|im_start|>the", []string{"<|im_start|>", "t", "he"}},
		{tok, "a <|l|> b", []string{"a", "<|l|>", "Ġ", "b"}},
		{tok, "a <|r|> b", []string{"a", "Ġ", "<|r|>", "b"}},
		{tok, "a\t \n<|l|><|r|>\t b", []string{"a", "<|l|>", "<|r|>", "b"}},
		{tok, "a<|w|>b", []string{"a", "<", "|", "w", "|", ">", "b"}},
		{tok, "a <|w|>.", []string{"a", "Ġ", "<|w|>", "."}},
		{tok, "<|im_start<|im_start|>|>", []string{"<", "|", "i", "m", "_", "s", "t", "a", "r", "t", "<|im_start|>", "|", ">"}},
	}
	for _, c := range cases {
		ids, err := c.tok.Encode(c.in)
		if got := pieces(c.tok, ids); err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestPostProcessor checks which special tokens EncodeInput adds for each
// post-processor, and tokenizer_config.json's add_bos_token, which only
// the Llama and Gemma tokenizer classes apply.
func TestPostProcessor(t *testing.T) {
	tpl := func(single ...any) map[string]any {
		return map[string]any{"type": "TemplateProcessing", "single": single}
	}
	sp := func(id string) map[string]any { return map[string]any{"SpecialToken": map[string]any{"id": id}} }
	seqA := map[string]any{"Sequence": map[string]any{"id": "A"}}
	bl := map[string]any{"type": "ByteLevel"}
	cases := []struct {
		name   string
		post   any
		config string
		want   []string
	}{
		{"none", nil, "", []string{"a"}},
		{"byte level", bl, "", []string{"a"}},
		{"template BOS", tpl(sp("<|bos|>"), seqA), "", []string{"<|bos|>", "a"}},
		{"template BOS and EOS", tpl(sp("<|bos|>"), seqA, sp("<|eos|>")), "", []string{"<|bos|>", "a", "<|eos|>"}},
		{"sequence", map[string]any{"type": "Sequence", "processors": []any{bl, tpl(sp("<|bos|>"), seqA)}}, "", []string{"<|bos|>", "a"}},
		{"roberta", map[string]any{"type": "RobertaProcessing", "cls": []any{"<|bos|>", 304}, "sep": []any{"<|eos|>", 305}}, "", []string{"<|bos|>", "a", "<|eos|>"}},
		{"llama class adds BOS", bl, `{"tokenizer_class": "LlamaTokenizerFast", "add_bos_token": true, "bos_token": "<|bos|>"}`, []string{"<|bos|>", "a"}},
		{"llama class drops BOS", tpl(sp("<|bos|>"), seqA), `{"tokenizer_class": "LlamaTokenizerFast", "add_bos_token": false}`, []string{"a"}},
		{"qwen class keeps the file's", bl, `{"tokenizer_class": "Qwen2TokenizerFast", "add_bos_token": true, "bos_token": "<|bos|>"}`, []string{"a"}},
		{"no class adds EOS", bl, `{"add_eos_token": true, "eos_token": "<|eos|>"}`, []string{"a", "<|eos|>"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, JSONFile), byteLevelJSON(t, map[string]any{"post_processor": c.post}), 0o644); err != nil {
				t.Fatal(err)
			}
			if c.config != "" {
				if err := os.WriteFile(filepath.Join(dir, ConfigFile), []byte(c.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			tok, err := Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			ids, err := tok.EncodeInput("a")
			if got := pieces(tok, ids); err != nil || !slices.Equal(got, c.want) {
				t.Errorf("EncodeInput(\"a\") = %q, %v; want %q", got, err, c.want)
			}
		})
	}
}

// TestByteLevelDecode checks that any text, invalid UTF-8 aside, comes
// back from the byte-level ids, special tokens written by DecodeSpecial
// and dropped by Decode.
func TestByteLevelDecode(t *testing.T) {
	tok := mustParse(t, byteLevelJSON(t, nil))
	for _, s := range []string{"", "the the", " \t\n  x ", "é 😀 👨‍👩‍👧 ١٢٣ 你好", "<|im_start|>user\nhi<|r|>  x", "\x00\x7f"} {
		ids, err := tok.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		want := s
		if strings.Contains(s, "<|r|>") {
			want = strings.Replace(s, "<|r|>  ", "<|r|>", 1) // rstrip took the spaces
		}
		if got := tok.DecodeSpecial(ids); got != want {
			t.Errorf("DecodeSpecial(Encode(%q)) = %q", s, got)
		}
		if got, want := tok.Decode(ids), strings.ReplaceAll(want, "<|im_start|>", ""); got != want {
			t.Errorf("Decode(Encode(%q)) = %q, want %q", s, got, want)
		}
	}
	if got := tok.DecodeSpecial([]int{int(byteRune(0xe2)), 0xa8}); got != "\ufffd\ufffd" {
		t.Errorf("an invalid byte pair decodes to %q", got)
	}
}

// TestGemmaStyle checks the pipeline on Gemma 3's layout (spaces replaced
// by "▁", no prefix, a Split on " " that the replacement leaves nothing
// to match, byte fallback, no word split) against the SentencePiece-style
// path on the same vocabulary without the Split: same ids, same text.
func TestGemmaStyle(t *testing.T) {
	replace := map[string]any{"type": "Replace", "pattern": map[string]any{"String": " "}, "content": spaceMark}
	decoder := map[string]any{"type": "Sequence", "decoders": []any{
		map[string]any{"type": "Replace", "pattern": map[string]any{"String": spaceMark}, "content": " "},
		map[string]any{"type": "ByteFallback"}, map[string]any{"type": "Fuse"}}}
	sp := mustParse(t, editJSON(t, func(m map[string]any) {
		m["normalizer"], m["decoder"] = replace, decoder
	}))
	gemma := mustParse(t, editJSON(t, func(m map[string]any) {
		m["normalizer"], m["decoder"] = replace, decoder
		m["pre_tokenizer"] = map[string]any{"type": "Split", "pattern": map[string]any{"String": " "}, "behavior": "MergedWithPrevious", "invert": false}
	}))
	if sp.hf != nil || gemma.hf == nil {
		t.Fatalf("paths: %v %v", sp.hf != nil, gemma.hf != nil)
	}
	g := readGolden(t, "golden-stories260K.json")
	for _, c := range g.Encode {
		a, err1 := sp.Encode(c.Text)
		b, err2 := gemma.Encode(c.Text)
		if err1 != nil || err2 != nil || !slices.Equal(a, b) {
			t.Errorf("Encode(%q): %v, %v; %v, %v", c.Text, a, err1, b, err2)
		}
		if x, y := sp.DecodeSpecial(a), gemma.DecodeSpecial(b); x != y {
			t.Errorf("DecodeSpecial(%v) = %q, pipeline %q", a, x, y)
		}
	}
}

// TestSpecialInText checks that special tokens written in the text are
// matched as transformers matches them, by both loaders of stories260K:
// the text between them is encoded on its own, with its own dummy prefix
// ("hello<s>world" is "▁hello", <s>, "▁world").
func TestSpecialInText(t *testing.T) {
	for name, tok := range loadBoth(t) {
		enc := func(s string) []int {
			ids, err := tok.Encode(s)
			if err != nil {
				t.Fatal(err)
			}
			return ids
		}
		cases := []struct {
			in   string
			want [][]int
		}{
			{"<s>", [][]int{{1}}},
			{"<s></s><unk>", [][]int{{1, 2, 0}}},
			{"Once<s>upon a</s> time", [][]int{enc("Once"), {1}, enc("upon a"), {2}, enc(" time")}},
			{"<<s>>", [][]int{enc("<"), {1}, enc(">")}},
			{"< s>", [][]int{enc("< s>")}},
		}
		for _, c := range cases {
			want := slices.Concat(c.want...)
			if got := enc(c.in); !slices.Equal(got, want) {
				t.Errorf("%s: Encode(%q) = %v, want %v", name, c.in, got, want)
			}
		}
		if slices.Contains(enc("< s>"), 1) {
			t.Errorf("%s: \"< s>\" holds BOS", name)
		}
	}
}

// TestPreTokenizerTypes checks the other pre-tokenizers as
// tokenizer.json declares them.
func TestPreTokenizerTypes(t *testing.T) {
	cases := []struct {
		step string
		in   string
		want []string
	}{
		{`{"type": "Whitespace"}`, "Hey friend!  How?", []string{"Hey", "friend", "!", "How", "?"}},
		{`{"type": "WhitespaceSplit"}`, "Hey friend!  How?", []string{"Hey", "friend!", "How?"}},
		{`{"type": "Punctuation"}`, "Hey friend!?", []string{"Hey friend", "!", "?"}},
		{`{"type": "Punctuation", "behavior": "Removed"}`, "a,b", []string{"a", "b"}},
		{`{"type": "Digits", "individual_digits": false}`, "x2024y", []string{"x", "2024", "y"}},
		{`{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}`, "hi there", []string{"Ġhi", "Ġthere"}},
		{`{"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}`, "hi there\n", []string{"hiĠthereĊ"}},
		{`{"type": "Split", "pattern": {"Regex": "\\d+"}, "behavior": "Removed", "invert": true}`, "a12b345", []string{"12", "345"}},
		{`{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true}`, "a b", []string{"▁a", "▁b"}},
	}
	for _, c := range cases {
		p := &pipeline{}
		var s hfStep
		if err := json.Unmarshal([]byte(c.step), &s); err != nil {
			t.Fatal(err)
		}
		if err := p.addPreTokenizer(&s); err != nil {
			t.Fatalf("%s: %v", c.step, err)
		}
		got, err := p.pretoks[0]([]string{c.in}, true)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s on %q = %q, %v; want %q", c.step, c.in, got, err, c.want)
		}
	}
}

// TestDecoders checks the decoders on lists of pieces, as tokenizers
// applies them in a Sequence.
func TestDecoders(t *testing.T) {
	cases := []struct {
		dec  string
		in   []string
		want string
	}{
		{`{"type": "ByteLevel"}`, []string{"Ġhi", "Ċ", "Ã", "©"}, " hi\né"},
		{`{"type": "ByteLevel"}`, []string{"Ã"}, "\ufffd"},
		{`{"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}`,
			[]string{"▁a", "<0xE2>", "<0x82>", "<0xAC>", "▁b", "<0xFF>"}, "a€ b\ufffd"},
		{`{"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"}]}`,
			[]string{"▁x", "▁y"}, "x y"},
		{`{"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never"}`, []string{"▁x", "▁y"}, " x y"},
	}
	for _, c := range cases {
		p := &pipeline{}
		if err := eachStep(json.RawMessage(c.dec), p.addDecoder); err != nil {
			t.Fatalf("%s: %v", c.dec, err)
		}
		toks := slices.Clone(c.in)
		for _, d := range p.decs {
			toks = d(toks)
		}
		if got := strings.Join(toks, ""); got != c.want {
			t.Errorf("%s on %q = %q, want %q", c.dec, c.in, got, c.want)
		}
	}
}

// TestNormalizedAdded checks added tokens' normalized flag on the
// pipeline: a normalized token is matched in the normalized text (its
// content normalized too), one that is not in the text as given.
func TestNormalizedAdded(t *testing.T) {
	tok := mustParse(t, byteLevelJSON(t, map[string]any{
		"normalizer": map[string]any{"type": "Lowercase"},
		"added_tokens": []map[string]any{
			{"id": 300, "content": "<X>", "normalized": true},
			{"id": 301, "content": "<Y>", "normalized": false},
		},
	}))
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"<X><x>", []string{"<X>", "<X>"}},
		{"<Y><y>", []string{"<Y>", "<", "y", ">"}},
	} {
		ids, err := tok.Encode(c.in)
		if got := pieces(tok, ids); err != nil || !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}
