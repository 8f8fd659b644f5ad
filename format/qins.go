package format

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/nlpodyssey/safetensors"

	"github.com/qins-dev/qins/quant"
)

// The QINS layout inside a safetensors file. For each encoded tensor NAME:
// NAME.qins (U8, the source shape) holds the codes, NAME.sign (I8, the
// source shape) the signs, and __metadata__["qins:NAME"] a JSON object with
// log_min, log_max and the source dtype. __metadata__["qins"] holds the
// format version. Every other tensor is stored as it was.
const (
	VersionKey     = "qins"
	Version        = "1"
	ParamsPrefix   = "qins:"
	CodesSuffix    = ".qins"
	SignsSuffix    = ".sign"
	SignBitsSuffix = ".signbits"
	// RangesSuffix names the F32 [rows, 2] tensor of a per-row tensor's
	// ranges: (log_min, log_max) per row, a row being a run of the last
	// dimension.
	RangesSuffix = ".logrange"
	// VersionRows is the format version of a file with per-row ranges:
	// version 1 plus them, so that version-1 readers refuse it.
	VersionRows = "2"
)

// The granularities of the log range: one per tensor (the default), or one
// per row, stored in NAME.logrange.
const (
	GranularityTensor = "tensor"
	GranularityRow    = "row"
)

// The layouts of an encoded tensor. In LayoutU8I8 (the default) the codes
// are 1..255 and the signs an I8 tensor of the source shape. In
// LayoutPacked the codes are 0 for an exact zero and 1..255 otherwise, and
// NAME.signbits, U8 of shape [ceil(n/8)], holds one bit per element, least
// significant bit first, set when the element is negative: 1.125 bytes per
// element instead of 2. Both decode to the same values.
const (
	LayoutU8I8   = "u8+i8"
	LayoutPacked = "packed"
)

// EncodedMeta is the JSON stored under "qins:NAME".
type EncodedMeta struct {
	LogMin float64 `json:"log_min"`
	LogMax float64 `json:"log_max"`
	DType  string  `json:"dtype"`
	// Layout is LayoutPacked, or empty for LayoutU8I8.
	Layout string `json:"layout,omitempty"`
	// Range is RangeMSE when log_min was chosen for accuracy, or empty for
	// the min/max range. Decoding does not depend on it.
	Range string `json:"range,omitempty"`
	// Granularity is GranularityRow when each row has its own range, in
	// NAME.logrange; LogMin and LogMax are then the smallest log_min and
	// the largest log_max of the rows. Empty means GranularityTensor.
	Granularity string `json:"granularity,omitempty"`
}

// The ways log_min is chosen: the min/max range of the formula, or the
// log_min that minimises the squared error (log_max stays the maximum).
const (
	RangeMinMax = "minmax"
	RangeMSE    = "mse"
)

// MarshalEncodedMeta renders the metadata value of an encoded tensor. The
// numbers are written in their shortest form that reads back exactly.
func MarshalEncodedMeta(p quant.Params, dt safetensors.DType, layout, rng, granularity string) string {
	m := EncodedMeta{LogMin: p.LogMin, LogMax: p.LogMax, DType: dt.String()}
	if granularity == GranularityRow {
		m.Granularity = granularity
	}
	if layout == LayoutPacked {
		m.Layout = layout
	}
	if rng == RangeMSE {
		m.Range = rng
	}
	js, _ := json.Marshal(m)
	return string(js)
}

// SignBytes returns the size of the sign bits of n elements in the packed
// layout.
func SignBytes(n uint64) uint64 { return (n + 7) / 8 }

// EncodedMetaSlack bounds how many bytes an encoded tensor's final log_min
// and log_max can add to its header entry over placeholders of 0: a writer
// that only knows them after the data reserves this much per tensor.
const EncodedMetaSlack = 64

// IsQINS reports whether a file's metadata marks it as a QINS file.
func IsQINS(metadata map[string]string) bool {
	_, ok := metadata[VersionKey]
	return ok
}

