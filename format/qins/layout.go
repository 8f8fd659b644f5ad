package qins

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/qins-dev/qins/format"

	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/quant"
)

// The QINS layout inside a safetensors file. For each encoded tensor NAME:
// NAME.qins (U8, the source shape) holds the codes, NAME.sign (I8, the
// source shape) the signs, and __metadata__["qins:NAME"] a JSON object with
// log_min, log_max and the source dtype. __metadata__["qins"] holds the
// format version. Every other tensor is stored as it was. This file owns
// the names, dtypes and shapes of those parts, for writers and readers.
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
	// VersionRational is the format version of a file with tensors of the
	// rational codec: version 2 plus them, so that older readers refuse it.
	VersionRational = "3"
	// AlphasSuffix names the F32 [rows] tensor of the alphas of a
	// rational tensor with one alpha per row.
	AlphasSuffix = ".alpha"
	// VersionRationalRows is the format version of a file with rational
	// tensors of one alpha per row: version 3 plus them, so that older
	// readers refuse it.
	VersionRationalRows = "4"
)

// ParamsKey returns the metadata key of the parameters of the encoded
// tensor name: "qins:NAME".
func ParamsKey(name string) string { return ParamsPrefix + name }

// IsQINSKey reports whether a metadata key is one the QINS layout
// reserves: the version, or the parameters of an encoded tensor.
func IsQINSKey(k string) bool {
	return k == VersionKey || strings.HasPrefix(k, ParamsPrefix)
}

// Layout is how the codes and signs of an encoded tensor are stored. In
// LayoutU8I8 (the zero value) the codes are 1..255 and the signs an I8
// tensor of the source shape. In LayoutPacked the codes are 0 for an exact
// zero and 1..255 otherwise, and NAME.signbits, U8 of shape [ceil(n/8)],
// holds one bit per element, least significant bit first, set when the
// element is negative: 1.125 bytes per element instead of 2. Both decode
// to the same values. LayoutI8 is another code of the log codec, one byte
// per element: NAME.qins is I8 of the source shape, holding 0 for an exact
// zero and sign * code7 otherwise, code7 the 7-bit magnitude code 1..127
// (QINS version 3; no sign tensor).
type Layout uint8

const (
	LayoutU8I8   Layout = iota // codes 1..255 and an I8 sign per element
	LayoutPacked               // code 0 for zeros, and one sign bit per element
	LayoutI8                   // one I8 per element: sign * 7-bit code, 0 for zeros
)

// Range is how log_min is chosen: the min/max range of the formula (the
// zero value), or the log_min that minimises the squared error (log_max
// stays the maximum). Decoding does not depend on it.
type Range uint8

const (
	RangeMinMax Range = iota // log_min and log_max of the magnitudes
	RangeMSE                 // log_min for the least squared error
)

// Granularity is how many log ranges a tensor has: one (the zero value),
// or one per row, stored in NAME.logrange.
type Granularity uint8

const (
	GranularityTensor Granularity = iota // one range per tensor
	GranularityRow                       // one range per row, in NAME.logrange
)

// Codec is the code of an encoded tensor: the log-magnitude code with
// its sign (the zero value), or the rational code, one byte per weight
// with the sign inside and one alpha per tensor, or per row.
type Codec uint8

const (
	CodecLog      Codec = iota // log-magnitude codes, signs, log ranges
	CodecRational              // sign(w)/(1+alpha*|w|) in one byte
)

// The names of the values of each enum, in order: in files and on the
// command line.
func codecNames() []string       { return []string{"log", "rational"} }
func layoutNames() []string      { return []string{"u8+i8", "packed", "i8"} }
func rangeNames() []string       { return []string{"minmax", "mse"} }
func granularityNames() []string { return []string{"tensor", "row"} }

// String returns the codec's name in files and on the command line.
func (c Codec) String() string { return enumString(codecNames(), int(c), "Codec") }

