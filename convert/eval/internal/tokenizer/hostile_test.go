package tokenizer

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// pb builds protobuf wire bytes for tests.
type pb []byte

func (b pb) varint(v uint64) pb { return binary.AppendUvarint(b, v) }

func (b pb) key(num uint64, wire int) pb { return b.varint(num<<3 | uint64(wire)) }

func (b pb) bytes(num uint64, data []byte) pb {
	return append(b.key(num, wireBytes).varint(uint64(len(data))), data...)
}

func (b pb) uint(num uint64, v uint64) pb { return b.key(num, wireVarint).varint(v) }

func (b pb) float(num uint64, f float32) pb {
	return binary.LittleEndian.AppendUint32(b.key(num, wireFixed32), math.Float32bits(f))
}

// spPiece encodes one ModelProto.SentencePiece.
func spPiece(text string, score float32, typ uint64) []byte {
	return pb{}.bytes(pieceText, []byte(text)).float(pieceScore, score).uint(pieceType, typ)
}

// spModel encodes a ModelProto of the given pieces (<unk>, <s>, </s>
// first), BPE with byte fallback, plus extra trainer and normalizer fields.
func spModel(pieces []string, trainer, norm pb) []byte {
	var b pb
	b = b.bytes(modelPieces, spPiece("<unk>", 0, 2))
	b = b.bytes(modelPieces, spPiece("<s>", 0, 3))
	b = b.bytes(modelPieces, spPiece("</s>", 0, 3))
	for i, p := range pieces {
		b = b.bytes(modelPieces, spPiece(p, -float32(i), 1))
	}
	b = b.bytes(modelTrainer, pb{}.uint(trainerModelType, modelTypeBPE).uint(trainerByteFallback, 1).append(trainer))
	b = b.bytes(modelNormalizer, pb{}.bytes(normName, []byte("identity")).uint(normRemoveExtra, 0).append(norm))
	return b
}

func (b pb) append(more pb) pb { return append(b, more...) }

// TestModelBuilt checks the hand-built model of the hostile tests is read
// as intended, so that their errors come from the one field each changes.
func TestModelBuilt(t *testing.T) {
	tok, err := parseModel(spModel([]string{"▁", "a", "b", "▁a", "ab", "▁ab"}, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := tok.Encode("ab b")
	if err != nil || len(ids) != 3 || tok.Piece(ids[0]) != "▁ab" || tok.Piece(ids[1]) != "▁" || tok.Piece(ids[2]) != "b" {
		t.Errorf("Encode(\"ab b\") = %v, %v", ids, err)
	}
}

// TestWordSplit checks that words are encoded apart only when no piece
// joins across a space, and that the result is the same either way.
func TestWordSplit(t *testing.T) {
	for _, tc := range []struct {
		pieces []string
		split  bool
		want   []string
	}{
		{[]string{"▁", "a", "b", "▁▁", "▁a", "▁b"}, true, []string{"▁a", "▁b", "▁▁", "a"}},
		{[]string{"▁", "a", "b", "▁a", "▁b", "a▁", "a▁b", "▁a▁b"}, false, []string{"▁a▁b", "▁", "▁a"}},
	} {
		tok, err := parseModel(spModel(tc.pieces, nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		if tok.wordSplit != tc.split {
			t.Errorf("pieces %q: wordSplit %v, want %v", tc.pieces, tok.wordSplit, tc.split)
		}
		ids, err := tok.Encode("a b  a")
		var got []string
		for _, id := range ids {
			got = append(got, tok.Piece(id))
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("pieces %q: Encode(\"a b  a\") = %q, %v; want %q", tc.pieces, got, err, tc.want)
		}
	}
	for name, tok := range loadBoth(t) {
		if !tok.wordSplit {
			t.Errorf("%s: stories260K not encoded word by word", name)
		}
	}
}

// TestHostileModel feeds broken tokenizer.model files: each must give an
// error saying what is wrong, never a panic.
func TestHostileModel(t *testing.T) {
	ok := []string{"▁", "a"}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "no pieces"},
		{"text", []byte("this is not a protobuf file\n"), "malformed"},
		{"unigram", spModel(ok, pb{}.uint(trainerModelType, modelTypeUnigram), nil), "model type UNIGRAM not supported"},
		{"model type 9", spModel(ok, pb{}.uint(trainerModelType, 9), nil), "model type 9"},
		{"no trainer spec", pb{}.bytes(modelPieces, spPiece("<unk>", 0, 2)), "model type UNIGRAM"},
		{"charsmap", spModel(ok, nil, pb{}.bytes(normCharsmap, []byte{1, 2, 3})), "precompiled charsmap"},
		{"suffix", spModel(ok, pb{}.uint(trainerTreatSuffix, 1), nil), "treat_whitespace_as_suffix"},
		{"duplicate", spModel([]string{"a", "a"}, nil, nil), `"a" is defined twice`},
		{"piece type 9", pb{}.bytes(modelPieces, spPiece("a", 0, 9)), "unknown piece type 9"},
		{"empty piece", pb{}.bytes(modelPieces, spPiece("", 0, 1)), "empty piece"},
		{"bad byte piece", pb{}.bytes(modelPieces, spPiece("<0xZZ>", 0, 6)).append(spModel(ok, nil, nil)), "not <0xNN>"},
		{"no unk", pb{}.bytes(modelPieces, spPiece("a", 0, 1)).bytes(modelTrainer, pb{}.uint(trainerModelType, 2)), "no unknown piece"},
		{"length past end", pb{}.key(modelPieces, wireBytes).varint(1 << 40), "runs past the end"},
		{"truncated varint", pb{0x80}, "truncated field key"},
		{"varint overflow", pb{}.key(5, wireVarint).append(pb{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}), "truncated varint"},
		{"group", pb{}.key(7, 3), "wire type 3"},
		{"field 0", pb{0x00}, "field number 0"},
		{"fixed32 cut", pb{}.key(9, wireFixed32).append(pb{1, 2}), "truncated fixed"},
		{"score as varint", pb{}.bytes(modelPieces, pb{}.bytes(pieceText, []byte("a")).uint(pieceScore, 1)), "score: wrong wire type"},
		{"pieces not a message", pb{}.uint(modelPieces, 3), "not a message"},
		{"model type as string", pb{}.bytes(modelTrainer, pb{}.bytes(trainerModelType, []byte("BPE"))), "wrong wire type"},
		{"bos piece not UTF-8", pb{}.bytes(modelTrainer, pb{}.bytes(trainerBOSPiece, []byte{0xff})), "not UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := parseModel(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseModel = %v, %v; want error containing %q", tok, err, tc.want)
			}
		})
	}
}

