// Package tokenizer turns text into token ids and back with the
// SentencePiece-style BPE tokenizer (byte fallback, "▁" for spaces) that
// Llama-2, Mistral and Phi-3.5 ship, read from a Hugging Face
// tokenizer.json or a SentencePiece tokenizer.model.
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
	added      []addedToken
	match      *matcher
	norm       normalizer
	splitWords bool // Metaspace split: no merge across a "▁" that starts a word
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

// Encode returns the token ids of text, without BOS or EOS. The text is
// taken literally: "<s>" in it is three characters, not BOS. Invalid UTF-8
// bytes are encoded as U+FFFD, as SentencePiece does.
//
// Added tokens that are not special (tokenizer.json) and user-defined
// pieces (tokenizer.model) are found first, leftmost-longest in the
// normalized text as Hugging Face tokenizers finds them, in time linear in
// the text; single_word is honoured. What they do not match is encoded
// with BPE, and Decode of the ids gives the text back: BOS and EOS are
// not matched (Decode skips them), lstrip and rstrip take no whitespace
// into a token, and a token's spaces match the text's.
func (t *Tokenizer) Encode(text string) ([]int, error) {
	n := t.normalize(text)
	if len(n) > math.MaxInt32 {
		return nil, fmt.Errorf("tokenizer %s: text of %d bytes is too long", format.Printable(t.src), len(n))
	}
	e := encoder{out: make([]int, 0, len(n)/4+1)}
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
		t.split(n, start, end, spans[:k], &e)
		spans = spans[k:]
		t.bpe(n, &e)
		if err := t.emit(n, &e); err != nil {
			return nil, err
		}
		start = end
	}
	return e.out, nil
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

// normalize applies the normalizer: spaces to "▁" and the dummy prefix.
func (t *Tokenizer) normalize(text string) string {
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
	if p := t.norm.prefix; p != "" && !(t.norm.prefixIfMissing && strings.HasPrefix(text, p)) {
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

// Decode returns the text of ids. BOS, EOS and other control tokens
// (padding, special added tokens) are skipped, consecutive <0xNN> bytes are joined
// into UTF-8 (each invalid byte becomes U+FFFD), "▁" becomes a space, the
// space the normalizer put in front of the text is dropped from the first
// piece, and the unknown token prints as " ⁇ ", all as SentencePiece
// decodes. An id out of range decodes to U+FFFD.
func (t *Tokenizer) Decode(ids []int) string {
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
			b.WriteString(unkSurface)
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
