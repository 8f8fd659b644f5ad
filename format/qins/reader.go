package qins

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/qins-dev/qins/format"

	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/quant"
)

// Logical is a tensor as the source model had it: either stored unchanged,
// or encoded as codes and signs.
type Logical struct {
	Name  string
	DType dtype.DType // the source dtype
	Shape []uint64
	// Plain is the stored tensor when the tensor is not encoded.
	Plain *format.Tensor
	// Codes and Signs are the stored tensors of an encoded tensor; Signs
	// holds the sign bits in the packed layout, and is nil for the
	// rational codec, whose codes hold the signs.
	Codes, Signs *format.Tensor
	// Codec is the encoded tensor's code, and Alpha the rational codec's
	// parameter; for one alpha per row, at most the smallest of the rows',
	// which are in Ranges.
	Codec  Codec
	Alpha  float64
	Layout Layout
	// Params is the tensor's range; for a per-row tensor, the envelope of
	// its rows' ranges, which are in Ranges.
	Params quant.Params
	// Ranges, for a per-row tensor, is the stored F32 [rows, 2] tensor of
	// the rows' (log_min, log_max), or for the rational codec the F32
	// [rows] tensor of the rows' alphas; nil for one range per tensor.
	Ranges *format.Tensor
}

// RowAlphas reads the alphas of rows [row, row+len(dst)) of a rational
// tensor with one alpha per row into dst, checking each: a valid alpha for
// the source dtype (see quant.CheckRationalAlpha), and not below the
// tensor's alpha, which bounds what every row decodes to. raw is reused
// for the bytes.
func (l *Logical) RowAlphas(row int64, dst []float64, raw *[]byte) error {
	if len(dst) == 0 {
		return nil
	}
	n := 4 * len(dst)
	if cap(*raw) < n {
		*raw = make([]byte, n)
	}
	b := (*raw)[:n]
	if _, err := l.Ranges.Section().ReadAt(b, 4*row); err != nil {
		return &format.Error{Path: l.Ranges.File.Path, Tensor: l.Ranges.Name, Err: err}
	}
	for i := range dst {
		a := float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		err := quant.CheckRationalAlpha(a, l.DType)
		if err == nil && a < l.Alpha {
			err = fmt.Errorf("alpha %v is below the tensor's alpha %v, which must be the least of its rows'", a, l.Alpha)
		}
		if err != nil {
			return &format.Error{Path: l.Ranges.File.Path, Tensor: l.Name, Err: fmt.Errorf("row %d of %s: %v", row+int64(i), l.Ranges.Name, err)}
		}
		dst[i] = a
	}
	return nil
}

// RowRanges reads the ranges of rows [row, row+len(dst)) of a per-row
// tensor into dst, checking each: finite, log_min <= log_max, and
// exp(log_max) finite in the source dtype. raw is reused for the bytes.
func (l *Logical) RowRanges(row int64, dst []quant.Params, raw *[]byte) error {
	if len(dst) == 0 {
		return nil // a read of nothing, even of a tensor of no rows
	}
	n := 8 * len(dst)
	if cap(*raw) < n {
		*raw = make([]byte, n)
	}
	b := (*raw)[:n]
	if _, err := l.Ranges.Section().ReadAt(b, 8*row); err != nil {
		return &format.Error{Path: l.Ranges.File.Path, Tensor: l.Ranges.Name, Err: err}
	}
	for i := range dst {
		p := quant.Params{
			LogMin: float64(math.Float32frombits(binary.LittleEndian.Uint32(b[8*i:]))),
			LogMax: float64(math.Float32frombits(binary.LittleEndian.Uint32(b[8*i+4:]))),
		}
		err := p.Validate()
		if err == nil {
			err = p.CheckFinite(l.DType)
		}
		if err != nil {
			return &format.Error{Path: l.Ranges.File.Path, Tensor: l.Name, Err: fmt.Errorf("row %d of %s: %v", row+int64(i), l.Ranges.Name, err)}
		}
		dst[i] = p
	}
	return nil
}

// ReadCodes reads the codes and signs of elements [off, off+n) of an
// encoded tensor into codes and signs, in the u8+i8 form whatever the
// layout: a packed zero comes back as code 255 with sign 0. scratch is
// reused for the packed bits.
//
// The rational codec and the i8 layout have no signs: they come back as
// +1, which their decoders want, and i8 codes come back as their bytes.
func (l *Logical) ReadCodes(off, n int64, codes []uint8, signs []int8, scratch *[]byte) error {
	codes, signs = codes[:n], signs[:n]
	if _, err := l.Codes.Section().ReadAt(codes, off); err != nil {
		return &format.Error{Path: l.Codes.File.Path, Tensor: l.Codes.Name, Err: err}
	}
	if l.Signs == nil {
		for i := range signs {
			signs[i] = 1
		}
		return nil
	}
	if l.Layout != LayoutPacked {
		if _, err := l.Signs.Section().ReadAt(quant.Int8Bytes(signs), off); err != nil {
			return &format.Error{Path: l.Signs.File.Path, Tensor: l.Signs.Name, Err: err}
		}
		return nil
	}
	first, last := off/8, (off+n+7)/8
	if int64(cap(*scratch)) < last-first {
		*scratch = make([]byte, last-first)
	}
	bits := (*scratch)[:last-first]
	if _, err := l.Signs.Section().ReadAt(bits, first); err != nil {
		return &format.Error{Path: l.Signs.File.Path, Tensor: l.Signs.Name, Err: err}
	}
	return l.unpack(off, n, codes, signs, bits)
}

