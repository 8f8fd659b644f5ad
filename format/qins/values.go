package qins

import (
	"encoding/binary"
	"errors"
	"unsafe"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/quant"
)

// Decoder decodes the codes of an encoded tensor, each run of elements
// with its own range: the tensor's, or each row's. It is safe for
// concurrent use.
type Decoder struct {
	l     *Logical
	whole *quant.Decoder
	i8    bool // the i8 layout: each row's decoder is an i8 one
}

// NewDecoder returns the decoder of the encoded tensor l.
func NewDecoder(l *Logical) *Decoder {
	if l.Codec == CodecRational {
		// (with one alpha per row, whole is the tensor's alpha's, for
		// KeyValue, which a per-row tensor does not use)
		return &Decoder{l: l, whole: quant.NewRationalDecoder(l.Alpha)}
	}
	if l.Layout == LayoutI8 {
		return &Decoder{l: l, whole: quant.NewI8Decoder(l.Params), i8: true}
	}
	return &Decoder{l: l, whole: quant.NewDecoder(l.Params)}
}

// DecodeTo decodes the codes and signs of elements [off, off+len(codes))
// into out, in dtype dt.
func (d *Decoder) DecodeTo(dt dtype.DType, off int64, codes []uint8, signs []int8, out []byte) error {
	size := int64(dt.Size())
	return d.eachRow(off, int64(len(codes)), func(q *quant.Decoder, a, b int64) error {
		return q.DecodeTo(dt, codes[a:b], signs[a:b], out[a*size:b*size], off+a)
	})
}

// DecodeF32 decodes the codes and signs of elements [off, off+len(codes))
// into dst, rounded to float32 as a restore to F32 writes them.
func (d *Decoder) DecodeF32(off int64, codes []uint8, signs []int8, dst []float64) error {
	return d.eachRow(off, int64(len(codes)), func(q *quant.Decoder, a, b int64) error {
		return q.DecodeF32(codes[a:b], signs[a:b], dst[a:b], off+a)
	})
}

// eachRow calls fn for each run [a, b) of elements [off, off+m), relative
// to off, that shares one range, with the decoder of that range: once for
// a tensor with one range, once per row for a per-row tensor, each with
// its row's stored range (or alpha). Errors name the file and tensor.
func (d *Decoder) eachRow(off, m int64, fn func(q *quant.Decoder, a, b int64) error) error {
	l := d.l
	if l.Ranges == nil {
		return d.err(fn(d.whole, 0, m))
	}
	n := RowLen(l.Shape)
	if m <= 0 || n <= 0 {
		return nil
	}
	r0, r1 := off/n, (off+m-1)/n
	var ps []quant.Params
	var alphas []float64
	var raw []byte
	var err error
	if l.Codec == CodecRational {
		alphas = make([]float64, r1-r0+1)
		err = l.RowAlphas(r0, alphas, &raw)
	} else {
		ps = make([]quant.Params, r1-r0+1)
		err = l.RowRanges(r0, ps, &raw)
	}
	if err != nil {
		return err
	}
	q := new(quant.Decoder)
	for r := r0; r <= r1; r++ {
		switch {
		case alphas != nil:
			q.ResetRational(alphas[r-r0])
		case d.i8:
			q.ResetI8(ps[r-r0])
		default:
			q.Reset(ps[r-r0])
		}
		if err := fn(q, max(off, r*n)-off, min(off+m, (r+1)*n)-off); err != nil {
			return d.err(err)
		}
	}
	return nil
}

// err names the file and tensor of a decoding error, unless it already
// names them.
func (d *Decoder) err(err error) error {
	var fe *format.Error
	if err == nil || errors.As(err, &fe) {
		return err
	}
	return &format.Error{Path: d.l.Codes.File.Path, Tensor: d.l.Name, Err: err}
}