// TestTruncatedModel cuts the tiny model at every byte. Protobuf cannot
// tell a message that ends at a field boundary from a whole one, so a
// prefix may only be accepted when it ends between top-level fields after
// the trainer spec (the pieces come first; without it the model type is
// UNIGRAM); every other prefix must fail, and none may panic.
func TestTruncatedModel(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "tiny-bpe.model"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseModel(data); err != nil {
		t.Fatal(err)
	}
	allowed := map[int]bool{}
	off, trainerEnd := 0, -1
	err = eachField(data, func(f field) error {
		// Only length-delimited fields are at the top level here.
		_, n := readVarint(data[off:])
		_, m := readVarint(data[off+n:])
		off += n + m + len(f.data)
		if f.num == modelTrainer {
			trainerEnd = off
		}
		if trainerEnd >= 0 {
			allowed[off] = true
		}
		return nil
	})
	if err != nil || trainerEnd < 0 || off != len(data) {
		t.Fatalf("walking tiny-bpe.model: %v, trainer spec ends at %d", err, trainerEnd)
	}
	for n := 0; n < len(data); n++ {
		if _, err := parseModel(data[:n]); err == nil && !allowed[n] {
			t.Errorf("prefix of %d of %d bytes accepted", n, len(data))
		}
	}
}

