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
	p := format.Printable(e.Path)
	msg := e.Err.Error()
	// The message names the file already when it starts with it or
	// holds it as an *os.PathError does ("open PATH: ..."); a path
	// merely inside other text (".", or a path ending another) does not.
	if e.Path == "" || errors.As(e.Err, &fe) || strings.HasPrefix(msg, p+": ") || strings.Contains(msg, " "+p+": ") {
		return msg
	}
	return p + ": " + msg
}

func (e *InputError) Unwrap() error { return e.Err }

// MismatchError reports a candidate whose tensors differ from the
// reference's in names or shapes.
type MismatchError struct {
	Ref, Cand string
	Missing   []string // in Ref, not in Cand
	Extra     []string // in Cand, not in Ref
	Shapes    []string // "name [a b] against [c d]", the name through format.Printable
}

func (e *MismatchError) Error() string {
	var parts []string
	list := func(what string, names []string) {
		if len(names) == 0 {
			return
		}
		s := fmt.Sprintf("%d %s (%s", len(names), what, format.Printable(names[0]))
		if len(names) > 1 {
			s += fmt.Sprintf(", and %d more", len(names)-1)
		}
		parts = append(parts, s+")")
	}
	list("tensors missing", e.Missing)
	list("extra tensors", e.Extra)
	list("shapes differ", e.Shapes)
	return fmt.Sprintf("%s does not have the tensors of %s: %s", format.Printable(e.Cand), format.Printable(e.Ref), strings.Join(parts, "; "))
}

// StreamError reports a token stream the model cannot take: too short, too
// long, or with an id outside the vocabulary.
type StreamError struct {
	Err error
}

func (e *StreamError) Error() string { return "token stream: " + e.Err.Error() }

func (e *StreamError) Unwrap() error { return e.Err }

// GenerateError reports a number of tokens to generate that does not fit
// in max_position_embeddings after the prompt.
type GenerateError struct {
	Prompt, Generate, MaxPositions int
	Config                         string // the config.json that sets MaxPositions
}

func (e *GenerateError) Error() string {
	return fmt.Sprintf("a %d-token prompt and %d generated tokens are longer than max_position_embeddings %d (%s): at most %d can be generated",
		e.Prompt, e.Generate, e.MaxPositions, format.Printable(e.Config), max(0, e.MaxPositions-e.Prompt))
}