// ParseCodec returns the codec named s.
func ParseCodec(s string) (Codec, error) {
	i, err := parseEnum(codecNames(), s, "codec")
	return Codec(i), err
}

// MarshalText returns the codec's name, for JSON.
func (c Codec) MarshalText() ([]byte, error) { return marshalEnum(codecNames(), int(c), "codec") }

// UnmarshalText reads a codec's name; empty is the default.
func (c *Codec) UnmarshalText(b []byte) error { return unmarshalEnum(b, c, ParseCodec) }

// String returns the layout's name in files and on the command line.
func (l Layout) String() string { return enumString(layoutNames(), int(l), "Layout") }

// String returns the range's name in files and on the command line.
func (r Range) String() string { return enumString(rangeNames(), int(r), "Range") }

// String returns the granularity's name in files and on the command line.
func (g Granularity) String() string { return enumString(granularityNames(), int(g), "Granularity") }

// ParseLayout returns the layout named s.
func ParseLayout(s string) (Layout, error) {
	i, err := parseEnum(layoutNames(), s, "layout")
	return Layout(i), err
}

// ParseRange returns the range named s.
func ParseRange(s string) (Range, error) {
	i, err := parseEnum(rangeNames(), s, "range")
	return Range(i), err
}

// ParseGranularity returns the granularity named s.
func ParseGranularity(s string) (Granularity, error) {
	i, err := parseEnum(granularityNames(), s, "granularity")
	return Granularity(i), err
}

// MarshalText returns the layout's name, for JSON.
func (l Layout) MarshalText() ([]byte, error) { return marshalEnum(layoutNames(), int(l), "layout") }

// MarshalText returns the range's name, for JSON.
func (r Range) MarshalText() ([]byte, error) { return marshalEnum(rangeNames(), int(r), "range") }

// MarshalText returns the granularity's name, for JSON.
func (g Granularity) MarshalText() ([]byte, error) {
	return marshalEnum(granularityNames(), int(g), "granularity")
}

// UnmarshalText reads a layout's name; empty is the default.
func (l *Layout) UnmarshalText(b []byte) error { return unmarshalEnum(b, l, ParseLayout) }

// UnmarshalText reads a range's name; empty is the default.
func (r *Range) UnmarshalText(b []byte) error { return unmarshalEnum(b, r, ParseRange) }

// UnmarshalText reads a granularity's name; empty is the default.
func (g *Granularity) UnmarshalText(b []byte) error {
	return unmarshalEnum(b, g, ParseGranularity)
}

func unmarshalEnum[T ~uint8](b []byte, v *T, parse func(string) (T, error)) error {
	if len(b) == 0 {
		*v = 0
		return nil
	}
	p, err := parse(string(b))
	if err == nil {
		*v = p
	}
	return err
}

func enumString(names []string, i int, typ string) string {
	if i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("%s(%d)", typ, i)
}

