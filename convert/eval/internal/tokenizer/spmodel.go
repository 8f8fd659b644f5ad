package tokenizer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"

	"github.com/qins-dev/qins/format"
)

// maxFileBytes bounds a tokenizer file read into memory: a tokenizer.json,
// a tokenizer.model or a tokenizer_config.json. The largest real
// tokenizer.json files are about 35 MB.
const maxFileBytes = 64 << 20

// maxPieces bounds the vocabulary size.
const maxPieces = 1 << 22

// SentencePiece ModelProto field numbers and enum values
// (sentencepiece_model.proto).
const (
	modelPieces     = 1
	modelTrainer    = 2
	modelNormalizer = 3

	pieceText  = 1
	pieceScore = 2
	pieceType  = 3

	trainerModelType    = 3
	trainerTreatSuffix  = 24
	trainerByteFallback = 35
	trainerBOSPiece     = 46
	trainerEOSPiece     = 47

	normName        = 1
	normCharsmap    = 2
	normDummyPrefix = 3
	normRemoveExtra = 4
	normEscapeSpace = 5

	modelTypeUnigram = 1
	modelTypeBPE     = 2
)

var modelTypeNames = map[uint64]string{1: "UNIGRAM", 2: "BPE", 3: "WORD", 4: "CHAR"}

// spSpec is what loadModel keeps of the trainer and normalizer specs;
// proto2 defaults apply to absent fields.
type spSpec struct {
	modelType     uint64
	byteFallback  bool
	treatSuffix   bool
	bosPiece      string
	eosPiece      string
	normName      string
	charsmap      int // length of precompiled_charsmap
	dummyPrefix   bool
	removeExtra   bool
	escapeSpaces  bool
	haveTrainer   bool
	haveNormalize bool
}

// readLimited reads a whole file of at most maxFileBytes. Its errors name
// the file through format.Printable, and wrap an *fs.PathError's error
// (os.ErrNotExist, say).
func readLimited(path string) ([]byte, error) {
	f, err := format.OpenInput(path)
	if err != nil {
		return nil, pathError(err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, &format.Error{Path: path, Err: unwrapPath(err)}
	}
	if len(data) > maxFileBytes {
		return nil, &format.Error{Path: path, Err: fmt.Errorf("larger than %d MiB, the limit for a tokenizer file", maxFileBytes>>20)}
	}
	return data, nil
}

// pathError turns an *fs.PathError into a *format.Error, which prints its
// path through format.Printable.
func pathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &format.Error{Path: pe.Path, Err: pe.Err}
	}
	return err
}

// unwrapPath drops the operation and path of an *fs.PathError.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// loadModel reads a SentencePiece tokenizer.model (a ModelProto in
// protobuf wire format).
func loadModel(path string) (*Tokenizer, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	t, err := parseModel(data)
	if err != nil {
		return nil, &format.Error{Path: path, Err: err}
	}
	t.src = path
	return t, nil
}

