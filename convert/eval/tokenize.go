package eval

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/qins-dev/qins/convert/eval/internal/tokenizer"
	"github.com/qins-dev/qins/format"
)

// Tokenizer is the tokenizer eval reads beside a checkpoint, for
// `qins tokenize`.
type Tokenizer struct {
	t *tokenizer.Tokenizer
}

// LoadTokenizer reads the tokenizer eval uses for checkpoint, a folder or
// a file in one: its tokenizer.json, else its tokenizer.model, with its
// tokenizer_config.json.
func LoadTokenizer(checkpoint string) (*Tokenizer, error) {
	fi, err := os.Stat(checkpoint)
	if err != nil {
		return nil, &InputError{Err: pathError(err)}
	}
	dir := checkpoint
	if !fi.IsDir() {
		dir = filepath.Dir(checkpoint)
	}
	t, err := findTokenizer(dir)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, &InputError{Path: dir, Err: fmt.Errorf("no %s or %s", tokenizer.JSONFile, tokenizer.ModelFile)}
	}
	return &Tokenizer{t: t}, nil
}

// pathError names the file of an *os.PathError once.
func pathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return fmt.Errorf("%s: %w", format.Printable(pe.Path), pe.Err)
	}
	return err
}

// Encode returns the ids eval feeds the model for text (with --text):
// those of transformers' tokenizer(text), BOS and EOS included as the
// tokenizer's files ask.
func (t *Tokenizer) Encode(text string) ([]int, error) {
	ids, err := t.t.EncodeInput(text)
	if err != nil {
		return nil, &InputError{Err: err}
	}
	return ids, nil
}

// Pieces returns the vocabulary text of each id.
func (t *Tokenizer) Pieces(ids []int) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = t.t.Piece(id)
	}
	return out
}