// MappedCodes is ReadCodes from the files' mappings (see
// format.File.Mapped): the codes and signs of the u8+i8 layout are the
// mapped bytes themselves, read only; those of the packed layout are
// unpacked into buf. It returns ok false, and nothing else, when either
// tensor is not mapped or has no signs.
func (l *Logical) MappedCodes(off, n int64, buf *[]byte) (codes []uint8, signs []int8, ok bool, err error) {
	mc, ms := l.mapped(off, n)
	if mc == nil {
		return nil, nil, false, nil
	}
	if l.Layout != LayoutPacked {
		return mc, quant.Int8s(ms), true, nil
	}
	if int64(cap(*buf)) < 2*n {
		*buf = make([]byte, 2*n)
	}
	codes, signs = (*buf)[:n], quant.Int8s((*buf)[n:2*n])
	copy(codes, mc)
	return codes, signs, true, l.unpack(off, n, codes, signs, ms)
}

// mapped returns the mapped codes of elements [off, off+n) and the mapped
// bytes of their signs (of their sign bits for the packed layout, from
// the byte holding element off's), or nils when either tensor is not
// mapped or there are no signs.
func (l *Logical) mapped(off, n int64) (codes, signs []byte) {
	if l.Signs == nil {
		return nil, nil
	}
	mc, ms := l.Codes.Mapped(), l.Signs.Mapped()
	first, last := off, off+n
	if l.Layout == LayoutPacked {
		first, last = off/8, (off+n+7)/8
	}
	if mc == nil || ms == nil || off+n > int64(len(mc)) || last > int64(len(ms)) {
		return nil, nil
	}
	return mc[off : off+n], ms[first:last]
}

// unpack turns codes, in place, and the sign bits of elements [off,
// off+n) of a packed tensor into codes and signs, checking them.
func (l *Logical) unpack(off, n int64, codes []uint8, signs []int8, bits []byte) error {
	if i := quant.UnpackSigns(codes, bits, int(off%8), signs); i >= 0 {
		return &format.Error{Path: l.Signs.File.Path, Tensor: l.Name, Err: &quant.InvalidError{Index: off + int64(i), What: "an exact zero (code 0) has its sign bit set"}}
	}
	// The bits past the last element pad its byte, and are 0.
	if end := off + n; end == int64(l.Elements()) && end%8 != 0 {
		if pad := bits[len(bits)-1] >> (end % 8); pad != 0 {
			return &format.Error{Path: l.Signs.File.Path, Tensor: l.Name, Err: fmt.Errorf("padding bits of the last sign byte are %#02x, not 0", pad<<(end%8))}
		}
	}
	return nil
}

// StoredBytes returns the bytes l takes in its file: for an encoded
// tensor, its codes, signs and per-row ranges.
func (l *Logical) StoredBytes() uint64 {
	if !l.Encoded() {
		return l.Plain.Bytes()
	}
	n := l.Codes.Bytes()
	if l.Signs != nil {
		n += l.Signs.Bytes()
	}
	if l.Ranges != nil {
		n += l.Ranges.Bytes()
	}
	return n
}

// CheckFinite reports whether every code of the encoded tensor l decodes
// to a finite value in dtype dt.
func (l *Logical) CheckFinite(dt dtype.DType) error {
	if l.Codec == CodecRational {
		return quant.CheckRationalAlpha(l.Alpha, dt)
	}
	return l.Params.CheckFinite(dt)
}

// Encoded reports whether l is stored encoded.
func (l *Logical) Encoded() bool { return l.Codes != nil }

// Elements returns the number of elements.
func (l *Logical) Elements() uint64 { n, _ := format.Elements(l.Shape); return n }