// Logical is a tensor as the source model had it: either stored unchanged,
// or encoded as codes and signs.
type Logical struct {
	Name  string
	DType safetensors.DType // the source dtype
	Shape []uint64
	// Plain is the stored tensor when the tensor is not encoded.
	Plain *Tensor
	// Codes and Signs are the stored tensors of an encoded tensor; Signs
	// holds the sign bits in the packed layout.
	Codes, Signs *Tensor
	Layout       string // LayoutU8I8 or LayoutPacked
	// Params is the tensor's range; for a per-row tensor, the envelope of
	// its rows' ranges, which are in Ranges.
	Params quant.Params
	// Ranges, for a per-row tensor, is the stored F32 [rows, 2] tensor of
	// the rows' (log_min, log_max); nil for one range per tensor.
	Ranges *Tensor
}

// RowLen returns the elements per row: the last dimension (1 for a
// scalar).
func (l *Logical) RowLen() int64 {
	if len(l.Shape) == 0 {
		return 1
	}
	return int64(l.Shape[len(l.Shape)-1])
}

// Rows returns the number of rows: the product of all dimensions but the
// last.
func (l *Logical) Rows() int64 {
	n := int64(1)
	for i := 0; i+1 < len(l.Shape); i++ {
		n *= int64(l.Shape[i])
	}
	return n
}

// RowRanges reads the ranges of rows [row, row+len(dst)) of a per-row
// tensor into dst, checking each: finite, log_min <= log_max, and
// exp(log_max) finite in the source dtype. raw is reused for the bytes.
func (l *Logical) RowRanges(row int64, dst []quant.Params, raw *[]byte) error {
	n := 8 * len(dst)
	if cap(*raw) < n {
		*raw = make([]byte, n)
	}
	b := (*raw)[:n]
	if _, err := l.Ranges.Section().ReadAt(b, 8*row); err != nil {
		return &Error{Path: l.Ranges.File.Path, Tensor: l.Ranges.Name, Err: err}
	}
	limit := math.Log(quant.MaxFinite(l.DType))
	for i := range dst {
		p := quant.Params{
			LogMin: float64(math.Float32frombits(binary.LittleEndian.Uint32(b[8*i:]))),
			LogMax: float64(math.Float32frombits(binary.LittleEndian.Uint32(b[8*i+4:]))),
		}
		err := p.Validate()
		if err == nil && p.LogMax > limit {
			err = fmt.Errorf("log_max %v decodes beyond %v", p.LogMax, l.DType)
		}
		if err != nil {
			return &Error{Path: l.Ranges.File.Path, Tensor: l.Name, Err: fmt.Errorf("row %d of %s: %v", row+int64(i), l.Ranges.Name, err)}
		}
		dst[i] = p
	}
	return nil
}

// ReadCodes reads the codes and signs of elements [off, off+n) of an
// encoded tensor into codes and signs, in the u8+i8 form whatever the
// layout: a packed zero comes back as code 255 with sign 0. scratch is
// reused for the packed bits.
func (l *Logical) ReadCodes(off, n int64, codes []uint8, signs []int8, scratch *[]byte) error {
	codes, signs = codes[:n], signs[:n]
	if _, err := l.Codes.Section().ReadAt(codes, off); err != nil {
		return &Error{Path: l.Codes.File.Path, Tensor: l.Codes.Name, Err: err}
	}
	if l.Layout != LayoutPacked {
		if _, err := l.Signs.Section().ReadAt(quant.Int8Bytes(signs), off); err != nil {
			return &Error{Path: l.Signs.File.Path, Tensor: l.Signs.Name, Err: err}
		}
		return nil
	}
	first, last := off/8, (off+n+7)/8
	if int64(cap(*scratch)) < last-first {
		*scratch = make([]byte, last-first)
	}
	bits := (*scratch)[:last-first]
	if _, err := l.Signs.Section().ReadAt(bits, first); err != nil {
		return &Error{Path: l.Signs.File.Path, Tensor: l.Signs.Name, Err: err}
	}
	quant.UnpackSigns(codes, bits, int(off%8), signs)
	return nil
}

// Encoded reports whether l is stored encoded.
func (l *Logical) Encoded() bool { return l.Codes != nil }

// Elements returns the number of elements.
func (l *Logical) Elements() uint64 { n, _ := Elements(l.Shape); return n }

