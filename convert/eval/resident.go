package eval

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/qins-dev/qins/convert/eval/internal/matvec"
	"github.com/qins-dev/qins/convert/eval/internal/model"
	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

// resident is a checkpoint's Weights that can also keep its matrices in
// memory in their stored form (model.Resident), for greedy generation:
// BF16, F16 and F32 bytes as stored; QINS codes (one byte per weight) with
// one sign bit per weight (packed) and a table of 256 float32 values per
// range (per tensor or per row), each value what a restore to F32 writes
// for that code. Other dtypes (F64) are kept as the float32 values a
// read gives.
type resident struct{ *Weights }

// tableBytes is the memory of one decoding table.
const tableBytes = 256 * 4

// StoredBytes returns the memory LoadMatrix takes for the named 2-D tensor.
func (w resident) StoredBytes(name string) int64 {
	l, ok := w.t.Tensor(name)
	if !ok || len(l.Shape) != 2 {
		return 0
	}
	rows, cols := int64(l.Shape[0]), int64(l.Shape[1])
	switch {
	case !l.Encoded():
		if size := int64(l.DType.Size()); l.DType == dtype.BF16 || l.DType == dtype.F16 || l.DType == dtype.F32 {
			return rows * cols * size
		}
		return rows * cols * 4
	case l.Ranges != nil:
		return w.codedBytes(l) + rows*tableBytes
	}
	return w.codedBytes(l) + tableBytes
}

// codedBytes returns the bytes of an encoded tensor's codes and sign bits.
func (w resident) codedBytes(l *qins.Logical) int64 {
	rows, cols := int64(l.Shape[0]), int64(l.Shape[1])
	n := rows * cols
	if signed(l) {
		n += rows * int64(matvec.SignStride(int(cols)))
	}
	return n
}

// signed reports whether an encoded tensor has signs apart from its
// codes: the log codec's u8+i8 and packed layouts.
func signed(l *qins.Logical) bool { return l.Codec != qins.CodecRational && l.Layout != qins.LayoutI8 }

// LoadMatrix reads the named 2-D tensor into memory, checking every code
// and sign as a read does.
func (w resident) LoadMatrix(ctx context.Context, name string) (model.Matrix, error) {
	l, ok := w.t.Tensor(name)
	if !ok || len(l.Shape) != 2 {
		return nil, w.errorf(name, "is not a 2-D tensor")
	}
	rows, cols := int(l.Shape[0]), int(l.Shape[1])
	if !l.Encoded() {
		kind, ok := map[dtype.DType]matvec.Kind{dtype.F32: matvec.F32, dtype.BF16: matvec.BF16, dtype.F16: matvec.F16}[l.DType]
		if !ok {
			return w.loadFloat32(ctx, name, rows, cols)
		}
		b := make([]byte, l.Plain.Bytes())
		if err := readAt(ctx, l.Plain, b, 0); err != nil {
			return nil, err
		}
		return matvec.NewFloat(kind, rows, cols, b)
	}
	if err := l.CheckFinite(dtype.F32); err != nil {
		return nil, w.errorf(name, "cannot be decoded to F32: %v", err)
	}
	codes := make([]byte, rows*cols)
	if err := readAt(ctx, l.Codes, codes, 0); err != nil {
		return nil, err
	}
	var signs []byte
	var err error
	switch {
	case l.Codec == qins.CodecRational:
	case l.Layout == qins.LayoutI8:
		err = w.checkI8(l, codes)
	case l.Layout == qins.LayoutPacked:
		signs, err = w.packedSigns(ctx, l, codes, rows, cols)
	default:
		signs, err = w.byteSigns(ctx, l, codes, rows, cols)
	}
	if err != nil {
		return nil, err
	}
	tables, err := w.tables(ctx, l, rows)
	if err != nil {
		return nil, err
	}
	return matvec.NewCoded(rows, cols, codes, signs, tables)
}

// loadFloat32 keeps a tensor of another dtype as the float32 values a
// read gives.
func (w resident) loadFloat32(ctx context.Context, name string, rows, cols int) (model.Matrix, error) {
	v := make([]float32, rows*cols)
	if err := w.Read(ctx, name, v); err != nil {
		return nil, err
	}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return matvec.NewFloat(matvec.F32, rows, cols, b)
}

