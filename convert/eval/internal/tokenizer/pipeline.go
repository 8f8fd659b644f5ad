package tokenizer

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
	"golang.org/x/text/unicode/norm"

	"github.com/qins-dev/qins/format"
)

// pipeline is Hugging Face tokenizers' way through a tokenizer.json, for
// the files the SentencePiece-style path does not take (byte-level BPE:
// GPT-2, Llama 3, Qwen, Phi-4, DeepSeek; Gemma 3's Split): each piece of
// text between added tokens is normalized, cut into words by the
// pre-tokenizers, and each word is encoded by BPE on its own.
type pipeline struct {
	norms   []func(string) string
	pretoks []preTokenizer
	decs    []func([]string) []string
}

// preTokenizer cuts words into smaller words; first says that the text
// they come from starts the input (Metaspace's prepend_scheme "first").
type preTokenizer func(words []string, first bool) ([]string, error)

// regexTimeout bounds one regular-expression search, so that a hostile
// pattern that backtracks without end fails instead of hanging.
const regexTimeout = 20 * time.Second

// gpt2Pattern is the word pattern of GPT-2, which the ByteLevel
// pre-tokenizer applies when use_regex is set.
const gpt2Pattern = `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`

// hfStep is any normalizer, pre-tokenizer or decoder of the pipeline
// path; which fields mean something depends on Type.
type hfStep struct {
	Type        string            `json:"type"`
	Normalizers []json.RawMessage `json:"normalizers"`
	PreTokens   []json.RawMessage `json:"pretokenizers"`
	Decoders    []json.RawMessage `json:"decoders"`
	Pattern     struct {
		String *string `json:"String"`
		Regex  *string `json:"Regex"`
	} `json:"pattern"`
	Content        string  `json:"content"`
	Prepend        string  `json:"prepend"`
	Behavior       string  `json:"behavior"`
	Invert         bool    `json:"invert"`
	AddPrefixSpace *bool   `json:"add_prefix_space"`
	UseRegex       *bool   `json:"use_regex"`
	Individual     bool    `json:"individual_digits"`
	Replacement    string  `json:"replacement"`
	PrependScheme  *string `json:"prepend_scheme"`
	Split          *bool   `json:"split"`
	StripLeft      bool    `json:"strip_left"`
	StripRight     bool    `json:"strip_right"`
	Start          int     `json:"start"`
	Stop           int     `json:"stop"`
}

