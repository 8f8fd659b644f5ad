// Package tokenizer turns text into token ids and back as Hugging Face
// transformers does with the BPE tokenizers models ship: the
// SentencePiece-style ones (byte fallback, "▁" for spaces: Llama 2,
// Mistral, Phi-3.5, Gemma) read from a tokenizer.json or a SentencePiece
// tokenizer.model, and byte-level BPE (GPT-2, Llama 3, Qwen 2 and 3,
// Phi-4, DeepSeek-V3) read from a tokenizer.json with the pre-tokenizers
// and regular expressions it declares.
//
// Added and special tokens written in the text (<|im_start|>, <s>) are
// matched first, as transformers matches them, and the text between them
// is encoded; EncodeInput adds the BOS and EOS that the post-processor
// and tokenizer_config.json ask for.
package tokenizer

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/qins-dev/qins/format"
)

// Names of the files Load looks for in a model folder.
const (
	JSONFile   = "tokenizer.json"
	ModelFile  = "tokenizer.model"
	ConfigFile = "tokenizer_config.json"
)

// spaceMark is SentencePiece's visible space, U+2581.
const spaceMark = "▁"

// unkSurface is what SentencePiece prints for the unknown token.
const unkSurface = " \u2047 "

// kind is the role of a piece, as SentencePiece types them.
type kind uint8

const (
	normal kind = iota
	unknown
	control
	userDefined
	byteKind
	unused
)

// piece is one vocabulary entry.
type piece struct {
	text    string
	surface string // text with "▁" as a space, what Decode prints
	kind    kind
	score   float32 // SentencePiece merge priority; unused for tokenizer.json
}

// normalizer is the text rewrite both formats apply before BPE.
type normalizer struct {
	prefix          string // added in front of non-empty text ("▁")
	prefixIfMissing bool   // Metaspace: only when the text does not start with it
	prefixFirst     bool   // Metaspace "first": only for the text at the start of the input
	removeExtra     bool   // trim spaces at both ends and collapse runs
	space           string // what ' ' becomes ("▁"), "" to keep it
}

// Tokenizer encodes and decodes text. It is safe for concurrent use.
type Tokenizer struct {
	src    string // file it was read from, for messages
	pieces []piece
	// ids maps the text of normal, user-defined and unused pieces to
	// their id: the pieces an encoded symbol can become.
	ids    map[string]int32
	byteID [256]int32 // id of <0xNN>, -1 when absent
	// merges holds tokenizer.json's merge table, keyed by the pair of
	// ids; nil for tokenizer.model, which merges by piece score.
	merges map[uint64]merge
	// added holds the user-defined pieces, in the file's order; match
	// finds those Encode matches whole in the text (see indexAdded).
	added []addedToken
	raw   *matcher // added tokens matched in the text as given
	match *matcher // added tokens matched in the normalized text
	// hf is Hugging Face tokenizers' general pipeline, nil for the
	// SentencePiece-style path (norm, splitWords, stripSpace).
	hf           *pipeline
	ignoreMerges bool // a word that is a piece is not merged (Llama 3)
	norm         normalizer
	splitWords   bool // Metaspace split: no merge across a "▁" that starts a word
	// wordSplit is set when no piece has "▁" after another character, so
	// no merge crosses such a "▁" and the text is encoded word by word.
	wordSplit  bool
	byteFall   bool
	keepUnks   bool // one unknown token per symbol, not one per run
	stripSpace bool // Decode drops the space the normalizer put in front
	unk        int
	bos, eos   int
	addBOS     bool
	addEOS     bool
}

// merge is one entry of a tokenizer.json merge table.
type merge struct {
	rank int32
	id   int32
}

// Load reads the tokenizer of a model folder: tokenizer.json when present,
// else tokenizer.model, plus tokenizer_config.json when present.
func Load(dir string) (*Tokenizer, error) {
	for _, name := range []string{JSONFile, ModelFile} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return LoadFile(p)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, pathError(err)
		}
	}
	return nil, &format.Error{Path: dir, Err: fmt.Errorf("no %s or %s", JSONFile, ModelFile)}
}