func parseEnum(names []string, s, what string) (int, error) {
	for i, n := range names {
		if s == n {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%s %q: choose %s", what, s, orList(names))
}

func marshalEnum(names []string, i int, what string) ([]byte, error) {
	if i < len(names) {
		return []byte(names[i]), nil
	}
	return nil, fmt.Errorf("invalid %s %d", what, i)
}

// Encoding is how the tensors of a convert are encoded.
type Encoding struct {
	Layout      Layout      `json:"layout,omitempty"`
	Range       Range       `json:"range,omitempty"`
	Granularity Granularity `json:"granularity,omitempty"`
	// Codec is the code; the rational codec has no layout or range: its
	// parts are the codes and, with GranularityRow, the rows' alphas.
	Codec Codec `json:"codec,omitempty"`
}

// Check reports an Encoding with a value out of its type's range.
func (e Encoding) Check() error {
	switch {
	case int(e.Layout) >= len(layoutNames()):
		return fmt.Errorf("invalid layout %d", e.Layout)
	case int(e.Range) >= len(rangeNames()):
		return fmt.Errorf("invalid range %d", e.Range)
	case int(e.Granularity) >= len(granularityNames()):
		return fmt.Errorf("invalid granularity %d", e.Granularity)
	case int(e.Codec) >= len(codecNames()):
		return fmt.Errorf("invalid codec %d", e.Codec)
	case e.Codec == CodecRational && (e.Layout != 0 || e.Range != 0):
		return errors.New("the rational codec has no layout or range")
	}
	return nil
}

// Version returns the format version of a file holding tensors encoded
// so: VersionRationalRows for the rational codec with one alpha per row,
// VersionRational for the rational codec and the i8 layout, VersionRows
// with per-row ranges, Version otherwise.
func (e Encoding) Version() string {
	if e.Codec == CodecRational && e.Granularity == GranularityRow {
		return VersionRationalRows
	}
	if e.Codec == CodecRational || e.Layout == LayoutI8 {
		return VersionRational
	}
	if e.Granularity == GranularityRow {
		return VersionRows
	}
	return Version
}

// Part is one of the stored tensors of an encoded tensor.
type Part uint8

const (
	PartCodes  Part = iota // NAME.qins
	PartSigns              // NAME.sign, or NAME.signbits in the packed layout
	PartRanges             // NAME.logrange with per-row ranges; NAME.alpha with per-row alphas
)

// String says what the part holds.
func (p Part) String() string {
	return enumString([]string{"codes", "signs", "row parameters"}, int(p), "Part")
}

// Parts returns the stored tensors of a tensor encoded so, in the order
// PartCodes, PartSigns, then PartRanges for per-row ranges; the rational
// codec and the i8 layout have no PartSigns. For the rational codec
// PartRanges is the rows' alphas.
func (e Encoding) Parts() []Part {
	if (e.Codec == CodecRational || e.Layout == LayoutI8) && e.Granularity != GranularityRow {
		return []Part{PartCodes}
	}
	if e.Codec == CodecRational || e.Layout == LayoutI8 {
		return []Part{PartCodes, PartRanges}
	}
	if e.Granularity == GranularityRow {
		return []Part{PartCodes, PartSigns, PartRanges}
	}
	return []Part{PartCodes, PartSigns}
}

// Suffix returns what part p of an encoded tensor adds to its name.
func (e Encoding) Suffix(p Part) string {
	switch {
	case p == PartCodes:
		return CodesSuffix
	case p == PartSigns && e.Layout == LayoutPacked:
		return SignBitsSuffix
	case p == PartSigns:
		return SignsSuffix
	case e.Codec == CodecRational:
		return AlphasSuffix
	}
	return RangesSuffix
}

// Stored returns the name, dtype and shape of part p of the tensor name of
// the given source shape, encoded so; its offsets are left to the writer.
func (e Encoding) Stored(p Part, name string, shape []uint64) format.TensorInfo {
	t := format.TensorInfo{Name: name + e.Suffix(p), DType: dtype.U8, Shape: shape}
	switch p {
	case PartCodes:
		if e.Layout == LayoutI8 {
			t.DType = dtype.I8
		}
	case PartSigns:
		if e.Layout == LayoutPacked {
			n, _ := format.Elements(shape)
			t.Shape = []uint64{SignBytes(n)}
		} else {
			t.DType = dtype.I8
		}
	case PartRanges:
		t.DType, t.Shape = dtype.F32, []uint64{uint64(Rows(shape)), 2}
		if e.Codec == CodecRational {
			t.Shape = []uint64{uint64(Rows(shape))}
		}
	}
	return t
}

// EncodedBytes returns the bytes a tensor of the given source shape takes
// once encoded so.
func (e Encoding) EncodedBytes(shape []uint64) uint64 {
	var n uint64
	for _, p := range e.Parts() {
		t := e.Stored(p, "", shape)
		b, _ := t.DType.Bytes(t.Elements())
		n += b
	}
	return n
}

// EncodedMeta is the JSON stored under "qins:NAME".
type EncodedMeta struct {
	LogMin float64 `json:"log_min"`
	LogMax float64 `json:"log_max"`
	DType  string  `json:"dtype"`
	// Alpha is the rational codec's parameter (Encoding.Codec), which has
	// no LogMin and LogMax; with GranularityRow, each row has its own
	// alpha, in NAME.alpha, and Alpha is at most the smallest of them (qins
	// writes the smallest; 1 for a tensor of no rows).
	Alpha float64 `json:"-"`
	// Encoding is how the tensor is stored; the JSON omits the zero
	// values. With GranularityRow, each row has its own range, in
	// NAME.logrange, and LogMin and LogMax are the smallest log_min and
	// the largest log_max of the rows.
	Encoding
}

// MarshalEncodedMeta renders the metadata value of a tensor of dtype dt
// encoded with range p. The numbers are written in their shortest form
// that reads back exactly.
func MarshalEncodedMeta(p quant.Params, dt dtype.DType, e Encoding) string {
	js, _ := json.Marshal(EncodedMeta{LogMin: p.LogMin, LogMax: p.LogMax, DType: dt.String(), Encoding: e})
	return string(js)
}

// MarshalRationalMeta renders the metadata value of a tensor of dtype dt
// encoded with the rational codec and parameter alpha:
// {"codec":"rational","alpha":A,"dtype":"DT"}, alpha in its shortest form
// that reads back exactly, and "granularity":"row" after them for one
// alpha per row (alpha is then the smallest of the rows').
func MarshalRationalMeta(alpha float64, dt dtype.DType, g Granularity) string {
	js, _ := json.Marshal(struct {
		Codec       Codec       `json:"codec"`
		Alpha       float64     `json:"alpha"`
		DType       string      `json:"dtype"`
		Granularity Granularity `json:"granularity,omitempty"`
	}{CodecRational, alpha, dt.String(), g})
	return string(js)
}

// EncodedMetaSlack bounds how many bytes an encoded tensor's final log_min
// and log_max can add to its header entry over placeholders of 0: a writer
// that only knows them after the data reserves this much per tensor.
const EncodedMetaSlack = 64

// IsQINS reports whether a file's metadata marks it as a QINS file.
func IsQINS(metadata map[string]string) bool {
	_, ok := metadata[VersionKey]
	return ok
}

var errSyntax = errors.New("not valid JSON")

// ParseEncodedMeta parses the value of a "qins:NAME" entry strictly: a
// JSON object with exactly log_min, log_max and dtype, and optionally
// layout, range, granularity and codec "log"; or, for the rational codec,
// exactly codec "rational", alpha and dtype, and optionally granularity.
// Each key once and spelt in lower case, numbers within float64's range,
// and values the format knows.
func ParseEncodedMeta(v string) (EncodedMeta, error) {
	var m EncodedMeta
	d := json.NewDecoder(strings.NewReader(v))
	d.UseNumber()
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return m, errors.New("is not a JSON object")
	}
	var seen [8]bool
	keys := [8]string{"log_min", "log_max", "dtype", "layout", "range", "granularity", "codec", "alpha"}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return m, errSyntax
		}
		k, _ := t.(string) // a key is always a string
		i := slices.Index(keys[:], k)
		switch {
		case i < 0:
			return m, fmt.Errorf("has unknown key %q (keys are %s)", k, strings.Join(keys[:], ", "))
		case seen[i]:
			return m, fmt.Errorf("has key %q twice", k)
		}
		seen[i] = true
		if t, err = d.Token(); err != nil {
			return m, fmt.Errorf("%s: %w", k, errSyntax)
		}
		if err := m.set(keys[i], t); err != nil {
			return m, err
		}
	}
	if _, err := d.Token(); err != nil {
		return m, errSyntax
	}
	if _, err := d.Token(); err != io.EOF {
		return m, errors.New("has data after its JSON object")
	}
	need, allowed := keys[:3], keys[:7] // the log codec's
	if m.Codec == CodecRational {
		need = []string{"codec", "alpha", "dtype"}
		allowed = []string{"codec", "alpha", "dtype", "granularity"}
	}
	for i, k := range keys {
		switch {
		case seen[i] && !slices.Contains(allowed, k):
			return m, fmt.Errorf("has key %q, which the %v codec does not have (its keys are %s)", k, m.Codec, strings.Join(allowed, ", "))
		case !seen[i] && slices.Contains(need, k):
			return m, fmt.Errorf("lacks %q", k)
		}
	}
	return m, m.check()
}