// Source reads a tensor's values as the source model had them, as float64:
// stored values converted exactly, or encoded values decoded and rounded to
// F32 as a restore writes them. It is safe for concurrent use, each
// goroutine with buffers of its own.
type Source struct {
	l    *Logical
	read func([]byte, []float64)
	dec  *Decoder
	size int
}

// NewSource returns the source of l's values. An encoded tensor whose
// range does not decode to finite F32 values is an error.
func NewSource(l *Logical) (*Source, error) {
	if l.Encoded() {
		// Decoded as an F32 restore writes it, which must be finite.
		if err := l.CheckFinite(dtype.F32); err != nil {
			return nil, &format.Error{Path: l.Codes.File.Path, Tensor: l.Name, Err: errors.New("cannot be decoded to F32: " + err.Error())}
		}
		return &Source{l: l, dec: NewDecoder(l), size: 2}, nil
	}
	read, err := dtype.Reader(l.DType)
	if err != nil {
		return nil, &format.Error{Path: l.Plain.File.Path, Tensor: l.Name, Err: err}
	}
	return &Source{l: l, read: read, size: int(l.DType.Size())}, nil
}

// Encoded reports whether the tensor is stored encoded.
func (s *Source) Encoded() bool { return s.dec != nil }

// BytesOf returns the stored bytes of elements [off, off+m), for
// progress: over the chunks of a tensor they add up to its bytes.
func (s *Source) BytesOf(off, m int64) int64 {
	switch {
	case s.dec == nil:
		return m * int64(s.size)
	case s.l.Signs == nil:
		return m // the rational codec and the i8 layout: the codes alone
	case s.l.Layout == LayoutPacked:
		return m + (off+m+7)/8 - (off+7)/8 // codes, then the sign bits begun
	}
	return 2 * m // codes and signs
}

// Values writes elements [off, off+m) to dst, reading into *raw, and
// returns the stored bytes of a tensor that is not encoded.
func (s *Source) Values(off, m int64, dst []float64, raw *[]byte) ([]byte, error) {
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
			return nil, s.l.Plain.Err(err)
		}
		s.read(b, dst[:m])
		return b, nil
	}
	codes, signs, bits := b[:m], b[m:2*m], b[2*m:]
	if err := s.l.ReadCodes(off, m, codes, quant.Int8s(signs), &bits); err != nil {
		return nil, err
	}
	return nil, s.dec.DecodeF32(off, codes, quant.Int8s(signs), dst[:m])
}

// Keys reads elements [off, off+m) as 16-bit keys, equal keys being equal
// values: the stored bit patterns of a 16-bit float tensor, or code |
// uint8(sign)<<8 of an encoded one (sign +1 for the rational codec, whose
// code alone is the value). A 16-bit tensor is read straight
// into dst.
func (s *Source) Keys(off, m int64, dst []uint16, raw *[]byte) error {
	dst = dst[:m]
	if s.dec == nil {
		b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 2*m)
		if _, err := s.l.Plain.Section().ReadAt(b, off*2); err != nil {
			return s.l.Plain.Err(err)
		}
		if !nativeLittleEndian {
			for i := range dst {
				dst[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
			}
		}
		return nil
	}
	codes, signs, err := s.Codes(off, m, raw)
	if err != nil {
		return err
	}
	interleave(dst, codes, signs)
	return nil
}

// Codes reads the codes and signs of elements [off, off+m) of an encoded
// tensor into *raw, the signs in the u8+i8 form whatever the layout.
func (s *Source) Codes(off, m int64, raw *[]byte) (codes, signs []byte, err error) {
	need := 2*int(m) + int(m)/8 + 2
	if cap(*raw) < need {
		*raw = make([]byte, need)
	}
	b := (*raw)[:need]
	codes, signs, bits := b[:m], b[m:2*m], b[2*m:]
	if err := s.l.ReadCodes(off, m, codes, quant.Int8s(signs), &bits); err != nil {
		return nil, nil, err
	}
	return codes, signs, nil
}