// LoadFile reads one tokenizer file, a tokenizer.json (by its .json
// extension) or a SentencePiece model, and the tokenizer_config.json
// beside it when present.
func LoadFile(path string) (*Tokenizer, error) {
	var t *Tokenizer
	var err error
	if strings.HasSuffix(path, ".json") {
		t, err = loadJSON(path)
	} else {
		t, err = loadModel(path)
	}
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(filepath.Dir(path), ConfigFile)
	if err := t.applyConfig(cfg); err != nil {
		return nil, err
	}
	return t, nil
}

// BOS returns the id of the beginning-of-sequence token, -1 when none.
func (t *Tokenizer) BOS() int { return t.bos }

// EOS returns the id of the end-of-sequence token, -1 when none.
func (t *Tokenizer) EOS() int { return t.eos }

// AddBOS reports whether a sequence should start with BOS, as
// tokenizer_config.json (or tokenizer.json's post-processor) says.
func (t *Tokenizer) AddBOS() bool { return t.addBOS && t.bos >= 0 }

// AddEOS reports whether a sequence should end with EOS.
func (t *Tokenizer) AddEOS() bool { return t.addEOS && t.eos >= 0 }

// VocabSize returns the number of token ids, one more than the largest.
func (t *Tokenizer) VocabSize() int { return len(t.pieces) }

// Piece returns the vocabulary text of id, "" when out of range.
func (t *Tokenizer) Piece(id int) string {
	if id < 0 || id >= len(t.pieces) {
		return ""
	}
	return t.pieces[id].text
}

// Encode returns the token ids of text, without the special tokens the
// post-processor adds (see EncodeInput). Invalid UTF-8 bytes are encoded
// as U+FFFD.
//
// Added tokens are matched as Hugging Face tokenizers matches them:
// first those not normalized (special tokens such as "<s>" or
// "<|im_start|>" mostly) in the text as given, leftmost-longest, with
// lstrip, rstrip and single_word honoured; the text between them is
// normalized and searched for the normalized ones; the rest is encoded
// with BPE, piece by piece.
func (t *Tokenizer) Encode(text string) ([]int, error) {
	if !utf8.ValidString(text) {
		text = replaceInvalid(text)
	}
	if len(text) > math.MaxInt32/4 {
		return nil, fmt.Errorf("tokenizer %s: text of %d bytes is too long", format.Printable(t.src), len(text))
	}
	e := encoder{out: make([]int, 0, len(text)/4+1)}
	at := 0
	for _, s := range t.raw.findRaw(text) {
		if err := t.encodePiece(text[at:s.start], at == 0, &e); err != nil {
			return nil, err
		}
		e.out = append(e.out, int(s.id))
		e.prevUnk = false
		at = int(s.end)
	}
	if err := t.encodePiece(text[at:], at == 0, &e); err != nil {
		return nil, err
	}
	return e.out, nil
}

// EncodeInput returns the ids transformers' tokenizer(text) gives: those
// of Encode with the BOS and EOS that tokenizer_config.json's
// add_bos_token and add_eos_token, or else the post-processor, add.
func (t *Tokenizer) EncodeInput(text string) ([]int, error) {
	ids, err := t.Encode(text)
	if err != nil {
		return nil, err
	}
	if t.AddBOS() {
		ids = append([]int{t.bos}, ids...)
	}
	if t.AddEOS() {
		ids = append(ids, t.eos)
	}
	return ids, nil
}

// encodePiece encodes text between added tokens; first says that it
// starts the input.
func (t *Tokenizer) encodePiece(text string, first bool, e *encoder) error {
	if text == "" {
		return nil
	}
	if t.hf != nil {
		return t.encodeHF(text, first, e)
	}
	n := t.normalize(text, first)
	// The added tokens are found first, in the whole text: no run below
	// cuts one, and none takes text that a run encodes again.
	spans := t.match.find(n)
	for start := 0; start < len(n); {
		end := t.wordEnd(n, start)
		if len(spans) > 0 && (t.splitWords || t.wordSplit) {
			// Words are encoded apart: an added token is a run of its own.
			if s := spans[0]; int(s.start) == start {
				e.out = append(e.out, int(s.id))
				e.prevUnk = false
				start, spans = int(s.end), spans[1:]
				continue
			}
			end = min(end, int(spans[0].start))
		}
		// Added tokens inside a run are symbols that never merge.
		k := 0
		for k < len(spans) && int(spans[k].end) <= end {
			k++
		}
		t.split(n, start, end, spans[:k], e)
		spans = spans[k:]
		t.bpe(n, e)
		if err := t.emit(n, e); err != nil {
			return err
		}
		start = end
	}
	return nil
}

