// Package format reads and writes safetensors files, single or sharded with
// an index, without loading tensor data into memory: the strict header
// parser, File, Checkpoint, the index, and Writer. It knows nothing of
// QINS (package format/qins reads and lays out the QINS container inside
// a safetensors file) and leaves atomic output files and folders to
// package format/outfile.
package format

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/qins-dev/qins/format/dtype"
)

// MaxHeaderSize is the largest header the safetensors format allows.
const MaxHeaderSize = 100_000_000

// TensorInfo describes one tensor stored in a safetensors file.
type TensorInfo struct {
	Name  string
	DType dtype.DType
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
// reader would: a duplicate key anywhere (tensor names, metadata keys, the
// keys of a tensor entry), keys in another case, empty names, unknown
// dtypes, sizes that overflow or disagree with the shape, and offsets that
// do not tile the data section exactly. The names, metadata and shapes it
// returns share a few allocations, whatever the number of tensors.
func ParseHeader(js []byte, dataSize uint64) (*Header, error) {
	p := headerParser{s: scanner{b: js}}
	p.store.Grow(len(js)) // every string fits: unescaped, none grows
	// A tensor entry takes at least 48 bytes; a first count of the key
	// every entry has sizes the slices once for real headers.
	n := min(bytes.Count(js, []byte(`"data_offsets"`)), len(js)/48)
	p.h.Tensors = make([]TensorInfo, 0, n)
	p.shapes = make([]uint64, 0, 2*n)
	if err := p.parse(); err != nil {
		if errors.Is(err, errSyntax) {
			return nil, herr("", "header is %v", err)
		}
		return nil, err
	}
	if err := checkNames(p.h.Tensors); err != nil {
		return nil, err
	}
	if err := checkLayout(p.h.Tensors, dataSize); err != nil {
		return nil, err
	}
	return &p.h, nil
}

// headerParser holds the state of ParseHeader.
type headerParser struct {
	s      scanner
	h      Header
	store  strings.Builder // the bytes of every name, key and value
	shapes []uint64        // every shape, one after the other
	meta   bool            // __metadata__ was seen
}

// keep returns b as a string held in the parser's store.
func (p *headerParser) keep(b []byte) string {
	n := p.store.Len()
	p.store.Write(b)
	return p.store.String()[n:]
}

func (p *headerParser) parse() error {
	s := &p.s
	if !s.eat('{') {
		return herr("", "header is not a JSON object")
	}
	for first := true; ; first = false {
		more, err := s.more(first, '}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
		k, err := s.key()
		if err != nil {
			return err
		}
		if string(k) == "__metadata__" {
			if p.meta {
				return herr("", "duplicate tensor name %q in header", k)
			}
			p.meta = true
			if err := p.metadata(); err != nil {
				return err
			}
			continue
		}
		if len(k) == 0 {
			return herr("", "header has a tensor with an empty name")
		}
		if err := p.tensor(p.keep(k)); err != nil {
			return err
		}
	}
	if !s.end() {
		return herr("", "header has data after its JSON object")
	}
	return nil
}

func (p *headerParser) metadata() error {
	s := &p.s
	if s.literal("null") {
		return nil
	}
	if !s.eat('{') {
		return herr("", "__metadata__ is not a JSON object")
	}
	m := make(map[string]string)
	for first := true; ; first = false {
		more, err := s.more(first, '}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
		kb, err := s.key()
		if err != nil {
			return err
		}
		if _, dup := m[string(kb)]; dup {
			return herr("", "duplicate key %q in __metadata__", kb)
		}
		k := p.keep(kb)
		if s.next() != '"' {
			return herr("", "__metadata__ value of %q is not a string", k)
		}
		v, err := s.str()
		if err != nil {
			return err
		}
		m[k] = p.keep(v)
	}
	p.h.Metadata = m
	return nil
}

// The keys of a tensor entry, as bits of a set.
const (
	keyDType = 1 << iota
	keyShape
	keyOffsets
)

func (p *headerParser) tensor(name string) error {
	s := &p.s
	if s.next() != '{' {
		if s.next() == 0 {
			return s.syntax("unexpected end")
		}
		return herr(name, "entry is not a JSON object")
	}
	s.pos++
	t := TensorInfo{Name: name}
	seen := 0
	for first := true; ; first = false {
		more, err := s.more(first, '}')
		if err != nil {
			return err
		}
		if !more {
			break
		}
		k, err := s.key()
		if err != nil {
			return err
		}
		var bit int
		switch string(k) {
		case "dtype":
			bit, err = keyDType, p.dtype(&t)
		case "shape":
			bit, err = keyShape, p.shape(&t)
		case "data_offsets":
			bit, err = keyOffsets, p.offsets(&t)
		default:
			return herr(name, "unknown key %q", k)
		}
		if seen&bit != 0 {
			return herr(name, "duplicate key %q", k)
		}
		if err != nil {
			return err
		}
		seen |= bit
	}
	switch {
	case seen&keyDType == 0:
		return herr(name, "dtype missing or not a string")
	case seen&keyShape == 0:
		return herr(name, "shape missing")
	case seen&keyOffsets == 0:
		return herr(name, "data_offsets missing")
	}
	if err := checkSize(&t); err != nil {
		return err
	}
	p.h.Tensors = append(p.h.Tensors, t)
	return nil
}

func (p *headerParser) dtype(t *TensorInfo) error {
	if p.s.next() != '"' {
		return herr(t.Name, "dtype missing or not a string")
	}
	dt, err := p.s.str()
	if err != nil {
		return err
	}
	if t.DType, err = dtype.Parse(string(dt)); err != nil {
		return herr(t.Name, "unknown dtype %q", dt)
	}
	return nil
}

func (p *headerParser) shape(t *TensorInfo) error {
	start := len(p.shapes)
	var err error
	if p.shapes, err = p.naturals(p.shapes); err != nil {
		return p.numbersErr(t.Name, "shape", start, err)
	}
	t.Shape = p.shapes[start:len(p.shapes):len(p.shapes)]
	return nil
}

func (p *headerParser) offsets(t *TensorInfo) error {
	start := p.s.pos
	var buf [2]uint64
	off, err := p.naturals(buf[:0])
	if err == nil && len(off) != 2 {
		err = errors.New("want two offsets")
	}
	if err != nil {
		return p.numbersErr(t.Name, "data_offsets", start, err)
	}
	t.Begin, t.End = off[0], off[1]
	return nil
}

// numbersErr describes an error in an array of naturals that starts at
// byte start.
func (p *headerParser) numbersErr(name, what string, start int, err error) error {
	if errors.Is(err, errSyntax) {
		return err
	}
	text := p.s.b[start:min(p.s.pos, start+64)]
	return herr(name, "%s %s: %v", what, bytes.TrimSpace(text), err)
}

// naturals appends a JSON array of non-negative integers to dst.
func (p *headerParser) naturals(dst []uint64) ([]uint64, error) {
	s := &p.s
	if !s.eat('[') {
		return dst, errors.New("not an array of integers")
	}
	for first := true; ; first = false {
		more, err := s.more(first, ']')
		if err != nil {
			return dst, err
		}
		if !more {
			return dst, nil
		}
		if c := s.next(); c != '-' && (c < '0' || c > '9') {
			return dst, errors.New("not an array of integers")
		}
		v, err := s.natural()
		if err != nil {
			return dst, err
		}
		dst = append(dst, v)
	}
}

// checkSize checks that a tensor's offsets hold exactly its shape.
func checkSize(t *TensorInfo) error {
	if t.Begin > t.End {
		return herr(t.Name, "data_offsets [%d, %d] are reversed", t.Begin, t.End)
	}
	n, ok := Elements(t.Shape)
	if !ok {
		return herr(t.Name, "shape %v has too many elements", t.Shape)
	}
	hi, nbits := bits.Mul64(n, t.DType.Bits())
	if hi != 0 {
		return herr(t.Name, "shape %v is too large for dtype %v", t.Shape, t.DType)
	}
	if nbits%8 != 0 {
		// The specification packs sub-byte elements across the whole
		// tensor, which must fill whole bytes.
		return herr(t.Name, "%v %v is %d elements of %d bits, not a whole number of bytes", t.DType, t.Shape, n, t.DType.Bits())
	}
	if size := nbits / 8; t.End-t.Begin != size {
		return herr(t.Name, "holds %d bytes, but %v %v needs %d", t.End-t.Begin, t.DType, t.Shape, size)
	}
	return nil
}

// checkNames refuses two tensors of the same name. It sorts indices, not
// the tensors, and allocates nothing per name.
func checkNames(ts []TensorInfo) error {
	idx := make([]int32, len(ts))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int { return strings.Compare(ts[a].Name, ts[b].Name) })
	for i := 1; i < len(idx); i++ {
		if name := ts[idx[i]].Name; name == ts[idx[i-1]].Name {
			return herr("", "duplicate tensor name %q in header", name)
		}
	}
	return nil
}

// checkLayout sorts the tensors by offset and checks that they tile the
// data section exactly: starting at 0, no gaps, no overlaps, ending at
// dataSize.
func checkLayout(ts []TensorInfo, dataSize uint64) error {
	byOffset := func(a, b TensorInfo) int {
		if c := cmp.Compare(a.Begin, b.Begin); c != 0 {
			return c
		}
		return cmp.Compare(a.End, b.End)
	}
	if !slices.IsSortedFunc(ts, byOffset) { // as most writers lay them out
		slices.SortStableFunc(ts, byOffset)
	}
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
	n, _ := headerLen(metadata, tensors)
	b := make([]byte, 0, max(n+7, minLen+7)/8*8)
	b = append(b, '{')
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, `"__metadata__":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = appendJSONString(b, metadata[k])
		}
		b = append(b, '}')
	}
	for i, t := range tensors {
		if i > 0 || len(metadata) > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t.Name)
		b = append(b, `:{"dtype":"`...)
		b = append(b, t.DType.String()...)
		b = append(b, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, d, 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendUint(b, t.Begin, 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, t.End, 10)
		b = append(b, "]}"...)
	}
	b = append(b, '}')
	for len(b) < minLen || len(b)%8 != 0 {
		b = append(b, ' ')
	}
	return b
}

// CreatedHeaderLen returns the length of the header Create writes for
// metadata and tensors with reserve bytes kept: headerLen padded to 8
// bytes, then the room reserved. ok is false when a shape overflows.
func CreatedHeaderLen(metadata map[string]string, tensors []TensorInfo, reserve int) (n int, ok bool) {
	n, ok = headerLen(metadata, tensors)
	return padded(n, reserve), ok
}

// padded returns the length of a header of n bytes of JSON as Create
// writes it: padded to 8 bytes, then reserve bytes more, padded again.
func padded(n, reserve int) int { return ((n+7)/8*8 + reserve + 7) / 8 * 8 }

// headerLen returns the length of the header Encode renders for metadata
// and tensors, before its padding, with the tensors laid out one after the
// other in the order given (their offsets ignored), as Create lays them
// out; it builds nothing. ok is false when a shape overflows.
func headerLen(metadata map[string]string, tensors []TensorInfo) (n int, ok bool) {
	var h HeaderSize
	for k, v := range metadata {
		h.Metadata(k, v)
	}
	var off uint64
	for _, t := range tensors {
		size, ok := Elements(t.Shape)
		if !ok {
			return 0, false
		}
		b, ok := t.DType.Bytes(size)
		if !ok {
			return 0, false
		}
		t.Begin, t.End = off, off+b
		h.Tensor(t)
		off = t.End
	}
	return h.json(), true
}

// HeaderSize counts the bytes of a header entry by entry, without building
// it: a writer bounds the header of a large checkpoint before it lays one
// out. The zero value is an empty header.
type HeaderSize struct {
	entries       int // the entries' bytes, each with a separating comma
	meta, tensors int // how many of each
}

// Metadata counts the metadata entry k: v.
func (h *HeaderSize) Metadata(k, v string) {
	h.entries += jsonStringLen(k) + 1 + jsonStringLen(v) + 1
	h.meta++
}

// Tensor counts t's entry, with its offsets as given: with offsets of 0,
// the least the entry can take.
func (h *HeaderSize) Tensor(t TensorInfo) {
	n := 1 + jsonStringLen(t.Name) + len(`:{"dtype":"","shape":[],"data_offsets":[,]}`) + len(t.DType.String())
	for j, d := range t.Shape {
		n += decimalLen(d)
		if j > 0 {
			n++
		}
	}
	h.entries += n + decimalLen(t.Begin) + decimalLen(t.End)
	h.tensors++
}

// Len returns the length of the header as Create writes it with reserve
// bytes kept (see CreateOptions.Reserve).
func (h *HeaderSize) Len(reserve int) int { return padded(h.json(), reserve) }

// json returns the length of the JSON of the entries counted, before
// padding.
func (h *HeaderSize) json() int {
	n := 2 + h.entries // {}
	if h.meta > 0 {
		n += len(`"__metadata__":{}`) - 1 // no comma after the last entry
	}
	if h.meta == 0 && h.tensors > 0 {
		n-- // no comma before the first entry
	}
	return n
}

func decimalLen(v uint64) int {
	n := 1
	for ; v >= 10; v /= 10 {
		n++
	}
	return n
}

// jsonStringLen returns the length of s as appendJSONString writes it, with
// encoding/json's escapes: two bytes for \\, \" and the usual control
// characters, six for other control characters, <, >, &, U+2028, U+2029
// and each byte that is not UTF-8 (as \ufffd).
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			n += 6
		} else {
			n += size
		}
		i += size
	}
	return n
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it (see jsonStringLen).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
