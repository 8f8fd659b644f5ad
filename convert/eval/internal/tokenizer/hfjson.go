package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/qins-dev/qins/format"
)

// hfFile is the part of a Hugging Face tokenizer.json this package reads.
type hfFile struct {
	AddedTokens []struct {
		ID      int    `json:"id"`
		Content string `json:"content"`
		Special bool   `json:"special"`
		// How transformers matches the token in the text: single_word
		// only between non-word characters, lstrip and rstrip take the
		// whitespace beside it into the token, normalized in the
		// normalized text (else in the text as given; absent, it is
		// !special, as in tokenizers).
		SingleWord bool  `json:"single_word"`
		LStrip     bool  `json:"lstrip"`
		RStrip     bool  `json:"rstrip"`
		Normalized *bool `json:"normalized"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         struct {
		Type          string          `json:"type"`
		Vocab         map[string]int  `json:"vocab"`
		Merges        json.RawMessage `json:"merges"`
		ByteFallback  bool            `json:"byte_fallback"`
		UnkToken      *string         `json:"unk_token"`
		FuseUnk       bool            `json:"fuse_unk"`
		ContPrefix    *string         `json:"continuing_subword_prefix"`
		EndWordSuffix *string         `json:"end_of_word_suffix"`
		IgnoreMerges  bool            `json:"ignore_merges"`
	} `json:"model"`
}

// hfPart is any normalizer, pre-tokenizer, decoder or post-processor;
// which fields mean something depends on Type.
type hfPart struct {
	Type        string            `json:"type"`
	Normalizers []json.RawMessage `json:"normalizers"`
	PreTokens   []json.RawMessage `json:"pretokenizers"`
	Decoders    []json.RawMessage `json:"decoders"`
	Prepend     string            `json:"prepend"`
	Pattern     struct {
		String *string `json:"String"`
	} `json:"pattern"`
	Content        string  `json:"content"`
	Replacement    string  `json:"replacement"`
	AddPrefixSpace *bool   `json:"add_prefix_space"`
	PrependScheme  *string `json:"prepend_scheme"`
	Split          *bool   `json:"split"`
	Start          int     `json:"start"`
	Single         []struct {
		SpecialToken *struct {
			ID string `json:"id"`
		} `json:"SpecialToken"`
	} `json:"single"`
	Processors []json.RawMessage `json:"processors"`
	// cls and sep of RobertaProcessing and BertProcessing: [text, id].
	CLS []any `json:"cls"`
	SEP []any `json:"sep"`
}

// loadJSON reads a Hugging Face tokenizer.json holding a BPE model.
func loadJSON(path string) (*Tokenizer, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	t, err := parseJSON(data)
	if err != nil {
		return nil, &format.Error{Path: path, Err: err}
	}
	t.src = path
	return t, nil
}

// parseJSON builds a Tokenizer from tokenizer.json bytes.
func parseJSON(data []byte) (*Tokenizer, error) {
	var f hfFile
	if err := json.Unmarshal(data, &f); err != nil {
		// Another model type's fields (Unigram's vocab is a list) do not
		// fit BPE's: say which type it is, not that the JSON is wrong.
		var probe struct {
			Model struct {
				Type string `json:"type"`
			} `json:"model"`
		}
		if json.Unmarshal(data, &probe) == nil && probe.Model.Type != "" && probe.Model.Type != "BPE" {
			return nil, fmt.Errorf("model type %q not supported (only BPE)", probe.Model.Type)
		}
		return nil, fmt.Errorf("not a tokenizer.json: %w", err)
	}
	m := &f.Model
	switch {
	case m.Type != "BPE":
		return nil, fmt.Errorf("model type %q not supported (only BPE)", m.Type)
	case m.Vocab == nil:
		return nil, errors.New("BPE model has no vocab")
	case m.Merges == nil || string(m.Merges) == "null":
		return nil, errors.New("BPE model has no merges")
	case m.ContPrefix != nil && *m.ContPrefix != "", m.EndWordSuffix != nil && *m.EndWordSuffix != "":
		return nil, errors.New("continuing_subword_prefix / end_of_word_suffix not supported")
	}
	t := &Tokenizer{unk: -1, bos: -1, eos: -1, addBOS: true, byteFall: m.ByteFallback, keepUnks: !m.FuseUnk, ignoreMerges: m.IgnoreMerges}
	if err := t.jsonVocab(&f); err != nil {
		return nil, err
	}
	if err := t.jsonMerges(m.Merges); err != nil {
		return nil, err
	}
	if err := t.sentencePieceParts(&f); err != nil {
		// Not the SentencePiece-style normalizer and pre-tokenizer:
		// Hugging Face tokenizers' general pipeline, and no BOS unless
		// the post-processor adds one.
		p, perr := newPipeline(&f)
		if perr != nil {
			return nil, perr
		}
		*t = Tokenizer{pieces: t.pieces, ids: t.ids, byteID: t.byteID, merges: t.merges, added: t.added,
			unk: t.unk, bos: -1, eos: -1, byteFall: t.byteFall, keepUnks: t.keepUnks, ignoreMerges: t.ignoreMerges, hf: p}
	}
	if err := eachPart(f.PostProcessor, t.jsonPostProcessor); err != nil {
		return nil, fmt.Errorf("post_processor: %w", err)
	}
	if t.bos < 0 {
		t.bos = t.idOf("<s>")
	}
	if t.eos < 0 {
		t.eos = t.idOf("</s>")
	}
	t.finish()
	return t, nil
}

// sentencePieceParts reads the normalizer, pre-tokenizer and decoder when
// they are the SentencePiece-style ones the sp path encodes.
func (t *Tokenizer) sentencePieceParts(f *hfFile) error {
	steps := []struct {
		name string
		raw  json.RawMessage
		fn   func(*hfPart) error
	}{
		{"normalizer", f.Normalizer, t.jsonNormalizer},
		{"pre_tokenizer", f.PreTokenizer, t.jsonPreTokenizer},
		{"decoder", f.Decoder, t.jsonDecoder},
	}
	for _, s := range steps {
		if err := eachPart(s.raw, s.fn); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

// idOf returns the id of a piece by its text, -1 when absent.
func (t *Tokenizer) idOf(text string) int {
	if id, ok := t.lookup(text); ok {
		return id
	}
	return -1
}

// jsonVocab fills the pieces from the vocab and added_tokens.
func (t *Tokenizer) jsonVocab(f *hfFile) error {
	n := len(f.Model.Vocab) + len(f.AddedTokens)
	if n > maxPieces {
		return fmt.Errorf("more than %d tokens", maxPieces)
	}
	// Ids may leave a few gaps (GPT-4o's added tokens do), not many: the
	// pieces are held in an array as long as the largest id.
	limit := min(n+n/8+1024, maxPieces)
	size := 0
	check := func(text string, id int) error {
		if id < 0 || id >= limit {
			return fmt.Errorf("token %q has id %d, outside 0..%d", text, id, limit-1)
		}
		size = max(size, id+1)
		return nil
	}
	for text, id := range f.Model.Vocab {
		if err := check(text, id); err != nil {
			return err
		}
	}
	for _, a := range f.AddedTokens {
		if err := check(a.Content, a.ID); err != nil {
			return err
		}
		if a.Content == "" {
			return fmt.Errorf("added token %d is empty", a.ID)
		}
	}
	t.pieces = make([]piece, size)
	for i := range t.pieces {
		t.pieces[i].kind = control // an id no token has: never encoded, decoded as nothing
	}
	t.ids = make(map[string]int32, len(f.Model.Vocab))
	for i := range t.byteID {
		t.byteID[i] = -1
	}
	seen := make([]bool, size)
	for text, id := range f.Model.Vocab {
		if seen[id] {
			return fmt.Errorf("id %d is given to both %q and %q", id, t.pieces[id].text, text)
		}
		seen[id] = true
		t.pieces[id] = piece{text: text, kind: normal}
		if b, ok := parseBytePiece(text); ok {
			t.pieces[id].kind = byteKind
			t.byteID[b] = int32(id)
		}
	}
	for _, a := range f.AddedTokens {
		if seen[a.ID] && t.pieces[a.ID].text != a.Content {
			return fmt.Errorf("added token %q has id %d, which the vocab gives to %q", a.Content, a.ID, t.pieces[a.ID].text)
		}
		seen[a.ID] = true
		k := userDefined
		if a.Special {
			k = control
		}
		t.pieces[a.ID] = piece{text: a.Content, kind: k}
		normalized := !a.Special
		if a.Normalized != nil {
			normalized = *a.Normalized
		}
		t.added = append(t.added, addedToken{content: a.Content, id: int32(a.ID), singleWord: a.SingleWord,
			lstrip: a.LStrip, rstrip: a.RStrip, normalized: normalized, special: a.Special})
	}
	if u := f.Model.UnkToken; u != nil {
		id, ok := f.Model.Vocab[*u]
		if !ok {
			return fmt.Errorf("unk_token %q is not in the vocab", *u)
		}
		t.pieces[id].kind = unknown
		t.unk = id
	}
	for id, p := range t.pieces {
		if p.kind == normal || p.kind == userDefined {
			t.ids[p.text] = int32(id)
		}
	}
	return nil
}

// jsonMerges reads the merge list, ["a", "b"] pairs or (older files)
// "a b" strings; earlier merges apply first.
func (t *Tokenizer) jsonMerges(raw json.RawMessage) error {
	var list [][]string
	if err := json.Unmarshal(raw, &list); err != nil {
		var strs []string
		if json.Unmarshal(raw, &strs) != nil {
			return errors.New(`merges: want a list of ["a", "b"] pairs or of "a b" strings`)
		}
		list = make([][]string, len(strs))
		for i, s := range strs {
			list[i] = strings.Split(s, " ")
		}
	}
	t.merges = make(map[uint64]merge, len(list))
	for rank, pair := range list {
		if len(pair) != 2 {
			return fmt.Errorf("merge %d: want two parts, got %d", rank, len(pair))
		}
		var ids [3]int32
		for i, text := range []string{pair[0], pair[1], pair[0] + pair[1]} {
			id, ok := t.ids[text]
			if !ok {
				return fmt.Errorf("merge %d (%q %q): %q is not in the vocab", rank, pair[0], pair[1], text)
			}
			ids[i] = id
		}
		k := pairKey(ids[0], ids[1])
		if _, dup := t.merges[k]; !dup {
			t.merges[k] = merge{rank: int32(rank), id: ids[2]}
		}
	}
	return nil
}

// eachPart calls fn for raw and, for a Sequence, for each of its parts.
func eachPart(raw json.RawMessage, fn func(*hfPart) error) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var p hfPart
	if err := json.Unmarshal(raw, &p); err != nil {
		return err
	}
	if p.Type != "Sequence" {
		return fn(&p)
	}
	for _, list := range [][]json.RawMessage{p.Normalizers, p.PreTokens, p.Decoders, p.Processors} {
		for _, sub := range list {
			if err := eachPart(sub, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *Tokenizer) jsonNormalizer(p *hfPart) error {
	switch {
	case p.Type == "Prepend":
		t.norm.prefix = p.Prepend
	case p.Type == "Replace" && p.Pattern.String != nil && *p.Pattern.String == " ":
		t.norm.space = p.Content
	default:
		return fmt.Errorf("%s not supported (only Prepend and Replace(\" \", ...))", describe(p))
	}
	return nil
}

func (t *Tokenizer) jsonPreTokenizer(p *hfPart) error {
	if p.Type != "Metaspace" {
		return fmt.Errorf("%s not supported (only Metaspace)", describe(p))
	}
	t.norm.space = p.Replacement
	if metaspacePrepends(p) {
		t.norm.prefix = p.Replacement
		t.norm.prefixIfMissing = true
		t.norm.prefixFirst = p.PrependScheme != nil && *p.PrependScheme == "first"
	}
	t.splitWords = p.Split == nil || *p.Split
	return nil
}

// metaspacePrepends reports whether a Metaspace part adds the prefix:
// old files say add_prefix_space, newer ones prepend_scheme.
func metaspacePrepends(p *hfPart) bool {
	if p.PrependScheme != nil {
		return *p.PrependScheme != "never"
	}
	return p.AddPrefixSpace == nil || *p.AddPrefixSpace
}

func (t *Tokenizer) jsonDecoder(p *hfPart) error {
	switch p.Type {
	case "ByteFallback", "Fuse":
	case "Replace":
		if p.Pattern.String == nil || *p.Pattern.String != spaceMark || p.Content != " " {
			return fmt.Errorf("%s not supported (only Replace(\"▁\", \" \"))", describe(p))
		}
	case "Strip":
		t.stripSpace = p.Content == " " && p.Start > 0
	case "Metaspace":
		t.stripSpace = metaspacePrepends(p)
	default:
		return fmt.Errorf("%s not supported", describe(p))
	}
	return nil
}

// jsonPostProcessor reads which special tokens the post-processor puts
// around a single sequence: TemplateProcessing's first and last special
// tokens, RobertaProcessing's and BertProcessing's cls and sep; the
// others (ByteLevel) add none.
func (t *Tokenizer) jsonPostProcessor(p *hfPart) error {
	switch p.Type {
	case "TemplateProcessing":
		if len(p.Single) == 0 {
			return nil
		}
		st := p.Single[0].SpecialToken
		t.addBOS = st != nil
		if st != nil {
			id, ok := t.lookup(st.ID)
			if !ok {
				return fmt.Errorf("template token %q is not in the vocab", st.ID)
			}
			t.bos = id
		}
		if n := len(p.Single); n > 1 && p.Single[n-1].SpecialToken != nil {
			id, ok := t.lookup(p.Single[n-1].SpecialToken.ID)
			if !ok {
				return fmt.Errorf("template token %q is not in the vocab", p.Single[n-1].SpecialToken.ID)
			}
			t.addEOS, t.eos = true, id
		}
	case "RobertaProcessing", "BertProcessing":
		for _, s := range []struct {
			v   []any
			id  *int
			add *bool
		}{{p.CLS, &t.bos, &t.addBOS}, {p.SEP, &t.eos, &t.addEOS}} {
			if len(s.v) != 2 {
				return fmt.Errorf("%s: cls and sep must be [token, id]", describe(p))
			}
			text, ok := s.v[0].(string)
			if !ok {
				return fmt.Errorf("%s: cls and sep must be [token, id]", describe(p))
			}
			id, ok := t.lookup(text)
			if !ok {
				return fmt.Errorf("%s: token %q is not in the vocab", describe(p), text)
			}
			*s.id, *s.add = id, true
		}
	default:
		t.addBOS = false
	}
	return nil
}

func describe(p *hfPart) string {
	if p.Type == "" {
		return "a part without type"
	}
	return "type " + format.Printable(p.Type)
}