// encodeHF encodes text between added tokens through the pipeline:
// normalizers, normalized added tokens, pre-tokenizers, BPE word by word.
func (t *Tokenizer) encodeHF(text string, first bool, e *encoder) error {
	n := text
	for _, f := range t.hf.norms {
		n = f(n)
	}
	at := 0
	for _, s := range t.match.find(n) {
		if err := t.encodeWords(n[at:s.start], first && at == 0, e); err != nil {
			return err
		}
		e.out = append(e.out, int(s.id))
		e.prevUnk = false
		at = int(s.end)
	}
	return t.encodeWords(n[at:], first && at == 0, e)
}

// encodeWords pre-tokenizes normalized text and encodes each word.
func (t *Tokenizer) encodeWords(n string, first bool, e *encoder) error {
	if n == "" {
		return nil
	}
	words := []string{n}
	for _, p := range t.hf.pretoks {
		var err error
		if words, err = p(words, first); err != nil {
			return fmt.Errorf("tokenizer %s: %v", format.Printable(t.src), err)
		}
	}
	for _, w := range words {
		if t.ignoreMerges {
			if id, ok := t.ids[w]; ok {
				e.out = append(e.out, int(id))
				e.prevUnk = false
				continue
			}
		}
		t.split(w, 0, len(w), nil, e)
		t.bpe(w, e)
		if err := t.emit(w, e); err != nil {
			return err
		}
	}
	return nil
}

// wordEnd returns where the run of n starting at start ends: before the
// next "▁" that no merge can cross, or at the end of n. Encoding runs one
// by one keeps the merge queue short, so long texts cost O(n log w) for
// words of w characters.
func (t *Tokenizer) wordEnd(n string, start int) int {
	if !t.splitWords && !t.wordSplit {
		return len(n)
	}
	for i := start + 1; i < len(n); i++ {
		j := strings.Index(n[i:], spaceMark)
		if j < 0 {
			return len(n)
		}
		i += j
		if t.splitWords || !strings.HasSuffix(n[:i], spaceMark) {
			return i
		}
	}
	return len(n)
}

// finish derives what both loaders share from the pieces: Decode's
// surfaces and whether runs can be encoded word by word.
func (t *Tokenizer) finish() {
	t.wordSplit = t.norm.space == spaceMark
	for i := range t.pieces {
		p := &t.pieces[i]
		p.surface = strings.ReplaceAll(p.text, spaceMark, " ")
		switch p.kind {
		case normal, userDefined:
			if strings.Contains(strings.TrimLeft(p.text, spaceMark), spaceMark) {
				t.wordSplit = false
			}
		case unused:
			// Which split of an unused piece wins depends on the order
			// of all candidates in the text: keep SentencePiece's order.
			t.wordSplit = false
		}
	}
	t.indexAdded()
}

// normalize applies the normalizer: spaces to "▁" and the dummy prefix
// (with Metaspace's "first", only when the text starts the input).
func (t *Tokenizer) normalize(text string, first bool) string {
	if !utf8.ValidString(text) {
		text = replaceInvalid(text)
	}
	if t.norm.removeExtra {
		text = collapseSpaces(text)
	}
	if text == "" {
		return ""
	}
	if t.norm.space != "" {
		text = strings.ReplaceAll(text, " ", t.norm.space)
	}
	if p := t.norm.prefix; p != "" && !(t.norm.prefixIfMissing && strings.HasPrefix(text, p)) && (first || !t.norm.prefixFirst) {
		text = p + text
	}
	if t.norm.removeExtra {
		// SentencePiece trims trailing spaces after escaping them, so a
		// literal "▁" at the end goes too.
		ws := " "
		if t.norm.space != "" {
			ws = t.norm.space
		}
		for strings.HasSuffix(text, ws) {
			text = text[:len(text)-len(ws)]
		}
	}
	return text
}

// replaceInvalid replaces each invalid UTF-8 byte of s by U+FFFD.
func replaceInvalid(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 8)
	for _, r := range s { // range yields RuneError for each bad byte
		b.WriteRune(r)
	}
	return b.String()
}

