package eval

import (
	"fmt"
	"io"
	"os"

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

// sizeName writes a limit in MiB when it is a whole number of them.
func sizeName(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