// KeyValue returns the value Values reads for key k (see Keys), found
// first at flat index idx; an encoded key that no encoder writes is an
// error. A per-row tensor has no keys.
func (s *Source) KeyValue(k uint16, idx int64) (float64, error) {
	var v [1]float64
	if s.dec == nil {
		s.read([]byte{byte(k), byte(k >> 8)}, v[:])
		return v[0], nil
	}
	err := s.dec.whole.DecodeF32([]uint8{uint8(k)}, []int8{int8(uint8(k >> 8))}, v[:], idx)
	return v[0], s.dec.err(err)
}

// interleave sets dst[i] to codes[i] | signs[i]<<8.
func interleave(dst []uint16, codes, signs []byte) {
	i := 0
	if nativeLittleEndian {
		le := binary.LittleEndian
		db := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), 2*len(dst))
		for ; i+8 <= len(dst); i += 8 {
			c, sg, out := le.Uint64(codes[i:i+8]), le.Uint64(signs[i:i+8]), db[2*i:2*i+16]
			le.PutUint64(out[:8], spread(uint32(c))|spread(uint32(sg))<<8)
			le.PutUint64(out[8:], spread(uint32(c>>32))|spread(uint32(sg>>32))<<8)
		}
	}
	for ; i < len(dst); i++ {
		dst[i] = uint16(codes[i]) | uint16(signs[i])<<8
	}
}

// spread moves the four bytes of x to the low bytes of four 16-bit lanes.
func spread(x uint32) uint64 {
	t := uint64(x)
	t = (t | t<<16) & 0x0000ffff0000ffff
	return (t | t<<8) & 0x00ff00ff00ff00ff
}

// nativeLittleEndian reports whether uint16s are stored as safetensors
// stores them, so that bytes read from a file can be used as they are.
var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// Tabled reports whether EachRun can give the tensor's elements: an
// encoded tensor of the log codec with signs (the u8+i8 and packed
// layouts), whatever its granularity.
func (s *Source) Tabled() bool {
	return s.dec != nil && s.l.Codec == CodecLog && s.l.Signs != nil && !s.dec.i8
}

// EachRun reads the codes and signs of elements [off, off+m) of a tensor
// that is Tabled into *raw, and calls fn for each run of them that shares
// one range (the whole chunk, or each row's part of it), a being the
// run's first element relative to off, with the table that decodes them
// as Values does (see quant.Decoder.TableF32), built in *tab for a
// per-row tensor. fn may be called with an invalid code or sign; Values
// reports it.
func (s *Source) EachRun(off, m int64, raw *[]byte, tab *[3][256]float64, fn func(tab *[3][256]float64, codes []uint8, signs []int8, a int64)) error {
	codes, signs, err := s.Codes(off, m, raw)
	if err != nil {
		return err
	}
	if s.l.Ranges == nil {
		fn(s.dec.whole.TableF32(), codes, quant.Int8s(signs), 0)
		return nil
	}
	return s.eachRow(off, m, func(p quant.Params, a, b int64) {
		p.TableF32(tab)
		fn(tab, codes[a:b], quant.Int8s(signs[a:b]), a)
	})
}

// eachRow calls fn with the range of each row that elements [off, off+m)
// of a per-row tensor cross, and the part [a, b) of the chunk in it,
// relative to off.
func (s *Source) eachRow(off, m int64, fn func(p quant.Params, a, b int64)) error {
	n := RowLen(s.l.Shape)
	if m <= 0 || n <= 0 {
		return nil
	}
	r0, r1 := off/n, (off+m-1)/n
	ps := make([]quant.Params, r1-r0+1)
	var scratch []byte
	if err := s.l.RowRanges(r0, ps, &scratch); err != nil {
		return s.dec.err(err)
	}
	for r := r0; r <= r1; r++ {
		fn(ps[r-r0], max(off, r*n)-off, min(off+m, (r+1)*n)-off)
	}
	return nil
}

