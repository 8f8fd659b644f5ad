package eval

import (
	"errors"
	"fmt"
	"strings"

	"github.com/qins-dev/qins/format"
)

var (
	// ErrNoConfig is wrapped by the error of a checkpoint without a
	// config.json beside it; Options.Config names one elsewhere.
	ErrNoConfig = errors.New("no config.json")
	// ErrNoTokenizer is wrapped by the error of a text to tokenise without a
	// tokenizer.json or tokenizer.model beside the checkpoint.
	ErrNoTokenizer = errors.New("no tokenizer.json or tokenizer.model beside the checkpoint or its config to tokenise the text with")
)

// InputError is an input Eval cannot use: a checkpoint, a config.json or a
// tokenizer that cannot be read, or a model that cannot run on it.
type InputError struct {
	Path string // the file at fault, when the error does not name it already
	Err  error
}

func (e *InputError) Error() string {
	var fe *format.Error
	if e.Path == "" || errors.As(e.Err, &fe) || strings.Contains(e.Err.Error(), e.Path) {
		return e.Err.Error()
	}
	return e.Path + ": " + e.Err.Error()
}

func (e *InputError) Unwrap() error { return e.Err }

// MismatchError reports a candidate whose tensors differ from the
// reference's in names or shapes.
type MismatchError struct {
	Ref, Cand string
	Missing   []string // in Ref, not in Cand
	Extra     []string // in Cand, not in Ref
	Shapes    []string // "name [a b] against [c d]"
}

func (e *MismatchError) Error() string {
	var parts []string
	list := func(what string, names []string) {
		if len(names) == 0 {
			return
		}
		s := fmt.Sprintf("%d %s (%s", len(names), what, names[0])
		if len(names) > 1 {
			s += fmt.Sprintf(", and %d more", len(names)-1)
		}
		parts = append(parts, s+")")
	}
	list("tensors missing", e.Missing)
	list("extra tensors", e.Extra)
	list("shapes differ", e.Shapes)
	return fmt.Sprintf("%s does not have the tensors of %s: %s", e.Cand, e.Ref, strings.Join(parts, "; "))
}

// StreamError reports a token stream the model cannot take: too short, too
// long, or with an id outside the vocabulary.
type StreamError struct {
	Err error
}

func (e *StreamError) Error() string { return "token stream: " + e.Err.Error() }

func (e *StreamError) Unwrap() error { return e.Err }