// Logicals returns the tensors of a checkpoint as the source model had
// them, decoding the QINS layout when the metadata marks it, and checking
// that layout. Tensors keep the order of their (codes) data.
func Logicals(c *Checkpoint) ([]Logical, error) {
	qinsFile := IsQINS(c.Metadata)
	if !qinsFile {
		out := make([]Logical, len(c.Tensors))
		for i := range c.Tensors {
			t := &c.Tensors[i]
			out[i] = Logical{Name: t.Name, DType: t.DType, Shape: t.Shape, Plain: t}
		}
		return out, nil
	}
	path := c.Path
	version := c.Metadata[VersionKey]
	if version != Version && version != VersionRows {
		return nil, &Error{Path: path, Err: fmt.Errorf("QINS format version %q is not supported (this qins reads versions %s and %s)", version, Version, VersionRows)}
	}
	if err := checkShards(c); err != nil {
		return nil, err
	}
	byName := make(map[string]*Tensor, len(c.Tensors))
	for i := range c.Tensors {
		byName[c.Tensors[i].Name] = &c.Tensors[i]
	}
	// Every qins:NAME entry names an encoded tensor.
	encoded := make(map[string]EncodedMeta)
	for k, v := range c.Metadata {
		name, ok := strings.CutPrefix(k, ParamsPrefix)
		if !ok {
			continue
		}
		m, err := parseEncodedMeta(v)
		if err != nil {
			return nil, &Error{Path: path, Tensor: name, Err: fmt.Errorf("metadata %q: %v", k, err)}
		}
		encoded[name] = m
	}
	used := make(map[string]bool)
	var out []Logical
	for name, m := range encoded {
		signsSuffix, signsDType := SignsSuffix, safetensors.I8
		if m.Layout == LayoutPacked {
			signsSuffix, signsDType = SignBitsSuffix, safetensors.U8
		}
		codes, signs := byName[name+CodesSuffix], byName[name+signsSuffix]
		switch {
		case codes == nil && signs == nil:
			return nil, &Error{Path: path, Tensor: name, Err: fmt.Errorf("has metadata but neither %s nor %s", CodesSuffix, signsSuffix)}
		case codes == nil:
			return nil, &Error{Path: path, Tensor: name, Err: fmt.Errorf("has %s but no %s", signsSuffix, CodesSuffix)}
		case signs == nil:
			return nil, &Error{Path: path, Tensor: name, Err: fmt.Errorf("has %s but no %s", CodesSuffix, signsSuffix)}
		case codes.DType != safetensors.U8 || signs.DType != signsDType:
			return nil, &Error{Path: path, Tensor: name, Err: fmt.Errorf("codes are %v and signs %v; want U8 and %v", codes.DType, signs.DType, signsDType)}
		case m.Layout != LayoutPacked && !SameShape(codes.Shape, signs.Shape):
			return nil, &Error{Path: path, Tensor: name, Err: fmt.Errorf("codes have shape %v but signs %v", codes.Shape, signs.Shape)}
		case m.Layout == LayoutPacked && !SameShape(signs.Shape, []uint64{SignBytes(codes.Elements())}):
			return nil, &Error{Path: path, Tensor: name, Err: fmt.Errorf("sign bits have shape %v; %d elements need [%d]", signs.Shape, codes.Elements(), SignBytes(codes.Elements()))}
		}
		if _, clash := byName[name]; clash {
			return nil, &Error{Path: path, Tensor: name, Err: errors.New("is stored both encoded and unchanged")}
		}
		dt, _ := safetensors.ParseDType(m.DType) // checked by parseEncodedMeta
		used[codes.Name], used[signs.Name] = true, true
		layout := m.Layout
		if layout == "" {
			layout = LayoutU8I8
		}
		l := Logical{
			Name: name, DType: dt, Shape: codes.Shape,
			Codes: codes, Signs: signs, Layout: layout,
			Params: quant.Params{LogMin: m.LogMin, LogMax: m.LogMax},
		}
		if err := l.findRanges(path, version, m, byName); err != nil {
			return nil, err
		}
		if l.Ranges != nil {
			used[l.Ranges.Name] = true
		}
		out = append(out, l)
	}
	for i := range c.Tensors {
		t := &c.Tensors[i]
		if used[t.Name] {
			continue
		}
		for _, suf := range []string{CodesSuffix, SignsSuffix, SignBitsSuffix, RangesSuffix} {
			if base, ok := strings.CutSuffix(t.Name, suf); ok && (t.DType == safetensors.U8 || t.DType == safetensors.I8 || t.DType == safetensors.F32) {
				if _, enc := encoded[base]; !enc {
					return nil, &Error{Path: path, Tensor: base, Err: fmt.Errorf("has %s but no %q metadata", t.Name, ParamsPrefix+base)}
				}
			}
		}
		out = append(out, Logical{Name: t.Name, DType: t.DType, Shape: t.Shape, Plain: t})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].first().less(out[j].first()) })
	return out, nil
}