// set reads the value t of key k.
func (m *EncodedMeta) set(k string, t json.Token) error {
	var err error
	switch k {
	case "log_min", "log_max", "alpha":
		n, ok := t.(json.Number)
		if !ok {
			return fmt.Errorf("%s: %w (not a number)", k, errSyntax)
		}
		f, perr := strconv.ParseFloat(string(n), 64)
		if perr != nil {
			return fmt.Errorf("%s: %s is out of the range of a float64", k, n)
		}
		switch k {
		case "log_min":
			m.LogMin = f
		case "log_max":
			m.LogMax = f
		default:
			m.Alpha = f
		}
	default:
		v, ok := t.(string)
		if !ok {
			return fmt.Errorf("%s is not a string", k)
		}
		if v == "" && k != "dtype" {
			break // the default, as if the key were absent
		}
		switch k {
		case "dtype":
			m.DType = v
		case "layout":
			m.Layout, err = ParseLayout(v)
		case "range":
			m.Range, err = ParseRange(v)
		case "granularity":
			m.Granularity, err = ParseGranularity(v)
		case "codec":
			m.Codec, err = ParseCodec(v)
		}
		if err != nil {
			return fmt.Errorf("%s %q is not %s", k, v, orList(quoted(enumNames(k))))
		}
	}
	return nil
}

