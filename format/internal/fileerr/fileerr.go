// Package fileerr is the error type of format and format/outfile: an
// error about a file, and the tensor in it, whose message quotes what
// would not print safely on a terminal. format exports it as format.Error.
package fileerr

import (
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error is an error about a file, and the tensor in it when there is one.
type Error struct {
	Path   string
	Tensor string // empty when the error is not about one tensor
	Err    error
}

func (e *Error) Error() string {
	if e.Tensor != "" {
		return fmt.Sprintf("%s: tensor %q: %v", Printable(e.Path), e.Tensor, e.Err)
	}
	return Printable(e.Path) + ": " + e.Err.Error()
}

// Printable returns s as it is when it prints safely on a terminal, and
// quoted as a Go string otherwise: with a control character (a newline,
// a tab, NUL, ESC), a character that does not print, invalid UTF-8, or a
// leading quote, which would make a quoted name ambiguous. Errors and
// tables print names and paths through it, so that a file cannot
// write escape sequences to the terminal or forge rows.
func Printable(s string) string {
	if strings.HasPrefix(s, `"`) || !utf8.ValidString(s) || strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// FromPath turns an *fs.PathError into an *Error, whose message reads
// "path: what is wrong" rather than "open path: what is wrong".
func FromPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return &Error{Path: pe.Path, Err: pe.Err}
	}
	return err
}

// Kind names the type of a file that is not regular, for errors: "a
// FIFO", "a socket"...
func Kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "a special file"
}