// findRanges sets l.Ranges for a per-row tensor, checking its dtype and
// shape, and that the file's version has per-row ranges.
func (l *Logical) findRanges(path, version string, m EncodedMeta, byName map[string]*Tensor) error {
	r := byName[l.Name+RangesSuffix]
	if m.Granularity != GranularityRow {
		if r != nil {
			return &Error{Path: path, Tensor: l.Name, Err: fmt.Errorf("has %s but its metadata has no \"granularity\": %q", r.Name, GranularityRow)}
		}
		return nil
	}
	if version != VersionRows {
		return &Error{Path: path, Tensor: l.Name, Err: fmt.Errorf("has per-row ranges, which need QINS version %s, not %s", VersionRows, version)}
	}
	if r == nil {
		return &Error{Path: path, Tensor: l.Name, Err: fmt.Errorf("has per-row ranges but no %s", l.Name+RangesSuffix)}
	}
	if want := []uint64{uint64(l.Rows()), 2}; r.DType != safetensors.F32 || !SameShape(r.Shape, want) {
		return &Error{Path: path, Tensor: l.Name, Err: fmt.Errorf("%s is %v %v; want F32 %v", r.Name, r.DType, r.Shape, want)}
	}
	l.Ranges = r
	return nil
}

// first returns the stored tensor whose position orders l.
func (l *Logical) first() *Tensor {
	if l.Codes != nil {
		return l.Codes
	}
	return l.Plain
}

func (t *Tensor) less(u *Tensor) bool {
	if t.File != u.File {
		return t.File.Path < u.File.Path
	}
	return t.Begin < u.Begin || (t.Begin == u.Begin && t.Name < u.Name)
}

func parseEncodedMeta(v string) (EncodedMeta, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(v), &raw); err != nil || raw == nil {
		return EncodedMeta{}, errors.New("is not a JSON object")
	}
	var m EncodedMeta
	for _, k := range []string{"log_min", "log_max", "dtype"} {
		if _, ok := raw[k]; !ok {
			return m, fmt.Errorf("lacks %q", k)
		}
	}
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return m, fmt.Errorf("is malformed: %v", err)
	}
	if err := (quant.Params{LogMin: m.LogMin, LogMax: m.LogMax}).Validate(); err != nil {
		return m, err
	}
	if dt, err := safetensors.ParseDType(m.DType); err != nil || !quant.IsFloat(dt) {
		return m, fmt.Errorf("dtype %q is not F16, BF16, F32 or F64", m.DType)
	}
	if m.Layout != "" && m.Layout != LayoutU8I8 && m.Layout != LayoutPacked {
		return m, fmt.Errorf("layout %q is not %q or %q", m.Layout, LayoutU8I8, LayoutPacked)
	}
	if m.Range != "" && m.Range != RangeMinMax && m.Range != RangeMSE {
		return m, fmt.Errorf("range %q is not %q or %q", m.Range, RangeMinMax, RangeMSE)
	}
	if m.Granularity != "" && m.Granularity != GranularityTensor && m.Granularity != GranularityRow {
		return m, fmt.Errorf("granularity %q is not %q or %q", m.Granularity, GranularityTensor, GranularityRow)
	}
	return m, nil
}

// SameShape reports whether two shapes are equal.
func SameShape(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
