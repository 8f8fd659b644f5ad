// Package format reads and writes safetensors files, single or sharded with
// an index, without loading tensor data into memory, and describes the QINS
// layout stored inside them.
package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"strconv"
	"strings"

	"github.com/nlpodyssey/safetensors"
)

// MaxHeaderSize is the largest header the safetensors format allows.
const MaxHeaderSize = 100_000_000

// TensorInfo describes one tensor stored in a safetensors file.
type TensorInfo struct {
	Name  string
	DType safetensors.DType
	Shape []uint64
	// Begin and End are byte offsets into the data section, which starts
	// right after the header.
	Begin, End uint64
}

// Elements returns the number of elements of t.
func (t TensorInfo) Elements() uint64 {
	n, _ := Elements(t.Shape)
	return n
}

// Bytes returns the size of t's data.
func (t TensorInfo) Bytes() uint64 { return t.End - t.Begin }

// Elements returns the number of elements of a tensor of this shape, and
// false when that number overflows uint64.
func Elements(shape []uint64) (uint64, bool) {
	n := uint64(1)
	for _, d := range shape {
		hi, lo := bits.Mul64(n, d)
		if hi != 0 {
			return 0, false
		}
		n = lo
	}
	return n, true
}

// Header is a parsed safetensors header.
type Header struct {
	// Metadata holds the "__metadata__" entries; nil when there are none.
	Metadata map[string]string
	// Tensors are in the order of their data in the file.
	Tensors []TensorInfo
}

// Tensor returns the tensor called name.
func (h *Header) Tensor(name string) (TensorInfo, bool) {
	for _, t := range h.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// DataSize returns the size of the data section the header describes.
func (h *Header) DataSize() uint64 {
	if len(h.Tensors) == 0 {
		return 0
	}
	return h.Tensors[len(h.Tensors)-1].End
}

// headerError is an error in the header, naming the tensor when there is
// one. Open wraps it with the file's path.
type headerError struct {
	tensor string
	msg    string
}

func (e *headerError) Error() string { return e.msg }

func herr(tensor, format string, args ...any) error {
	return &headerError{tensor: tensor, msg: fmt.Sprintf(format, args...)}
}

// ParseHeader parses and validates the JSON header of a safetensors file
// whose data section holds dataSize bytes. It rejects anything a strict
// reader would: duplicate or empty names, unknown dtypes, sizes that
// overflow or disagree with the shape, and offsets that do not tile the data
// section exactly.
func ParseHeader(js []byte, dataSize uint64) (*Header, error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, herr("", "header is not a JSON object")
	}
	h := &Header{}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, herr("", "header is not valid JSON: %v", err)
		}
		name := tok.(string) // object keys are always strings
		if seen[name] {
			return nil, herr("", "duplicate tensor name %q in header", name)
		}
		seen[name] = true
		if name == "__metadata__" {
			if h.Metadata, err = parseMetadata(dec); err != nil {
				return nil, err
			}
			continue
		}
		if name == "" {
			return nil, herr("", "header has a tensor with an empty name")
		}
		t, err := parseTensor(dec, name)
		if err != nil {
			return nil, err
		}
		h.Tensors = append(h.Tensors, t)
	}
	if _, err := dec.Token(); err != nil {
		return nil, herr("", "header is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, herr("", "header has data after its JSON object")
	}
	if err := checkLayout(h.Tensors, dataSize); err != nil {
		return nil, err
	}
	return h, nil
}

func parseMetadata(dec *json.Decoder) (map[string]string, error) {
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		if tok == nil && err == nil {
			return nil, nil // "__metadata__": null
		}
		return nil, herr("", "__metadata__ is not a JSON object")
	}
	m := make(map[string]string)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, herr("", "__metadata__ is not valid JSON: %v", err)
		}
		key := tok.(string)
		if _, dup := m[key]; dup {
			return nil, herr("", "duplicate key %q in __metadata__", key)
		}
		v, err := dec.Token()
		s, ok := v.(string)
		if err != nil || !ok {
			return nil, herr("", "__metadata__ value of %q is not a string", key)
		}
		m[key] = s
	}
	if _, err := dec.Token(); err != nil {
		return nil, herr("", "__metadata__ is not valid JSON: %v", err)
	}
	return m, nil
}

