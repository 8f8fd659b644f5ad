package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// escape writes s with every character that does not print (a control
// character, a newline, DEL, a C1 control, a bidirectional override,
// invalid UTF-8) as a Go escape: the last guard on every message qins
// prints, so that no name that reaches one, quoted or not, writes to the
// terminal or splits the line.
func escape(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r == utf8.RuneError || !unicode.IsPrint(r) }) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r):
			b.WriteString(s[i : i+n])
		default:
			q := strconv.QuoteRune(r) // '\n', '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += n
	}
	return b.String()
}

// jsonWriter passes JSON through, writing each character above ASCII that
// does not print (DEL, C1 controls, bidirectional overrides) as a \u
// escape: encoding/json escapes only the ASCII controls, and a report
// printed on a terminal must not drive it. Such characters can only be
// inside strings, where the escape means the same.
type jsonWriter struct {
	w    io.Writer
	tail []byte // an incomplete UTF-8 sequence, held for the next Write
}

func (j *jsonWriter) Write(p []byte) (int, error) {
	buf := append(j.tail, p...)
	j.tail = nil
	var out []byte
	i := 0
	for i < len(buf) {
		c := buf[i]
		if c < utf8.RuneSelf && c != 0x7f {
			out = append(out, c)
			i++
			continue
		}
		if !utf8.FullRune(buf[i:]) {
			j.tail = append([]byte(nil), buf[i:]...)
			break
		}
		r, n := utf8.DecodeRune(buf[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			out = append(out, buf[i]) // not ours to fix: encoding/json writes valid UTF-8
		case unicode.IsPrint(r):
			out = append(out, buf[i:i+n]...)
		case r > 0xffff:
			hi, lo := utf16Pair(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += n
	}
	if _, err := j.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// utf16Pair returns the surrogate pair of r, above U+FFFF.
func utf16Pair(r rune) (hi, lo rune) {
	r -= 0x10000
	return 0xd800 + r>>10, 0xdc00 + r&0x3ff
}