// eachStep calls fn for raw and, for a Sequence, for each of its parts.
func eachStep(raw json.RawMessage, fn func(*hfStep) error) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var p hfStep
	if err := json.Unmarshal(raw, &p); err != nil {
		return err
	}
	if p.Type != "Sequence" {
		return fn(&p)
	}
	for _, list := range [][]json.RawMessage{p.Normalizers, p.PreTokens, p.Decoders} {
		for _, sub := range list {
			if err := eachStep(sub, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// newPipeline reads the normalizer, pre-tokenizer and decoder of f.
func newPipeline(f *hfFile) (*pipeline, error) {
	p := &pipeline{}
	steps := []struct {
		name string
		raw  json.RawMessage
		fn   func(*hfStep) error
	}{
		{"normalizer", f.Normalizer, p.addNormalizer},
		{"pre_tokenizer", f.PreTokenizer, p.addPreTokenizer},
		{"decoder", f.Decoder, p.addDecoder},
	}
	for _, s := range steps {
		if err := eachStep(s.raw, s.fn); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return p, nil
}

func stepName(s *hfStep) string {
	if s.Type == "" {
		return "a part without type"
	}
	return "type " + format.Printable(s.Type)
}

func (p *pipeline) addNormalizer(s *hfStep) error {
	var f func(string) string
	switch s.Type {
	case "NFC":
		f = norm.NFC.String
	case "NFD":
		f = norm.NFD.String
	case "NFKC":
		f = norm.NFKC.String
	case "NFKD":
		f = norm.NFKD.String
	case "Lowercase":
		f = strings.ToLower
	case "Prepend":
		pre := s.Prepend
		f = func(x string) string {
			if x == "" {
				return x
			}
			return pre + x
		}
	case "Strip":
		l, r := s.StripLeft, s.StripRight
		f = func(x string) string {
			if l {
				x = strings.TrimLeftFunc(x, unicode.IsSpace)
			}
			if r {
				x = strings.TrimRightFunc(x, unicode.IsSpace)
			}
			return x
		}
	case "Replace":
		re, err := stepPattern(s)
		if err != nil {
			return err
		}
		content := s.Content
		f = func(x string) string {
			// A timeout leaves the text as it is; the pre-tokenizer's
			// search on it reports the failure.
			y, err := re.Replace(x, escapeReplacement(content), -1, -1)
			if err != nil {
				return x
			}
			return y
		}
	default:
		return fmt.Errorf("%s not supported", stepName(s))
	}
	p.norms = append(p.norms, f)
	return nil
}

// escapeReplacement makes content literal in a regexp2 replacement.
func escapeReplacement(content string) string {
	return strings.ReplaceAll(content, "$", "$$")
}

// stepPattern compiles a part's pattern: a literal String or a Regex.
func stepPattern(s *hfStep) (*regexp2.Regexp, error) {
	var expr string
	switch {
	case s.Pattern.String != nil:
		expr = regexp2.Escape(*s.Pattern.String)
	case s.Pattern.Regex != nil:
		expr = *s.Pattern.Regex
	default:
		return nil, fmt.Errorf("%s: no pattern", stepName(s))
	}
	re, err := regexp2.Compile(expr)
	if err != nil {
		// The message quotes the pattern, which may hold a newline.
		return nil, fmt.Errorf("%s: pattern: %s", stepName(s), format.Printable(err.Error()))
	}
	re.MatchTimeout = regexTimeout
	return re, nil
}

func (p *pipeline) addPreTokenizer(s *hfStep) error {
	var f preTokenizer
	switch s.Type {
	case "Split":
		re, err := stepPattern(s)
		if err != nil {
			return err
		}
		b, err := parseBehavior(s.Behavior)
		if err != nil {
			return err
		}
		f = regexSplit(re, b, s.Invert)
	case "ByteLevel":
		var re *regexp2.Regexp
		if s.UseRegex == nil || *s.UseRegex {
			re = regexp2.MustCompile(gpt2Pattern)
			re.MatchTimeout = regexTimeout
		}
		prefix := s.AddPrefixSpace == nil || *s.AddPrefixSpace
		f = func(words []string, _ bool) ([]string, error) {
			if prefix {
				for i, w := range words {
					if !strings.HasPrefix(w, " ") {
						words[i] = " " + w
					}
				}
			}
			if re != nil {
				var err error
				if words, err = regexSplit(re, isolated, false)(words, false); err != nil {
					return nil, err
				}
			}
			for i, w := range words {
				words[i] = byteEncode(w)
			}
			return words, nil
		}
	case "Digits":
		b := contiguous
		if s.Individual {
			b = isolated
		}
		f = charSplit(unicode.IsNumber, b)
	case "Whitespace":
		re := regexp2.MustCompile(`\w+|[^\w\s]+`)
		re.MatchTimeout = regexTimeout
		f = regexSplit(re, removed, true)
	case "WhitespaceSplit":
		f = charSplit(unicode.IsSpace, removed)
	case "Punctuation":
		b := isolated // tokenizers' default
		if s.Behavior != "" {
			var err error
			if b, err = parseBehavior(s.Behavior); err != nil {
				return err
			}
		}
		f = charSplit(func(r rune) bool {
			return r < 0x80 && unicode.IsPunct(r) || r < 0x80 && unicode.IsSymbol(r) || unicode.IsPunct(r)
		}, b)
	case "Metaspace":
		f = metaspaceSplit(s)
	default:
		return fmt.Errorf("%s not supported", stepName(s))
	}
	p.pretoks = append(p.pretoks, f)
	return nil
}

// behavior is what a split does with the text its pattern matches.
type behavior uint8

const (
	removed            behavior = iota // dropped
	isolated                           // a word of its own
	mergedWithPrevious                 // joined to the word before
	mergedWithNext                     // joined to the word after
	contiguous                         // consecutive matches form one word
)

func parseBehavior(s string) (behavior, error) {
	for i, name := range []string{"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"} {
		if s == name {
			return behavior(i), nil
		}
	}
	return 0, fmt.Errorf("split behavior %q not supported", s)
}

// span2 is a part of a word and whether the pattern matched it.
type span2 struct {
	start, end int
	match      bool
}

// cut turns matches of w (sorted, not overlapping) into its words as
// behavior b says, after inverting them when invert is set; empty words
// are dropped, as Hugging Face tokenizers drops them.
func cut(w string, matches [][]int, b behavior, invert bool, out []string) []string {
	var parts []span2
	prev := 0
	for _, m := range matches {
		if m[0] > prev {
			parts = append(parts, span2{prev, m[0], invert})
		}
		parts = append(parts, span2{m[0], m[1], !invert})
		prev = m[1]
	}
	if prev < len(w) {
		parts = append(parts, span2{prev, len(w), invert})
	}
	var merged []span2
	switch b {
	case removed:
		for _, p := range parts {
			if !p.match {
				merged = append(merged, p)
			}
		}
	case isolated:
		merged = parts
	case mergedWithPrevious:
		prevMatch := false
		for _, p := range parts {
			if p.match && !prevMatch && len(merged) > 0 {
				merged[len(merged)-1].end = p.end
			} else {
				merged = append(merged, p)
			}
			prevMatch = p.match
		}
	case mergedWithNext:
		prevMatch := false
		for i := len(parts) - 1; i >= 0; i-- {
			p := parts[i]
			if p.match && !prevMatch && len(merged) > 0 {
				merged[len(merged)-1].start = p.start
			} else {
				merged = append(merged, p)
			}
			prevMatch = p.match
		}
		for i, j := 0, len(merged)-1; i < j; i, j = i+1, j-1 {
			merged[i], merged[j] = merged[j], merged[i]
		}
	case contiguous:
		for _, p := range parts {
			if n := len(merged); n > 0 && merged[n-1].match == p.match {
				merged[n-1].end = p.end
			} else {
				merged = append(merged, p)
			}
		}
	}
	for _, p := range merged {
		if p.end > p.start {
			out = append(out, w[p.start:p.end])
		}
	}
	return out
}

// regexSplit is the Split pre-tokenizer.
func regexSplit(re *regexp2.Regexp, b behavior, invert bool) preTokenizer {
	return func(words []string, _ bool) ([]string, error) {
		out := make([]string, 0, len(words))
		for _, w := range words {
			m, err := re.FindAllStringIndex(w, -1)
			if err != nil {
				// regexp2's message holds the whole text: name the pattern.
				return nil, fmt.Errorf("pre-tokenizer pattern %s gave up on a text of %d bytes (too much back-tracking)", format.Printable(re.String()), len(w))
			}
			out = cut(w, m, b, invert, out)
		}
		return out, nil
	}
}

// charSplit splits where is matches one character.
func charSplit(is func(rune) bool, b behavior) preTokenizer {
	return func(words []string, _ bool) ([]string, error) {
		out := make([]string, 0, len(words))
		for _, w := range words {
			var m [][]int
			for i, r := range w {
				if is(r) {
					m = append(m, []int{i, i + utf8.RuneLen(r)})
				}
			}
			out = cut(w, m, b, false, out)
		}
		return out, nil
	}
}

// metaspaceSplit is the Metaspace pre-tokenizer: spaces become the
// replacement, which is put in front as prepend_scheme says, and each
// word starts at one when split is set.
func metaspaceSplit(s *hfStep) preTokenizer {
	repl := s.Replacement
	scheme := "always"
	if s.PrependScheme != nil {
		scheme = *s.PrependScheme
	} else if s.AddPrefixSpace != nil && !*s.AddPrefixSpace {
		scheme = "never"
	}
	split := s.Split == nil || *s.Split
	return func(words []string, first bool) ([]string, error) {
		out := make([]string, 0, len(words))
		for i, w := range words {
			w = strings.ReplaceAll(w, " ", repl)
			if (scheme == "always" || scheme == "first" && first && i == 0) && !strings.HasPrefix(w, repl) && repl != "" {
				w = repl + w
			}
			if !split || repl == "" {
				out = append(out, w)
				continue
			}
			var m [][]int
			for at := 0; ; {
				j := strings.Index(w[at:], repl)
				if j < 0 {
					break
				}
				m = append(m, []int{at + j, at + j + len(repl)})
				at += j + len(repl)
			}
			out = cut(w, m, mergedWithNext, false, out)
		}
		return out, nil
	}
}

func (p *pipeline) addDecoder(s *hfStep) error {
	var f func([]string) []string
	switch s.Type {
	case "ByteLevel":
		f = func(toks []string) []string {
			var b []byte
			for _, t := range toks {
				b = append(b, byteDecode(t)...)
			}
			return []string{lossy(b)}
		}
	case "ByteFallback":
		f = func(toks []string) []string {
			out := make([]string, 0, len(toks))
			var pend []byte
			for _, t := range toks {
				if v, ok := parseBytePiece(t); ok {
					pend = append(pend, v)
					continue
				}
				if len(pend) > 0 {
					out = append(out, lossy(pend))
					pend = pend[:0]
				}
				out = append(out, t)
			}
			if len(pend) > 0 {
				out = append(out, lossy(pend))
			}
			return out
		}
	case "Fuse":
		f = func(toks []string) []string { return []string{strings.Join(toks, "")} }
	case "Replace":
		if s.Pattern.String == nil {
			return fmt.Errorf("%s: only a String pattern is supported", stepName(s))
		}
		from, to := *s.Pattern.String, s.Content
		f = func(toks []string) []string {
			for i, t := range toks {
				toks[i] = strings.ReplaceAll(t, from, to)
			}
			return toks
		}
	case "Strip":
		c, start, stop := s.Content, s.Start, s.Stop
		f = func(toks []string) []string {
			for i, t := range toks {
				for k := 0; k < start && strings.HasPrefix(t, c) && c != ""; k++ {
					t = t[len(c):]
				}
				for k := 0; k < stop && strings.HasSuffix(t, c) && c != ""; k++ {
					t = t[:len(t)-len(c)]
				}
				toks[i] = t
			}
			return toks
		}
	case "Metaspace":
		repl := s.Replacement
		strip := s.PrependScheme == nil && (s.AddPrefixSpace == nil || *s.AddPrefixSpace) || s.PrependScheme != nil && *s.PrependScheme != "never"
		f = func(toks []string) []string {
			for i, t := range toks {
				if repl != "" {
					t = strings.ReplaceAll(t, repl, " ")
				}
				if i == 0 && strip {
					t = strings.TrimPrefix(t, " ")
				}
				toks[i] = t
			}
			return toks
		}
	default:
		return fmt.Errorf("%s not supported", stepName(s))
	}
	p.decs = append(p.decs, f)
	return nil
}

// lossy returns b as UTF-8, each byte of an invalid sequence as U+FFFD.
func lossy(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	flushBytes(&sb, b)
	return sb.String()
}