// readChunk is how many bytes readAt reads at a time, checking ctx.
const readChunk = 64 << 20

// readAt fills b with the stored bytes of t from offset off.
func readAt(ctx context.Context, t *format.Tensor, b []byte, off int64) error {
	sec := t.Section()
	for i := 0; i < len(b); i += readChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		j := min(len(b), i+readChunk)
		if _, err := sec.ReadAt(b[i:j], off+int64(i)); err != nil {
			return t.Err(err)
		}
	}
	return nil
}

// invalid is the error of an invalid stored code or sign.
func (w resident) invalid(l *qins.Logical, part *format.Tensor, i int, what string) error {
	return &format.Error{Path: part.File.Path, Tensor: l.Name, Err: &quant.InvalidError{Index: int64(i), What: what}}
}

// checkI8 refuses the i8 code -128.
func (w resident) checkI8(l *qins.Logical, codes []byte) error {
	if i := bytes.IndexByte(codes, 0x80); i >= 0 {
		return w.invalid(l, l.Codes, i, "i8 code -128 is not a valid code (codes are -127..127)")
	}
	return nil
}

// packedSigns reads the sign bits of the packed layout, rows starting on
// a byte, and checks them: no sign bit on an exact zero (code 0), padding
// bits 0.
func (w resident) packedSigns(ctx context.Context, l *qins.Logical, codes []byte, rows, cols int) ([]byte, error) {
	stride := matvec.SignStride(cols)
	flat := make([]byte, l.Signs.Bytes())
	if err := readAt(ctx, l.Signs, flat, 0); err != nil {
		return nil, err
	}
	n := rows * cols
	if n%8 != 0 {
		if pad := flat[len(flat)-1] >> (n % 8); pad != 0 {
			return nil, &format.Error{Path: l.Signs.File.Path, Tensor: l.Name, Err: fmt.Errorf("padding bits of the last sign byte are %#02x, not 0", pad<<(n%8))}
		}
	}
	// Eight codes at a time: only words holding a zero byte are looked
	// at closely.
	for i := 0; i < len(codes); i += 8 {
		if i+8 <= len(codes) {
			v := binary.LittleEndian.Uint64(codes[i:])
			if (v-0x0101010101010101)&^v&0x8080808080808080 == 0 {
				continue
			}
		}
		for k := i; k < min(i+8, len(codes)); k++ {
			if codes[k] == 0 && flat[k/8]>>(k%8)&1 != 0 {
				return nil, w.invalid(l, l.Signs, k, "an exact zero (code 0) has its sign bit set")
			}
		}
	}
	if cols%8 == 0 {
		return flat, nil
	}
	signs := make([]byte, rows*stride)
	for r := range rows {
		for j := range cols {
			i := r*cols + j
			signs[r*stride+j/8] |= (flat[i/8] >> (i % 8) & 1) << (j % 8)
		}
	}
	return signs, nil
}

// byteSigns reads the sign bytes of the u8+i8 layout into sign bits,
// checking each element (a sign of -1, 0 or +1, a code from 1 to 255),
// and sets the code of an exact zero (sign 0) to 0, which decodes to 0.
func (w resident) byteSigns(ctx context.Context, l *qins.Logical, codes []byte, rows, cols int) ([]byte, error) {
	stride := matvec.SignStride(cols)
	signs := make([]byte, rows*stride)
	buf := make([]byte, min(len(codes), readChunk))
	for i0 := 0; i0 < len(codes); i0 += len(buf) {
		part := buf[:min(len(buf), len(codes)-i0)]
		if err := readAt(ctx, l.Signs, part, int64(i0)); err != nil {
			return nil, err
		}
		for k, s := range part {
			i := i0 + k
			switch {
			case codes[i] == 0:
				return nil, w.invalid(l, l.Codes, i, "code 0 is not a valid code")
			case s == 0:
				codes[i] = 0
			case s == 0xff:
				r, j := i/cols, i%cols
				signs[r*stride+j/8] |= 1 << (j % 8)
			case s != 1:
				return nil, w.invalid(l, l.Signs, i, fmt.Sprintf("sign %d is not -1, 0 or 1", int8(s)))
			}
		}
	}
	return signs, nil
}