// EachRange is EachRun giving each run's range parameters rather than a
// table, for kernels that build their own (see quant.Params.MagnitudesF32),
// and the codes and signs from the file's mapping where there is one
// (see Logical.MappedCodes), which fn must not write to.
func (s *Source) EachRange(off, m int64, raw *[]byte, fn func(p quant.Params, codes []uint8, signs []int8, a int64)) error {
	l := s.l
	codes, signs, ok, err := l.MappedCodes(off, m, raw)
	if err != nil {
		return err
	}
	if !ok {
		c, sg, err := s.Codes(off, m, raw)
		if err != nil {
			return err
		}
		codes, signs = c, quant.Int8s(sg)
	}
	if l.Ranges == nil {
		fn(l.Params, codes, signs, 0)
		return nil
	}
	return s.eachRow(off, m, func(p quant.Params, a, b int64) {
		fn(p, codes[a:b], signs[a:b], a)
	})
}

// EachPackedRange is EachRange for a tensor of the packed layout that is
// mapped from its file: fn gets the codes and the sign bits as stored,
// read only, element i's bit being bit bitOff+i of bits (least
// significant first), set for a negative value, and code 0 an exact zero
// (whose bit must be clear; fn is to check). It returns false, calling
// nothing, when the tensor is not packed or not mapped, or when the
// padding bits of its last byte, in the chunk, are set: ReadCodes reports
// that.
func (s *Source) EachPackedRange(off, m int64, fn func(p quant.Params, codes []uint8, bits []byte, bitOff int, a int64)) (bool, error) {
	l := s.l
	if l.Layout != LayoutPacked || m <= 0 {
		return false, nil
	}
	codes, bits := l.mapped(off, m)
	if codes == nil {
		return false, nil
	}
	if end := off + m; end == int64(l.Elements()) && end%8 != 0 && bits[len(bits)-1]>>(end%8) != 0 {
		return false, nil
	}
	if l.Ranges == nil {
		fn(l.Params, codes, bits, int(off%8), 0)
		return true, nil
	}
	err := s.eachRow(off, m, func(p quant.Params, a, b int64) {
		fn(p, codes[a:b], bits, int(off%8+a), a)
	})
	return err == nil, err
}

// Release gives back the resident pages of the mapped bytes of elements
// [off, off+m), once read (see format.File.Release): their stored bytes,
// or their codes and sign bytes.
func (s *Source) Release(off, m int64) {
	l := s.l
	if !l.Encoded() {
		if b := l.Plain.Mapped(); (off+m)*int64(s.size) <= int64(len(b)) {
			l.Plain.File.Release(b[off*int64(s.size) : (off+m)*int64(s.size)])
		}
		return
	}
	if c := l.Codes.Mapped(); off+m <= int64(len(c)) {
		l.Codes.File.Release(c[off : off+m])
	}
	if l.Signs == nil {
		return
	}
	first, last := off, off+m
	if l.Layout == LayoutPacked {
		first, last = off/8, (off+m+7)/8
	}
	if sg := l.Signs.Mapped(); last <= int64(len(sg)) {
		l.Signs.File.Release(sg[first:last])
	}
}

// Raw returns the stored bytes of elements [off, off+m) of a tensor that
// is not encoded: the file's mapped bytes where it is mapped (which the
// caller must not write to), else read into *raw.
func (s *Source) Raw(off, m int64, raw *[]byte) ([]byte, error) {
	if b := s.l.Plain.Mapped(); b != nil && (off+m)*int64(s.size) <= int64(len(b)) {
		// The mapped bytes themselves: no copy.
		return b[off*int64(s.size) : (off+m)*int64(s.size)], nil
	}
	need := int(m) * s.size
	if cap(*raw) < need {
		*raw = make([]byte, need)
	}
	b := (*raw)[:need]
	if _, err := s.l.Plain.Section().ReadAt(b, off*int64(s.size)); err != nil {
		return nil, s.l.Plain.Err(err)
	}
	return b, nil
}
