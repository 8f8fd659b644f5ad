package tokenizer

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// field is one decoded protobuf field: val for varint and fixed types,
// data for length-delimited ones.
type field struct {
	num  uint64
	wire int
	val  uint64
	data []byte
}

func (f field) varint() (uint64, error) {
	if f.wire != wireVarint {
		return 0, errors.New("wrong wire type")
	}
	return f.val, nil
}

func (f field) bool() (bool, error) {
	v, err := f.varint()
	return v != 0, err
}

func (f field) str() (string, error) {
	if f.wire != wireBytes {
		return "", errors.New("wrong wire type")
	}
	if !utf8.Valid(f.data) {
		return "", errors.New("string is not UTF-8")
	}
	return string(f.data), nil
}

// readVarint decodes a base-128 varint at the start of b and returns it
// and its length, or length 0 when b ends early or it overflows 64 bits.
func readVarint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		if i == 9 && c > 1 {
			return 0, 0
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// eachField calls fn for each field of a message, checking every length
// against the bytes left, so a hostile file ends in an error, not a panic.
func eachField(b []byte, fn func(field) error) error {
	for off := 0; off < len(b); {
		key, n := readVarint(b[off:])
		if n == 0 {
			return fmt.Errorf("truncated field key at byte %d", off)
		}
		off += n
		f := field{num: key >> 3, wire: int(key & 7)}
		if f.num == 0 {
			return fmt.Errorf("field number 0 at byte %d", off-n)
		}
		switch f.wire {
		case wireVarint:
			f.val, n = readVarint(b[off:])
			if n == 0 {
				return fmt.Errorf("truncated varint at byte %d", off)
			}
		case wireFixed64, wireFixed32:
			n = 8
			if f.wire == wireFixed32 {
				n = 4
			}
			if len(b)-off < n {
				return fmt.Errorf("truncated fixed field at byte %d", off)
			}
			for i := n - 1; i >= 0; i-- {
				f.val = f.val<<8 | uint64(b[off+i])
			}
		case wireBytes:
			l, m := readVarint(b[off:])
			if m == 0 || l > uint64(len(b)-off-m) {
				return fmt.Errorf("length at byte %d runs past the end", off)
			}
			f.data = b[off+m : off+m+int(l)]
			n = m + int(l)
		default:
			return fmt.Errorf("unsupported wire type %d at byte %d", f.wire, off-1)
		}
		off += n
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}
