package eval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"unicode/utf8"

	"github.com/qins-dev/qins/format"
)

// Limits on the files Eval and `qins eval` read whole into memory. A larger
// file (or one without an end, such as a link to /dev/zero) is refused with
// an error naming it and the limit. Tokenizer files have their own limit,
// 64 MiB: real tokenizer.json files reach about 35 MB.
const (
	// MaxConfigBytes bounds a config.json: REF's, CAND's or
	// Options.Config. Real ones are a few kB.
	MaxConfigBytes = 16 << 20
	// MaxTokensBytes bounds a token file, a JSON array of ids: millions
	// of ids, more than any supported model's max_position_embeddings.
	MaxTokensBytes = 16 << 20
	// MaxTextBytes bounds a text to tokenise: millions of tokens too.
	MaxTextBytes = 16 << 20
)

// ReadFile reads the file at path whole, refusing one larger than limit
// bytes; what names the kind of file in that error ("a config.json"). Its
// errors are *os.PathError, whose Err says what is wrong without the
// path.
func ReadFile(path string, limit int64, what string) ([]byte, error) {
	f, err := format.OpenInput(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: path, Err: err}
	}
	if int64(len(data)) > limit {
		return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("larger than %s, the limit for %s", sizeName(limit), what)}
	}
	return data, nil
}

// ReadText reads a text to tokenise, of at most MaxTextBytes, which must
// be UTF-8, as transformers reads one (Python's open() refuses other
// bytes): an invalid byte is an error naming its offset, not a U+FFFD
// that would change the stream unseen. Its errors are *os.PathError, as
// ReadFile's.
func ReadText(path string) ([]byte, error) {
	b, err := ReadFile(path, MaxTextBytes, "a text")
	if err != nil {
		return nil, err
	}
	if off := invalidUTF8(b); off >= 0 {
		return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("byte %d (0x%02x) is not UTF-8: give UTF-8 text", off, b[off])}
	}
	return b, nil
}

// invalidUTF8 returns the offset of b's first byte that is not valid
// UTF-8, or -1.
func invalidUTF8(b []byte) int {
	if utf8.Valid(b) {
		return -1
	}
	for off := 0; off < len(b); {
		r, n := utf8.DecodeRune(b[off:])
		if r == utf8.RuneError && n == 1 {
			return off
		}
		off += n
	}
	return -1
}

// sizeName writes a limit in MiB when it is a whole number of them.
func sizeName(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// ParseTokens reads a token file: a JSON array whose every element is a
// JSON integer that fits an int (not null, not 1.5, not 1.0). An error
// names the first element that is not one, by its index. Whether the ids
// are in a model's vocabulary is for Eval to check.
func ParseTokens(data []byte) ([]int, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil || raw == nil {
		return nil, errors.New("not a JSON array of token ids")
	}
	ids := make([]int, len(raw))
	for i, r := range raw {
		r = bytes.TrimSpace(r)
		if err := json.Unmarshal(r, &ids[i]); err != nil || bytes.Equal(r, []byte("null")) {
			return nil, fmt.Errorf("element %d is %s, want a token id (a JSON integer)", i, jsonKind(r))
		}
	}
	return ids, nil
}

// jsonKind describes a JSON value for an error: a number as written
// (shortened when long), else its kind.
func jsonKind(r []byte) string {
	switch {
	case len(r) == 0:
		return "empty"
	case r[0] == '-' || r[0] >= '0' && r[0] <= '9':
		if len(r) > 24 {
			return string(r[:24]) + "…"
		}
		return string(r)
	case r[0] == 'n':
		return "null"
	case r[0] == 't' || r[0] == 'f':
		return "a boolean"
	case r[0] == '"':
		return "a string"
	case r[0] == '[':
		return "an array"
	case r[0] == '{':
		return "an object"
	}
	return "not a JSON value"
}