// Logicals returns the tensors of a checkpoint as the source model had
// them, decoding the QINS layout when the metadata marks it, and checking
// that layout. A tensor is encoded exactly when a "qins:NAME" entry says
// so; any other tensor, whatever its name, is stored unchanged. Tensors
// keep the order of their (codes) data.
func Logicals(ctx context.Context, c *format.Checkpoint) ([]Logical, error) {
	out := make([]Logical, 0, len(c.Tensors))
	if !IsQINS(c.Metadata) {
		for i := range c.Tensors {
			t := &c.Tensors[i]
			out = append(out, Logical{Name: t.Name, DType: t.DType, Shape: t.Shape, Plain: t})
		}
		return out, nil
	}
	path := c.Path
	version := c.Metadata[VersionKey]
	if version != Version && version != VersionRows && version != VersionRational && version != VersionRationalRows {
		return nil, &format.Error{Path: path, Err: fmt.Errorf("QINS format version %q is not supported (this qins reads versions %s, %s, %s and %s)", version, Version, VersionRows, VersionRational, VersionRationalRows)}
	}
	if err := checkShards(c); err != nil {
		return nil, err
	}
	byName := make(map[string]int32, len(c.Tensors))
	for i := range c.Tensors {
		byName[c.Tensors[i].Name] = int32(i)
	}
	used := make([]bool, len(c.Tensors))
	// In a fixed order, so that a file with several problems always names
	// the same first.
	var keys []string
	for k := range c.Metadata {
		if strings.HasPrefix(k, ParamsPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		name, v := strings.TrimPrefix(k, ParamsPrefix), c.Metadata[k]
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		l, err := encodedLogical(c, byName, name, v, version)
		if err != nil {
			return nil, &format.Error{Path: metadataFile(c, k), Tensor: name, Err: err}
		}
		used[byName[l.Codes.Name]] = true
		if l.Signs != nil {
			used[byName[l.Signs.Name]] = true
		}
		if l.Ranges != nil {
			used[byName[l.Ranges.Name]] = true
		}
		out = append(out, l)
	}
	for i := range c.Tensors {
		if t := &c.Tensors[i]; !used[i] {
			out = append(out, Logical{Name: t.Name, DType: t.DType, Shape: t.Shape, Plain: t})
		}
	}
	slices.SortFunc(out, func(a, b Logical) int { return compare(a.first(), b.first()) })
	return out, nil
}

// metadataFile returns the file of c whose metadata holds key k: the shard
// to name in an error about it, or c's path.
func metadataFile(c *format.Checkpoint, k string) string {
	if len(c.Files) > 1 {
		for _, f := range c.Files {
			if _, ok := f.Metadata[k]; ok {
				return f.Path
			}
		}
	}
	return c.Path
}

// encodedLogical checks the stored tensors of the encoded tensor name,
// whose "qins:NAME" metadata is meta, against the parts its encoding
// names.
func encodedLogical(c *format.Checkpoint, byName map[string]int32, name, meta, version string) (Logical, error) {
	m, err := ParseEncodedMeta(meta)
	if err != nil {
		return Logical{}, fmt.Errorf("metadata %q: %v", ParamsPrefix+name, err)
	}
	e := m.Encoding
	lookup := func(n string) *format.Tensor {
		if i, ok := byName[n]; ok {
			return &c.Tensors[i]
		}
		return nil
	}
	if e.Codec == CodecRational {
		return rationalLogical(m, lookup, name, version)
	}
	if e.Layout == LayoutI8 {
		return i8Logical(m, lookup, name, version)
	}
	codesSuffix, signsSuffix := e.Suffix(PartCodes), e.Suffix(PartSigns)
	codes, signs := lookup(name+codesSuffix), lookup(name+signsSuffix)
	switch {
	case codes == nil && signs == nil:
		return Logical{}, fmt.Errorf("has metadata but neither %s nor %s", codesSuffix, signsSuffix)
	case codes == nil:
		return Logical{}, fmt.Errorf("has %s but no %s", signsSuffix, codesSuffix)
	case signs == nil:
		return Logical{}, fmt.Errorf("has %s but no %s", codesSuffix, signsSuffix)
	}
	want := e.Stored(PartSigns, name, codes.Shape)
	switch {
	case codes.DType != dtype.U8 || signs.DType != want.DType:
		return Logical{}, fmt.Errorf("codes are %v and signs %v; want U8 and %v", codes.DType, signs.DType, want.DType)
	case e.Layout != LayoutPacked && !slices.Equal(signs.Shape, want.Shape):
		return Logical{}, fmt.Errorf("codes have shape %v but signs %v", codes.Shape, signs.Shape)
	case !slices.Equal(signs.Shape, want.Shape):
		return Logical{}, fmt.Errorf("sign bits have shape %v; %d elements need %v", signs.Shape, codes.Elements(), want.Shape)
	}
	if lookup(name) != nil {
		return Logical{}, errors.New("is stored both encoded and unchanged")
	}
	dt, _ := dtype.Parse(m.DType) // checked by ParseEncodedMeta
	p := quant.Params{LogMin: m.LogMin, LogMax: m.LogMax}
	if err := p.CheckFinite(dt); err != nil {
		return Logical{}, err
	}
	l := Logical{
		Name: name, DType: dt, Shape: codes.Shape,
		Codes: codes, Signs: signs, Layout: e.Layout, Params: p,
	}
	if e.Granularity != GranularityRow {
		return l, nil
	}
	if version != VersionRows {
		return Logical{}, fmt.Errorf("has per-row ranges, which need QINS version %s, not %s", VersionRows, version)
	}
	l.Ranges, err = rowRanges(e, lookup, name, codes.Shape)
	return l, err
}

// rowRanges returns the stored per-row ranges (or alphas) of the tensor
// name of the given shape, encoded so, checked against the part the
// encoding names.
func rowRanges(e Encoding, lookup func(string) *format.Tensor, name string, shape []uint64) (*format.Tensor, error) {
	want := e.Stored(PartRanges, name, shape)
	r := lookup(want.Name)
	if r == nil {
		what := "ranges"
		if e.Codec == CodecRational {
			what = "alphas"
		}
		return nil, fmt.Errorf("has per-row %s but no %s", what, want.Name)
	}
	if r.DType != want.DType || !slices.Equal(r.Shape, want.Shape) {
		return nil, fmt.Errorf("%s is %v %v; want %v %v", r.Name, r.DType, r.Shape, want.DType, want.Shape)
	}
	return r, nil
}

// rationalLogical checks the stored codes of the rational tensor name,
// whose metadata is m.
func rationalLogical(m EncodedMeta, lookup func(string) *format.Tensor, name, version string) (Logical, error) {
	codes, err := oneByteCodes(lookup, name, version, "the rational codec", dtype.U8, "")
	switch {
	case err != nil:
		return Logical{}, err
	case lookup(name) != nil:
		return Logical{}, errors.New("is stored both encoded and unchanged")
	}
	dt, _ := dtype.Parse(m.DType) // checked by ParseEncodedMeta
	if err := quant.CheckRationalAlpha(m.Alpha, dt); err != nil {
		return Logical{}, err
	}
	l := Logical{Name: name, DType: dt, Shape: codes.Shape, Codes: codes, Codec: CodecRational, Alpha: m.Alpha}
	if m.Granularity != GranularityRow {
		return l, nil
	}
	if version != VersionRationalRows {
		return Logical{}, fmt.Errorf("has one alpha per row, which needs QINS version %s, not %s", VersionRationalRows, version)
	}
	l.Ranges, err = rowRanges(m.Encoding, lookup, name, codes.Shape)
	return l, err
}

// oneByteCodes returns the codes of the tensor name stored in one byte per
// weight, as the rational codec and the i8 layout store them (what names
// which), checking the file's version and their dtype.
func oneByteCodes(lookup func(string) *format.Tensor, name, version, what string, dt dtype.DType, where string) (*format.Tensor, error) {
	if version != VersionRational && version != VersionRationalRows {
		return nil, fmt.Errorf("has %s, which needs QINS version %s or %s, not %s", what, VersionRational, VersionRationalRows, version)
	}
	codes := lookup(name + CodesSuffix)
	switch {
	case codes == nil:
		return nil, fmt.Errorf("has metadata but no %s", CodesSuffix)
	case codes.DType != dt:
		return nil, fmt.Errorf("codes are %v; want %v%s", codes.DType, dt, where)
	}
	return codes, nil
}

// i8Logical checks the stored codes of the tensor name in the i8 layout,
// whose metadata is m.
func i8Logical(m EncodedMeta, lookup func(string) *format.Tensor, name, version string) (Logical, error) {
	codes, err := oneByteCodes(lookup, name, version, "the i8 layout", dtype.I8, " in the i8 layout")
	switch {
	case err != nil:
		return Logical{}, err
	case lookup(name) != nil:
		return Logical{}, errors.New("is stored both encoded and unchanged")
	}
	dt, _ := dtype.Parse(m.DType) // checked by ParseEncodedMeta
	p := quant.Params{LogMin: m.LogMin, LogMax: m.LogMax}
	if err := p.CheckFinite(dt); err != nil {
		return Logical{}, err
	}
	l := Logical{Name: name, DType: dt, Shape: codes.Shape, Codes: codes, Layout: LayoutI8, Params: p}
	if m.Granularity != GranularityRow {
		return l, nil
	}
	l.Ranges, err = rowRanges(m.Encoding, lookup, name, codes.Shape)
	return l, err
}

// first returns the stored tensor whose position orders l.
func (l *Logical) first() *format.Tensor {
	if l.Codes != nil {
		return l.Codes
	}
	return l.Plain
}

func compare(t, u *format.Tensor) int {
	if t.File != u.File {
		return strings.Compare(t.File.Path, u.File.Path)
	}
	if c := cmp.Compare(t.Begin, u.Begin); c != 0 {
		return c
	}
	return strings.Compare(t.Name, u.Name)
}