// orList joins names as "a or b", "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// quoted returns each of names quoted.
func quoted(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strconv.Quote(n)
	}
	return out
}

// enumNames returns the values a metadata key k of an enum takes.
func enumNames(k string) []string {
	switch k {
	case "layout":
		return layoutNames()
	case "range":
		return rangeNames()
	case "codec":
		return codecNames()
	}
	return granularityNames()
}

// check checks the values of m.
func (m *EncodedMeta) check() error {
	if m.Codec == CodecRational {
		if math.IsNaN(m.Alpha) || math.IsInf(m.Alpha, 0) || m.Alpha <= 0 {
			return fmt.Errorf("alpha %v must be finite and above 0", m.Alpha)
		}
	} else if err := (quant.Params{LogMin: m.LogMin, LogMax: m.LogMax}).Validate(); err != nil {
		return err
	}
	if dt, err := dtype.Parse(m.DType); err != nil || !dt.IsFloat() {
		return fmt.Errorf("dtype %q is not F16, BF16, F32 or F64", m.DType)
	}
	return nil
}

// RowLen returns the elements of a row of a tensor of the given shape: a
// run of its last dimension, which has one range in the per-row
// granularity; 1 for a scalar.
func RowLen(shape []uint64) int64 {
	if len(shape) == 0 {
		return 1
	}
	return int64(shape[len(shape)-1])
}

// Rows returns the rows of a tensor of the given shape: the product of
// all its dimensions but the last.
func Rows(shape []uint64) int64 {
	n := int64(1)
	for i := 0; i+1 < len(shape); i++ {
		n *= int64(shape[i])
	}
	return n
}

// SignBytes returns the size of the sign bits of n elements in the packed
// layout.
func SignBytes(n uint64) uint64 { return (n + 7) / 8 }