// collapseSpaces trims ' ' at both ends and turns runs of ' ' into one.
func collapseSpaces(s string) string {
	s = strings.Trim(s, " ")
	if !strings.Contains(s, "  ") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	prev := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == ' ' && prev {
			continue
		}
		prev = c == ' '
		b.WriteByte(c)
	}
	return b.String()
}

// Decode returns the text of ids without the special tokens, as
// transformers' decode(ids, skip_special_tokens=True): BOS, EOS and other
// control tokens are skipped. See DecodeSpecial.
func (t *Tokenizer) Decode(ids []int) string { return t.decode(ids, false) }

// DecodeSpecial returns the text of ids with the special tokens written
// as their text, as transformers' decode(ids): the text Encode read,
// where the tokenizer loses nothing.
//
// Byte-level pieces are turned back into their bytes. For the
// SentencePiece style, consecutive <0xNN> bytes are joined into UTF-8
// (each invalid byte becomes U+FFFD), "▁" becomes a space, the space the
// normalizer put in front of the text is dropped from the first piece, and
// the unknown token prints as " ⁇ ", all as SentencePiece decodes. An id
// out of range decodes to U+FFFD.
func (t *Tokenizer) DecodeSpecial(ids []int) string { return t.decode(ids, true) }

func (t *Tokenizer) decode(ids []int, special bool) string {
	if t.hf != nil {
		return t.decodeHF(ids, special)
	}
	var b strings.Builder
	var pend []byte
	first := true // only the first piece can carry the dummy prefix
	for _, id := range ids {
		if id < 0 || id >= len(t.pieces) {
			pend = flushBytes(&b, pend)
			b.WriteRune(utf8.RuneError)
			first = false
			continue
		}
		p := &t.pieces[id]
		if p.kind == control || id == t.bos || id == t.eos {
			if special {
				pend = flushBytes(&b, pend)
				b.WriteString(p.text)
				first = false
			}
			continue
		}
		wasFirst := first
		first = false
		if p.kind == byteKind {
			pend = append(pend, byteValue(p.text))
			continue
		}
		pend = flushBytes(&b, pend)
		if p.kind == unknown {
			if special {
				b.WriteString(p.text) // a special token, as transformers writes it
			} else {
				b.WriteString(unkSurface)
			}
			continue
		}
		s := p.surface
		if wasFirst && t.stripSpace && (strings.HasPrefix(p.text, spaceMark) || p.kind == userDefined && strings.HasPrefix(s, " ")) {
			s = s[1:] // "▁" (or an added token's " ", matched as "▁") became one space
		}
		b.WriteString(s)
	}
	flushBytes(&b, pend)
	return b.String()
}

// decodeHF passes the pieces of ids through the pipeline's decoders, as
// Hugging Face tokenizers does, added tokens included; special ones only
// when special is set.
func (t *Tokenizer) decodeHF(ids []int, special bool) string {
	var b strings.Builder
	var run []string
	flush := func() {
		toks := run
		for _, d := range t.hf.decs {
			toks = d(toks)
		}
		for _, s := range toks {
			b.WriteString(s)
		}
		run = run[:0]
	}
	for _, id := range ids {
		if id < 0 || id >= len(t.pieces) {
			flush()
			b.WriteRune(utf8.RuneError)
			continue
		}
		p := &t.pieces[id]
		if (p.kind == control || id == t.bos || id == t.eos) && !special {
			continue
		}
		run = append(run, p.text)
	}
	flush()
	return b.String()
}

// flushBytes writes the pending fallback bytes as UTF-8, each invalid byte
// as U+FFFD, and returns the emptied buffer.
func flushBytes(b *strings.Builder, pend []byte) []byte {
	for len(pend) > 0 {
		r, size := utf8.DecodeRune(pend)
		if r == utf8.RuneError && size <= 1 {
			b.WriteRune(utf8.RuneError)
			pend = pend[1:]
			continue
		}
		b.Write(pend[:size])
		pend = pend[size:]
	}
	return pend[:0]
}

// byteValue returns NN of a "<0xNN>" piece; callers checked the form.
func byteValue(s string) byte {
	v, _ := parseBytePiece(s)
	return v
}

// parseBytePiece parses "<0xNN>" with upper-case hex digits.
func parseBytePiece(s string) (byte, bool) {
	if len(s) != 6 || s[:3] != "<0x" || s[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(s[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}
