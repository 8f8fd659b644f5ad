package format

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads the JSON of a header token by token, strictly: keys are
// compared byte for byte (encoding/json would fold their case), strings
// must be valid UTF-8 without lone surrogates, and it builds no generic
// values, so that a header costs memory in proportion to what it
// describes, not to the maps and interfaces a generic decoder makes.
type scanner struct {
	b   []byte
	pos int
	buf []byte // scratch for a string with escapes
}

// errSyntax is wrapped by every error about the JSON itself.
var errSyntax = errors.New("not valid JSON")

func (s *scanner) syntax(what string) error {
	return fmt.Errorf("%w: %s at byte %d", errSyntax, what, s.pos)
}

// next skips white space and returns the next byte, or 0 at the end.
func (s *scanner) next() byte {
	for s.pos < len(s.b) {
		switch c := s.b[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c
		}
	}
	return 0
}

// eat consumes c, the next byte after white space, and reports whether it
// was there.
func (s *scanner) eat(c byte) bool {
	if s.next() == c {
		s.pos++
		return true
	}
	return false
}

// literal consumes the word w (such as null) if it comes next.
func (s *scanner) literal(w string) bool {
	s.next()
	if len(s.b)-s.pos >= len(w) && string(s.b[s.pos:s.pos+len(w)]) == w {
		s.pos += len(w)
		return true
	}
	return false
}

// str reads a string and returns its bytes, unescaped. They alias the
// input or a scratch buffer: valid until the next call.
func (s *scanner) str() ([]byte, error) {
	if !s.eat('"') {
		return nil, s.syntax("expected a string")
	}
	start := s.pos
	for s.pos < len(s.b) {
		switch c := s.b[s.pos]; {
		case c == '"':
			b := s.b[start:s.pos]
			s.pos++
			if !utf8.Valid(b) {
				return nil, s.syntax("string is not valid UTF-8")
			}
			return b, nil
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			return nil, s.syntax("control character in a string")
		}
		s.pos++
	}
	return nil, s.syntax("unterminated string")
}

// escaped finishes a string that starts at start and has an escape at
// s.pos, unescaping into the scratch buffer.
func (s *scanner) escaped(start int) ([]byte, error) {
	out := append(s.buf[:0], s.b[start:s.pos]...)
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		switch {
		case c == '"':
			s.pos++
			s.buf = out
			if !utf8.Valid(out) {
				return nil, s.syntax("string is not valid UTF-8")
			}
			return out, nil
		case c < 0x20:
			return nil, s.syntax("control character in a string")
		case c != '\\':
			out = append(out, c)
			s.pos++
			continue
		}
		if s.pos+1 >= len(s.b) {
			break
		}
		e := s.b[s.pos+1]
		s.pos += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, s.syntax(`bad \u escape`)
			}
			if utf16.IsSurrogate(r) {
				var r2 rune
				if s.pos+1 < len(s.b) && s.b[s.pos] == '\\' && s.b[s.pos+1] == 'u' {
					s.pos += 2
					r2, ok = s.hex4()
				} else {
					ok = false
				}
				if r = utf16.DecodeRune(r, r2); !ok || r == utf8.RuneError {
					return nil, s.syntax("lone surrogate in a string")
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, s.syntax("bad escape in a string")
		}
	}
	return nil, s.syntax("unterminated string")
}

func (s *scanner) hex4() (rune, bool) {
	if len(s.b)-s.pos < 4 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.b[s.pos:s.pos+4]), 16, 16)
	s.pos += 4
	return rune(v), err == nil
}

// number returns the text of a JSON number.
func (s *scanner) number() ([]byte, error) {
	s.next()
	start := s.pos
	digits := func() int {
		n := 0
		for s.pos < len(s.b) && s.b[s.pos] >= '0' && s.b[s.pos] <= '9' {
			s.pos++
			n++
		}
		return n
	}
	if s.pos < len(s.b) && s.b[s.pos] == '-' {
		s.pos++
	}
	lead := s.pos
	if n := digits(); n == 0 || (n > 1 && s.b[lead] == '0') {
		return nil, s.syntax("expected a number")
	}
	if s.pos < len(s.b) && s.b[s.pos] == '.' {
		s.pos++
		if digits() == 0 {
			return nil, s.syntax("bad number")
		}
	}
	if s.pos < len(s.b) && (s.b[s.pos] == 'e' || s.b[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.b) && (s.b[s.pos] == '+' || s.b[s.pos] == '-') {
			s.pos++
		}
		if digits() == 0 {
			return nil, s.syntax("bad number")
		}
	}
	return s.b[start:s.pos], nil
}

// natural reads a JSON number that must be an integer in [0, 2^64).
// A syntax error wraps errSyntax; any other error describes the number.
func (s *scanner) natural() (uint64, error) {
	num, err := s.number()
	if err != nil {
		return 0, err
	}
	if num[0] == '-' {
		return 0, fmt.Errorf("%s is negative", num)
	}
	v, err := strconv.ParseUint(string(num), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s is not an integer that fits 64 bits", num)
	}
	return v, nil
}

// float reads a JSON number as a float64; a number beyond float64's range
// is an error, not an infinity.
func (s *scanner) float() (float64, error) {
	num, err := s.number()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return 0, fmt.Errorf("%s is out of the range of a float64", num)
	}
	return v, nil
}

// more reports whether an object or array has another member: it consumes
// the comma before it, or the closing byte at its end. first is true
// before the first member.
func (s *scanner) more(first bool, end byte) (bool, error) {
	if s.eat(end) {
		return false, nil
	}
	if !first && !s.eat(',') {
		return false, s.syntax(fmt.Sprintf("expected ',' or '%c'", end))
	}
	return true, nil
}

// key reads an object key and the colon after it.
func (s *scanner) key() ([]byte, error) {
	k, err := s.str()
	if err != nil {
		return nil, err
	}
	if !s.eat(':') {
		return nil, s.syntax("expected ':'")
	}
	return k, nil
}

// end checks that nothing but white space is left.
func (s *scanner) end() bool { return s.next() == 0 && s.pos == len(s.b) }