func parseTensor(dec *json.Decoder, name string) (TensorInfo, error) {
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil || raw == nil {
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
			return TensorInfo{}, herr("", "header is not valid JSON: %v", err)
		}
		return TensorInfo{}, herr(name, "entry is not a JSON object")
	}
	t := TensorInfo{Name: name}
	for k := range raw {
		if k != "dtype" && k != "shape" && k != "data_offsets" {
			return t, herr(name, "unknown key %q", k)
		}
	}
	var dt string
	if err := json.Unmarshal(raw["dtype"], &dt); err != nil || raw["dtype"] == nil {
		return t, herr(name, "dtype missing or not a string")
	}
	var err error
	if t.DType, err = safetensors.ParseDType(dt); err != nil {
		return t, herr(name, "unknown dtype %q", dt)
	}
	if raw["shape"] == nil {
		return t, herr(name, "shape missing")
	}
	if t.Shape, err = parseNaturals(raw["shape"]); err != nil {
		return t, herr(name, "shape %s: %v", raw["shape"], err)
	}
	if raw["data_offsets"] == nil {
		return t, herr(name, "data_offsets missing")
	}
	off, err := parseNaturals(raw["data_offsets"])
	if err != nil || len(off) != 2 {
		if err == nil {
			err = errors.New("want two offsets")
		}
		return t, herr(name, "data_offsets %s: %v", raw["data_offsets"], err)
	}
	t.Begin, t.End = off[0], off[1]
	if t.Begin > t.End {
		return t, herr(name, "data_offsets [%d, %d] are reversed", t.Begin, t.End)
	}
	n, ok := Elements(t.Shape)
	if !ok {
		return t, herr(name, "shape %v has too many elements", t.Shape)
	}
	hi, size := bits.Mul64(n, t.DType.Size())
	if hi != 0 {
		return t, herr(name, "shape %v is too large for dtype %v", t.Shape, t.DType)
	}
	if t.End-t.Begin != size {
		return t, herr(name, "holds %d bytes, but %v %v needs %d", t.End-t.Begin, t.DType, t.Shape, size)
	}
	return t, nil
}

// parseNaturals parses a JSON array of non-negative integers.
func parseNaturals(js json.RawMessage) ([]uint64, error) {
	var nums []json.Number
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&nums); err != nil || nums == nil {
		return nil, errors.New("not an array of integers")
	}
	out := make([]uint64, len(nums))
	for i, s := range nums {
		if strings.HasPrefix(string(s), "-") {
			return nil, fmt.Errorf("%s is negative", s)
		}
		v, err := strconv.ParseUint(string(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not an integer that fits 64 bits", s)
		}
		out[i] = v
	}
	return out, nil
}

// checkLayout sorts the tensors by offset and checks that they tile the
// data section exactly: starting at 0, no gaps, no overlaps, ending at
// dataSize.
func checkLayout(ts []TensorInfo, dataSize uint64) error {
	sort.SliceStable(ts, func(i, j int) bool {
		if ts[i].Begin != ts[j].Begin {
			return ts[i].Begin < ts[j].Begin
		}
		return ts[i].End < ts[j].End
	})
	pos := uint64(0)
	for _, t := range ts {
		switch {
		case t.Begin > pos:
			return herr(t.Name, "gap of %d bytes before its data at offset %d", t.Begin-pos, t.Begin)
		case t.Begin < pos:
			return herr(t.Name, "data at [%d, %d] overlaps the tensor before it", t.Begin, t.End)
		}
		pos = t.End
	}
	if pos != dataSize {
		if pos < dataSize {
			return herr("", "tensors end at byte %d of the data section, but the file holds %d bytes after the header", pos, dataSize)
		}
		return herr("", "tensors need %d bytes of data, but the file holds only %d after the header (truncated?)", pos, dataSize)
	}
	return nil
}

// Encode renders a header for tensors (their offsets as given) and metadata,
// padded with spaces to a multiple of 8 bytes and at least minLen bytes, so
// that data starts aligned. Metadata keys are sorted; tensors keep their
// order.
func Encode(metadata map[string]string, tensors []TensorInfo, minLen int) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, metadata[k])
		}
		b.WriteByte('}')
	}
	for i, t := range tensors {
		if i > 0 || len(metadata) > 0 {
			b.WriteByte(',')
		}
		writeJSONString(&b, t.Name)
		fmt.Fprintf(&b, `:{"dtype":"%v","shape":[`, t.DType)
		for j, d := range t.Shape {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatUint(d, 10))
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, t.Begin, t.End)
	}
	b.WriteByte('}')
	for b.Len() < minLen || b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	return b.Bytes()
}

func writeJSONString(b *bytes.Buffer, s string) {
	js, _ := json.Marshal(s) // a string always marshals
	b.Write(js)
}
