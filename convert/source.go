package convert

import (
	"fmt"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

// source reads a logical tensor's values as float64: stored values
// converted exactly, or encoded values decoded and rounded to F32.
type source struct {
	l    *qins.Logical
	read func([]byte, []float64)
	dec  *quant.Decoder
	size int
}

func newSource(l *qins.Logical) (*source, error) {
	if l.Encoded() {
		// Decoded as an F32 restore writes it, which must be finite.
		if err := l.Params.CheckFinite(dtype.F32); err != nil {
			return nil, &format.Error{Path: l.Codes.File.Path, Tensor: l.Name, Err: fmt.Errorf("cannot be decoded to F32: %v", err)}
		}
		return &source{l: l, dec: quant.NewDecoder(l.Params), size: 2}, nil
	}
	read, err := quant.Reader(l.DType)
	if err != nil {
		return nil, &format.Error{Path: l.Plain.File.Path, Tensor: l.Name, Err: err}
	}
	return &source{l: l, read: read, size: int(l.DType.Size())}, nil
}

// bytesOf returns the stored bytes of elements [off, off+m), for
// progress: over the chunks of a tensor they add up to its bytes.
func (s *source) bytesOf(off, m int64) int64 {
	switch {
	case s.dec == nil:
		return m * int64(s.size)
	case s.l.Layout == qins.LayoutPacked:
		return m + (off+m+7)/8 - (off+7)/8 // codes, then the sign bits begun
	}
	return 2 * m // codes and signs
}

// values writes elements [off, off+m) to dst, reading into *raw, and
// returns the stored bytes of a plain tensor.
func (s *source) values(off, m int64, dst []float64, raw *[]byte) ([]byte, error) {
	need := int(m) * s.size
	if s.dec != nil {
		need += int(m)/8 + 2 // room for packed sign bits
	}
	if cap(*raw) < need {
		*raw = make([]byte, need)
	}
	b := (*raw)[:need]
	if s.dec == nil {
		if _, err := s.l.Plain.Section().ReadAt(b, off*int64(s.size)); err != nil {
			return nil, tensorErr(*s.l.Plain, err)
		}
		s.read(b, dst[:m])
		return b, nil
	}
	codes, signs, bits := b[:m], b[m:2*m], b[2*m:]
	if err := s.l.ReadCodes(off, m, codes, quant.Int8s(signs), &bits); err != nil {
		return nil, err
	}
	// Rounded to float32, as restore writes it.
	err := eachRow(s.l, s.dec, off, m, func(d *quant.Decoder, a, b int64) error {
		return d.DecodeF32(codes[a:b], quant.Int8s(signs[a:b]), dst[a:b], off+a)
	})
	if err != nil {
		return nil, decodeErr(s.l, err)
	}
	return nil, nil
}
