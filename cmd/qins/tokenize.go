package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/urfave/cli/v2"

	"github.com/qins-dev/qins/convert/eval"
	"github.com/qins-dev/qins/format"
)

// tokenizeCommand is `qins tokenize CHECKPOINT [TEXT]`.
func tokenizeCommand(action cli.ActionFunc) *cli.Command {
	return &cli.Command{
		Name:        "tokenize",
		Usage:       "print the token ids eval feeds the model for a text, as transformers' tokenizer(text) gives them",
		ArgsUsage:   "CHECKPOINT [TEXT]",
		Description: tokenizeHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "text", Usage: "tokenise `FILE` (UTF-8 text) instead of TEXT"},
			&cli.StringFlag{Name: "jsonl", Usage: "tokenise each line of `FILE`, one JSON string a line, and print one JSON object a line"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object with the ids and their pieces"},
		},
		OnUsageError: usageErr,
		Action:       action,
	}
}

const tokenizeHelp = `Tokenize reads the tokenizer beside CHECKPOINT (a folder, or a file in
one: tokenizer.json, else tokenizer.model, with tokenizer_config.json) as
eval does, and prints the token ids eval feeds the model for TEXT or for
--text FILE: a JSON array, which eval --tokens reads. Special and added
tokens written in the text (<s>, <|im_start|>) become their ids, and BOS
and EOS are added as the tokenizer's files say, as transformers'
tokenizer(text) does.

With --json it prints {"ids": [...], "pieces": [...]}, the pieces being
the vocabulary entries of the ids. With --jsonl FILE, each line of FILE is
a JSON string, and each gives one such object on its own line: a corpus is
checked in one call (scripts/tokcheck compares them with Tokenizers.js).`

// tokenize runs `qins tokenize`.
func (a *app) tokenize(c *cli.Context) error {
	text, jsonl := c.String("text"), c.String("jsonl")
	sources := 0
	for _, set := range []bool{c.NArg() == 2, text != "", jsonl != ""} {
		if set {
			sources++
		}
	}
	switch {
	case c.NArg() == 0 || c.NArg() > 2:
		return usageError{fmt.Errorf("tokenize takes a checkpoint and at most one text; got %d arguments", c.NArg())}
	case sources != 1:
		return usageError{errors.New("give one of TEXT, --text FILE or --jsonl FILE")}
	case jsonl != "" && c.Bool("json"):
		return usageError{errors.New("--jsonl already prints JSON: --json is not needed")}
	}
	tok, err := eval.LoadTokenizer(c.Args().Get(0))
	if err != nil {
		return unusable{withHint(err)}
	}
	if jsonl != "" {
		return a.tokenizeLines(tok, jsonl)
	}
	s := c.Args().Get(1)
	if !utf8.ValidString(s) {
		return usageError{errors.New("TEXT is not UTF-8: give UTF-8 text")}
	}
	if text != "" {
		b, err := eval.ReadText(text)
		if err != nil {
			return unusable{withHint(readErr("--text", text, err))}
		}
		s = string(b)
	}
	ids, err := tok.Encode(s)
	if err != nil {
		return unusable{err}
	}
	var out any = ids
	if c.Bool("json") {
		out = tokens{IDs: ids, Pieces: tok.Pieces(ids)}
	}
	return writeJSONLine(a, out)
}

// tokens is one line of --json and --jsonl output.
type tokens struct {
	IDs    []int    `json:"ids"`
	Pieces []string `json:"pieces"`
}

// tokenizeLines tokenises each JSON string of the file at path.
func (a *app) tokenizeLines(tok *eval.Tokenizer, path string) error {
	b, err := eval.ReadFile(path, eval.MaxTextBytes, "a JSON-lines file")
	if err != nil {
		return unusable{withHint(readErr("--jsonl", path, err))}
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	for n := 1; sc.Scan(); n++ {
		var s string
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return unusable{fmt.Errorf("--jsonl %s: line %d: want a JSON string, got %s", format.Printable(path), n, jsonGot(sc.Bytes(), err))}
		}
		ids, err := tok.Encode(s)
		if err != nil {
			return unusable{fmt.Errorf("--jsonl %s: line %d: %w", format.Printable(path), n, err)}
		}
		if err := marshalLine(&out, tokens{IDs: ids, Pieces: tok.Pieces(ids)}); err != nil {
			return unusable{err}
		}
	}
	if _, err := (&jsonWriter{w: a.stdout}).Write(out.Bytes()); err != nil {
		return unusable{fmt.Errorf("writing the ids: %w", err)}
	}
	return nil
}

// marshalLine appends v to b as one line of JSON, "<" and ">" as they
// are (pieces are full of them).
func marshalLine(b *bytes.Buffer, v any) error {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// writeJSONLine prints v as one line of JSON.
func writeJSONLine(a *app, v any) error {
	var b bytes.Buffer
	if err := marshalLine(&b, v); err != nil {
		return unusable{err}
	}
	if _, err := (&jsonWriter{w: a.stdout}).Write(b.Bytes()); err != nil {
		return unusable{fmt.Errorf("writing the ids: %w", err)}
	}
	return nil
}

// jsonGot says what a --jsonl line holds instead of a JSON string, in
// JSON's terms rather than Go's.
func jsonGot(line []byte, err error) string {
	var te *json.UnmarshalTypeError
	switch {
	case len(bytes.TrimSpace(line)) == 0:
		return "an empty line"
	case errors.As(err, &te):
		return te.Value // "number", "bool", "array", "object"
	}
	return "invalid JSON (" + err.Error() + ")"
}