// tables returns the decoding tables of an encoded tensor: one, or one per
// row. Entry c is what code c decodes to with sign +1, rounded to float32
// as a restore to F32 writes it; for the log codec's signed layouts, entry
// 0 is 0 (the code byteSigns and the packed layout give an exact zero).
func (w resident) tables(ctx context.Context, l *qins.Logical, rows int) ([]float32, error) {
	n := 1
	if l.Ranges != nil {
		n = rows
	}
	var ps []quant.Params
	var alphas []float64
	var raw []byte
	switch {
	case l.Ranges == nil:
	case l.Codec == qins.CodecRational:
		alphas = make([]float64, n)
		if err := l.RowAlphas(0, alphas, &raw); err != nil {
			return nil, err
		}
	default:
		ps = make([]quant.Params, n)
		if err := l.RowRanges(0, ps, &raw); err != nil {
			return nil, err
		}
	}
	// The codes each table decodes, with sign +1: every code, but 0 for
	// the log codec's signed layouts (which has no value) and -128 for the
	// i8 layout (which checkI8 refused).
	var codes []uint8
	for c := range 256 {
		if c == 0 && signed(l) || c == 0x80 && l.Layout == qins.LayoutI8 && l.Codec != qins.CodecRational {
			continue
		}
		codes = append(codes, uint8(c))
	}
	ones := make([]int8, len(codes))
	for i := range ones {
		ones[i] = 1
	}
	tables := make([]float32, 256*n)
	workers := min(runtime.GOMAXPROCS(0), max(1, n/256))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for wk := range workers {
		wg.Go(func() {
			q := new(quant.Decoder)
			vals := make([]float64, len(codes))
			for t := wk * n / workers; t < (wk+1)*n/workers; t++ {
				if t%4096 == 0 && ctx.Err() != nil {
					errs[wk] = ctx.Err()
					return
				}
				tab := tables[256*t : 256*(t+1)]
				if signed(l) {
					p := l.Params
					if ps != nil {
						p = ps[t]
					}
					if err := logTable(p, tab); err != nil {
						errs[wk] = w.errorf(l.Name, "row %d: %v", t, err)
						return
					}
					continue
				}
				switch {
				case l.Codec == qins.CodecRational && alphas != nil:
					q.ResetRational(alphas[t])
				case l.Codec == qins.CodecRational:
					q.ResetRational(l.Alpha)
				case l.Layout == qins.LayoutI8 && ps != nil:
					q.ResetI8(ps[t])
				case l.Layout == qins.LayoutI8:
					q.ResetI8(l.Params)
				case ps != nil:
					q.Reset(ps[t])
				default:
					q.Reset(l.Params)
				}
				if err := q.DecodeF32(codes, ones, vals, 0); err != nil {
					errs[wk] = w.errorf(l.Name, "row %d: %v", t, err)
					return
				}
				for i, c := range codes {
					v := float32(vals[i])
					if math.IsInf(float64(v), 0) || v != v {
						errs[wk] = w.errorf(l.Name, "row %d: code %d decodes to %v in F32", t, c, v)
						return
					}
					tab[c] = v
				}
			}
		})
	}
	wg.Wait()
	// The first worker's error names the lowest bad row: one line, the
	// same on every run.
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return tables, nil
}

// logTable sets tab[1..255] to what codes 1..255 decode to with sign +1 in
// the log codec of range p, rounded to float32 as a restore to F32 writes
// them (quant's table builder, exact to the bit).
func logTable(p quant.Params, tab []float32) error {
	t := (*[256]float32)(tab)
	p.MagnitudesF32(t)
	for c := 1; c < 256; c++ {
		if f := t[c]; math.IsInf(float64(f), 0) || f != f {
			return fmt.Errorf("code %d decodes to %v in F32", c, f)
		}
	}
	return nil
}