// parseModel builds a Tokenizer from ModelProto bytes.
func parseModel(data []byte) (*Tokenizer, error) {
	spec := spSpec{modelType: modelTypeUnigram, bosPiece: "<s>", eosPiece: "</s>",
		dummyPrefix: true, removeExtra: true, escapeSpaces: true}
	var pieces []piece
	err := eachField(data, func(f field) error {
		switch f.num {
		case modelPieces:
			if len(pieces) >= maxPieces {
				return fmt.Errorf("more than %d pieces", maxPieces)
			}
			p, err := parsePiece(f)
			if err != nil {
				return fmt.Errorf("piece %d: %w", len(pieces), err)
			}
			pieces = append(pieces, p)
		case modelTrainer:
			spec.haveTrainer = true
			return parseTrainer(f, &spec)
		case modelNormalizer:
			spec.haveNormalize = true
			return parseNormalizer(f, &spec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("malformed SentencePiece model: %w", err)
	}
	if len(pieces) == 0 {
		return nil, errors.New("no pieces: not a SentencePiece model")
	}
	if spec.modelType != modelTypeBPE {
		name := modelTypeNames[spec.modelType]
		if name == "" {
			name = fmt.Sprint(spec.modelType)
		}
		return nil, fmt.Errorf("model type %s not supported (only BPE)", name)
	}
	if spec.treatSuffix {
		return nil, errors.New("treat_whitespace_as_suffix not supported")
	}
	if spec.charsmap > 0 {
		return nil, fmt.Errorf("normalization rule %q (a precompiled charsmap) not supported, only identity", spec.normName)
	}
	return newSPTokenizer(pieces, &spec)
}

// parsePiece reads one ModelProto.SentencePiece.
func parsePiece(m field) (piece, error) {
	if m.wire != wireBytes {
		return piece{}, errors.New("not a message")
	}
	p := piece{kind: normal}
	err := eachField(m.data, func(f field) error {
		switch f.num {
		case pieceText:
			if f.wire != wireBytes {
				return errors.New("piece text: wrong wire type")
			}
			p.text = string(f.data)
		case pieceScore:
			if f.wire != wireFixed32 {
				return errors.New("score: wrong wire type")
			}
			p.score = math.Float32frombits(uint32(f.val))
		case pieceType:
			k, ok := pieceKinds[f.val]
			if f.wire != wireVarint || !ok {
				return fmt.Errorf("unknown piece type %d", f.val)
			}
			p.kind = k
		}
		return nil
	})
	if err == nil && p.text == "" {
		err = errors.New("empty piece")
	}
	return p, err
}

var pieceKinds = map[uint64]kind{1: normal, 2: unknown, 3: control, 4: userDefined, 5: unused, 6: byteKind}

func parseTrainer(m field, s *spSpec) error {
	if m.wire != wireBytes {
		return errors.New("trainer_spec: not a message")
	}
	return eachField(m.data, func(f field) error {
		var err error
		switch f.num {
		case trainerModelType:
			s.modelType, err = f.varint()
		case trainerTreatSuffix:
			s.treatSuffix, err = f.bool()
		case trainerByteFallback:
			s.byteFallback, err = f.bool()
		case trainerBOSPiece:
			s.bosPiece, err = f.str()
		case trainerEOSPiece:
			s.eosPiece, err = f.str()
		}
		if err != nil {
			return fmt.Errorf("trainer_spec field %d: %w", f.num, err)
		}
		return nil
	})
}

func parseNormalizer(m field, s *spSpec) error {
	if m.wire != wireBytes {
		return errors.New("normalizer_spec: not a message")
	}
	return eachField(m.data, func(f field) error {
		var err error
		switch f.num {
		case normName:
			s.normName, err = f.str()
		case normCharsmap:
			if f.wire != wireBytes {
				err = errors.New("wrong wire type")
			}
			s.charsmap = len(f.data)
		case normDummyPrefix:
			s.dummyPrefix, err = f.bool()
		case normRemoveExtra:
			s.removeExtra, err = f.bool()
		case normEscapeSpace:
			s.escapeSpaces, err = f.bool()
		}
		if err != nil {
			return fmt.Errorf("normalizer_spec field %d: %w", f.num, err)
		}
		return nil
	})
}

// newSPTokenizer indexes the pieces of a SentencePiece BPE model.
func newSPTokenizer(pieces []piece, s *spSpec) (*Tokenizer, error) {
	t := &Tokenizer{
		pieces:     pieces,
		ids:        make(map[string]int32, len(pieces)),
		byteFall:   s.byteFallback,
		stripSpace: s.dummyPrefix,
		unk:        -1,
		bos:        -1,
		eos:        -1,
		addBOS:     true,
		norm:       normalizer{removeExtra: s.removeExtra},
	}
	if s.dummyPrefix {
		t.norm.prefix = " "
	}
	if s.escapeSpaces {
		t.norm.space = spaceMark
		if s.dummyPrefix {
			t.norm.prefix = spaceMark
		}
	}
	for i := range t.byteID {
		t.byteID[i] = -1
	}
	reserved := make(map[string]int, 8)
	for i, p := range pieces {
		switch p.kind {
		case normal, userDefined, unused:
			if _, dup := t.ids[p.text]; dup {
				return nil, fmt.Errorf("piece %d %q is defined twice", i, p.text)
			}
			t.ids[p.text] = int32(i)
			if p.kind == userDefined {
				t.added = append(t.added, addedToken{content: p.text, id: int32(i), normalized: true})
			}
		case byteKind:
			b, ok := parseBytePiece(p.text)
			if !ok {
				return nil, fmt.Errorf("byte piece %d is %q, not <0xNN>", i, p.text)
			}
			t.byteID[b] = int32(i)
		}
		if p.kind != normal && p.kind != userDefined && p.kind != unused {
			if _, dup := reserved[p.text]; dup {
				return nil, fmt.Errorf("piece %d %q is defined twice", i, p.text)
			}
			reserved[p.text] = i
		}
		if p.kind == unknown {
			t.unk = i
		}
		if p.kind == control || p.kind == unknown {
			// transformers finds the special tokens in the text.
			t.added = append(t.added, addedToken{content: p.text, id: int32(i), special: true})
		}
	}
	if t.unk < 0 {
		return nil, errors.New("no unknown piece")
	}
	if id, ok := reserved[s.bosPiece]; ok && pieces[id].kind == control {
		t.bos = id
	}
	if id, ok := reserved[s.eosPiece]; ok && pieces[id].kind == control {
		t.eos = id
	}
	t.finish()
	return t, nil
}