// TestHostileJSON feeds broken tokenizer.json files.
func TestHostileJSON(t *testing.T) {
	base := func(extra string) string {
		return `{"model": {"type": "BPE", "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3}, "merges": [["a", "b"]], "unk_token": "<unk>"` + extra + `}}`
	}
	tests := []struct {
		name, data, want string
	}{
		{"not json", `{"model": `, "not a tokenizer.json"},
		{"wordpiece", `{"model": {"type": "WordPiece", "vocab": {}}}`, `model type "WordPiece" not supported`},
		{"unigram", `{"model": {"type": "Unigram", "vocab": [["a", 0]]}}`, `model type "Unigram" not supported`},
		{"wordlevel, vocab of another shape", `{"model": {"type": "WordLevel", "vocab": [1]}}`, `model type "WordLevel" not supported`},
		{"BPE, vocab of another shape", `{"model": {"type": "BPE", "vocab": [["a", 0]]}}`, "not a tokenizer.json"},
		{"no type", `{"model": {"vocab": {}}}`, `model type "" not supported`},
		{"no vocab", `{"model": {"type": "BPE", "merges": []}}`, "no vocab"},
		{"no merges", `{"model": {"type": "BPE", "vocab": {"a": 0}}}`, "no merges"},
		{"merge part unknown", base(`, "merges": [["a", "c"]]`), `"c" is not in the vocab`},
		{"merge result unknown", base(`, "merges": [["b", "a"]]`), `"ba" is not in the vocab`},
		{"merge of three", base(`, "merges": ["a b c"]`), "want two parts"},
		{"merge number", base(`, "merges": [7]`), `merges: want a list`},
		{"merges mixed", base(`, "merges": ["a b", ["a", "b"]]`), `merges: want a list`},
		{"merges null", base(`, "merges": null`), "no merges"},
		{"id too big", `{"model": {"type": "BPE", "vocab": {"a": 1000000000}, "merges": []}}`, "outside 0..1024"},
		{"negative id", `{"model": {"type": "BPE", "vocab": {"a": -1}, "merges": []}}`, "id -1"},
		{"shared id", `{"model": {"type": "BPE", "vocab": {"a": 0, "b": 0}, "merges": []}}`, "id 0 is given to both"},
		{"added clash", `{"added_tokens": [{"id": 1, "content": "<s>"}], "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}}`, `added token "<s>" has id 1`},
		{"empty added token", `{"added_tokens": [{"id": 1, "content": ""}], "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}`, "added token 1 is empty"},
		{"unk missing", base(`, "unk_token": "<UNK>"`), `unk_token "<UNK>" is not in the vocab`},
		{"suffix", base(`, "end_of_word_suffix": "</w>"`), "end_of_word_suffix"},
		{"precompiled", `{"normalizer": {"type": "Precompiled"}, "model": ` + base("")[10:], "normalizer: type Precompiled not supported"},
		{"bad regex", `{"normalizer": {"type": "Replace", "pattern": {"Regex": "(+"}, "content": "▁"}, "model": ` + base("")[10:], "normalizer: type Replace: pattern"},
		{"no pattern", `{"pre_tokenizer": {"type": "Split", "behavior": "Isolated"}, "model": ` + base("")[10:], "pre_tokenizer: type Split: no pattern"},
		{"bad split regex", `{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[a-"}, "behavior": "Isolated"}, "model": ` + base("")[10:], "pre_tokenizer: type Split: pattern"},
		{"bad regex with a newline", `{"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\n\u001b[2J("}, "behavior": "Isolated"}, "model": ` + base("")[10:], "pre_tokenizer: type Split: pattern"},
		{"bad behavior", `{"pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}, "model": ` + base("")[10:], `split behavior "Sideways" not supported`},
		{"bert pre-tokenizer", `{"pre_tokenizer": {"type": "BertPreTokenizer"}, "model": ` + base("")[10:], "pre_tokenizer: type BertPreTokenizer not supported"},
		{"wordpiece decoder", `{"decoder": {"type": "WordPiece"}, "model": ` + base("")[10:], "decoder: type WordPiece not supported"},
		{"regex decoder", `{"decoder": {"type": "Replace", "pattern": {"Regex": "x"}, "content": "y"}, "model": ` + base("")[10:], "only a String pattern"},
		{"roberta short", `{"post_processor": {"type": "RobertaProcessing", "cls": ["<s>"], "sep": ["</s>", 2]}, "model": ` + base("")[10:], "cls and sep must be"},
		{"roberta unknown", `{"post_processor": {"type": "RobertaProcessing", "cls": ["<s>", 1], "sep": ["</s>", 2]}, "model": ` + base("")[10:], `token "<s>" is not in the vocab`},
		{"untyped sequence part", `{"normalizer": {"type": "Sequence", "normalizers": [{}]}, "model": ` + base("")[10:], "a part without type"},
		{"template token unknown", `{"post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}]}, "model": ` + base("")[10:], `template token "<s>"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := parseJSON([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseJSON = %v, %v; want error containing %q", tok, err, tc.want)
			}
			if strings.ContainsAny(err.Error(), "\n\x1b") {
				t.Errorf("error is not one printable line: %q", err)
			}
		})
	}
	if _, err := parseJSON([]byte(base(""))); err != nil {
		t.Fatalf("the base of these cases fails: %v", err)
	}
}

// TestLoadErrorsNameFile checks errors from files carry the path.
func TestLoadErrorsNameFile(t *testing.T) {
	dir := t.TempDir()
	for name, data := range map[string]string{JSONFile: `{"model": {"type": "Unigram"}}`, ModelFile: "junk"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadFile(p); err == nil || !strings.HasPrefix(err.Error(), p+": ") {
			t.Errorf("LoadFile(%s) = %v, want an error starting with the path", name, err)
		}
	}
}

// TestNoUnknownToken checks Encode's error when a tokenizer.json without
// unk_token or byte fallback meets a character it cannot encode.
func TestNoUnknownToken(t *testing.T) {
	tok, err := parseJSON([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tok.Encode("ab"); err == nil || !strings.Contains(err.Error(), `"b" is not in the vocabulary`) {
		t.Errorf("Encode = %v, want an error naming \"b\"", err)
	}
	if ids, err := tok.Encode("aa"); err != nil || len(ids) != 2 {
		t.Errorf("Encode(\"aa\") = %v, %v; want [0 0]", ids, err)
	}
}

// TestFuseUnk checks tokenizer.json's fuse_unk: one <unk> for a run of
// unknown characters, or one each.
func TestFuseUnk(t *testing.T) {
	for _, tc := range []struct {
		fuse string
		want []int
	}{{"true", []int{1, 0, 1}}, {"false", []int{1, 0, 0, 0, 1}}} {
		tok, err := parseJSON([]byte(`{"model": {"type": "BPE", "vocab": {"<unk>": 0, "a": 1}, "merges": [], "unk_token": "<unk>", "fuse_unk": ` + tc.fuse + `}}`))
		if err != nil {
			t.Fatal(err)
		}
		if ids, err := tok.Encode("axyza"); err != nil || !slices.Equal(ids, tc.want) {
			t.Errorf("fuse_unk %s: Encode(\"axyza\") = %v, %v; want %v", tc.fuse, ids, err, tc.want)
		}
	}
}
