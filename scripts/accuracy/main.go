// Command accuracy measures what QINS loses on a checkpoint, with the
// formula's min/max range and with --range mse, per tensor and per row
// (--granularity row), next to two baselines on
// the same tensors: plain BF16 rounding of the values, and a Q8_0-style
// 8-bit code (blocks of 32 weights with one FP16 scale each, as ggml's
// q8_0). The layout does not change the values, only the size. It looks at the tensors `qins convert` encodes by default
// (floating point, rank >= 2) and prints a Markdown table per checkpoint.
//
//	go run ./scripts/accuracy CHECKPOINT [CHECKPOINT...]
//	go run ./scripts/accuracy -q80 OUT.safetensors CHECKPOINT
//
// With -q80 it writes instead a copy of the checkpoint's tensors in which
// every tensor it measures holds its Q8_0-style round trip as F32 (the
// others unchanged), for `qins eval CHECKPOINT OUT.safetensors`.
//
// The Q8_0-style code, exactly: each row (a run of the last dimension) is
// cut into blocks of 32 elements, the last one shorter when the row length
// is not a multiple of 32; per block, in float32, d = max|x|/127, the
// scale stored is d rounded to FP16 (to nearest, ties to even), and each
// element is q = round(x * (1/d)) rounded half to even (ggml's reference
// q8_0 rounds half away from zero; the two differ only on exact ties),
// decoded as q * fp16(d); a block of zeros decodes to zeros. Bits per
// weight: 8 + 16/32 = 8.5.
//
// Every reconstruction is compared as F32, as `qins restore` writes it, and
// measured with the accumulator `qins diff` uses, so the QINS rows equal
// `qins diff` on those tensors.
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/qins-dev/qins/convert/diff"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
	"golang.org/x/sync/errgroup"
)

// chunkElems is a multiple of the Q8_0 block size.
const chunkElems = 1 << 20

// method reconstructs the values of one tensor, chunk by chunk.
type method struct {
	name string
	// bits returns the bits per weight of tensor t (packed layout for QINS).
	bits func(t format.Tensor) float64
	// start returns the reconstruction of one tensor, after an optional
	// pass over it.
	start func(t format.Tensor, buf []byte) (func(a, out []float64, first int64) error, error)
}

func fixedBits(b float64) func(format.Tensor) float64 {
	return func(format.Tensor) float64 { return b }
}

// qinsBits is the packed layout's bits per weight, with one range (two
// float64 in the metadata) per tensor, or two float32 per row.
func qinsBits(rows bool) func(format.Tensor) float64 {
	return func(t format.Tensor) float64 {
		n := float64(t.Elements())
		if rows {
			return 9 + 64*float64(rowsOf(t.Shape))/n
		}
		return 9 + 128/n
	}
}

func rowsOf(shape []uint64) uint64 {
	n := uint64(1)
	for _, d := range shape[:max(len(shape)-1, 0)] {
		n *= d
	}
	return n
}

var methods = []method{
	{"QINS, min/max range (the formula)", qinsBits(false), startQINS(false)},
	{"QINS, --range mse", qinsBits(false), startQINS(true)},
	{"QINS, per row, min/max", qinsBits(true), startRows(false)},
	{"QINS, per row, --range mse", qinsBits(true), startRows(true)},
	{"BF16 rounding", fixedBits(16), func(format.Tensor, []byte) (func(a, out []float64, first int64) error, error) {
		return func(a, out []float64, _ int64) error {
			for i, v := range a {
				out[i] = float64(dtype.BF16ToFloat32(dtype.Float64ToBF16(v)))
			}
			return nil
		}, nil
	}},
	{"Q8_0-style (32-blocks, FP16 scale)", fixedBits(8.5), func(t format.Tensor, _ []byte) (func(a, out []float64, first int64) error, error) {
		n := qins.RowLen(t.Shape)
		return func(a, out []float64, _ int64) error {
			for r := int64(0); r < int64(len(a)); r += n {
				q80(a[r:r+n], out[r:r+n])
			}
			return nil
		}, nil
	}},
}

// q80 is the Q8_0-style round trip of one row (see the package
// documentation).
func q80(a, out []float64) {
	for b := 0; b < len(a); b += 32 {
		blk := a[b:min(b+32, len(a))]
		amax := float32(0)
		for _, v := range blk {
			amax = max(amax, float32(math.Abs(v)))
		}
		d := amax / 127
		id := float32(0)
		if d != 0 {
			id = 1 / d
		}
		dh := dtype.F16ToFloat32(dtype.Float32ToF16(d))
		for i, v := range blk {
			q := float32(math.RoundToEven(float64(float32(v) * id)))
			out[b+i] = float64(q * dh)
		}
	}
}

// startRows returns the start of the per-row QINS method, as `qins convert
// --granularity row` encodes and `qins restore` decodes (F32).
func startRows(mse bool) func(t format.Tensor, buf []byte) (func(a, out []float64, first int64) error, error) {
	return func(t format.Tensor, _ []byte) (func(a, out []float64, first int64) error, error) {
		rc, err := quant.NewRowCoder(t.DType)
		if err != nil {
			return nil, err
		}
		put, _ := dtype.Putter(t.DType)
		size := int(t.DType.Size())
		n := int(qins.RowLen(t.Shape))
		raw, codes, signs := make([]byte, n*size), make([]uint8, n), make([]int8, n)
		dec := new(quant.Decoder)
		return func(a, out []float64, first int64) error {
			for r := 0; r < len(a); r += n {
				for i, v := range a[r : r+n] {
					put(raw, i, v)
				}
				p, err := rc.Encode(raw, first+int64(r), mse, codes, signs)
				if err != nil {
					return err
				}
				dec.Reset(p)
				if err := dec.DecodeF32(codes, signs, out[r:r+n], first+int64(r)); err != nil {
					return err
				}
			}
			return nil
		}, nil
	}
}

// startQINS returns the start of the QINS method: the range pass over t,
// then the encode-decode of its chunks, with the min/max or the mse range.
func startQINS(mse bool) func(t format.Tensor, buf []byte) (func(a, out []float64, first int64) error, error) {
	return func(t format.Tensor, buf []byte) (func(a, out []float64, first int64) error, error) {
		return qinsCodec(t, buf, mse)
	}
}

func qinsCodec(t format.Tensor, buf []byte, mse bool) (func(a, out []float64, first int64) error, error) {
	scan, err := quant.NewScanner(t.DType)
	if err != nil {
		return nil, err
	}
	r := t.Section()
	size := int64(t.DType.Size())
	step := int64(len(buf)) / size * size
	for off := int64(0); off < r.Size(); off += step {
		n := min(step, r.Size()-off)
		if _, err := r.ReadAt(buf[:n], off); err != nil {
			return nil, err
		}
		scan.Scan(buf[:n], off/size)
	}
	params := scan.Params
	if mse {
		params = scan.MSEParams
	}
	p, err := params()
	if err != nil {
		return nil, err
	}
	enc := scan.EncoderFor(p)
	dec := quant.NewDecoder(p)
	put, _ := dtype.Putter(t.DType)
	var raw []byte
	var codes []uint8
	var signs []int8
	return func(a, out []float64, first int64) error {
		n := len(a)
		if len(codes) < n {
			raw = make([]byte, n*int(t.DType.Size()))
			codes, signs = make([]uint8, n), make([]int8, n)
		}
		// a holds the stored values exactly, so storing them back gives
		// the encoder the same bytes the file holds.
		for i, v := range a {
			put(raw, i, v)
		}
		enc.Encode(raw[:n*int(t.DType.Size())], codes[:n], signs[:n])
		if err := dec.Decode(codes[:n], signs[:n], out[:n], first); err != nil {
			return err
		}
		for i, v := range out[:n] {
			out[i] = float64(float32(v))
		}
		return nil
	}, nil
}

type result struct {
	name  string
	stats []*diff.Accumulator // per method
}

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: accuracy CHECKPOINT [CHECKPOINT...]\n       accuracy -q80 OUT.safetensors CHECKPOINT")
	}
	q80Out := flag.String("q80", "", "write the Q8_0-style round trip of CHECKPOINT to this file instead")
	flag.Parse()
	if flag.NArg() == 0 || (*q80Out != "" && flag.NArg() != 1) {
		flag.Usage()
		os.Exit(2)
	}
	if *q80Out != "" {
		if err := writeQ80(*q80Out, flag.Arg(0)); err != nil {
			fmt.Fprintln(os.Stderr, "accuracy:", err)
			os.Exit(1)
		}
		return
	}
	for _, p := range flag.Args() {
		if err := report(os.Stdout, p); err != nil {
			fmt.Fprintln(os.Stderr, "accuracy:", err)
			os.Exit(1)
		}
	}
}

// report prints the accuracy of every method on the measured tensors of
// the checkpoint at path.
func report(w io.Writer, path string) error {
	c, err := format.OpenCheckpoint(path)
	if err != nil {
		return err
	}
	defer c.Close()
	var todo []format.Tensor
	for _, t := range c.Tensors {
		if measured(t) {
			todo = append(todo, t)
		}
	}
	results, err := measureAll(todo)
	if err != nil {
		return err
	}
	var elems uint64
	for _, t := range todo {
		elems += t.Elements()
	}
	fmt.Fprintf(w, "%s: %d tensors, %d weights\n\n", c.Path, len(todo), elems)
	printTotals(w, todo, results, elems)
	printWorst(w, results)
	return nil
}

// measureAll measures the tensors todo on one goroutine per core.
func measureAll(todo []format.Tensor) ([]result, error) {
	results := make([]result, len(todo))
	var next atomic.Int64
	var g errgroup.Group
	for range runtime.GOMAXPROCS(0) {
		g.Go(func() error {
			buf := make([]byte, chunkElems*8)
			a, out := make([]float64, chunkElems), make([]float64, chunkElems)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(todo) {
					return nil
				}
				r, err := measure(todo[i], buf, a, out)
				if err != nil {
					next.Store(int64(len(todo)))
					return fmt.Errorf("%s: tensor %q: %v", todo[i].File.Path, todo[i].Name, err)
				}
				results[i] = r
			}
		})
	}
	return results, g.Wait()
}

// printTotals prints the table of each method over all tensors.
func printTotals(w io.Writer, todo []format.Tensor, results []result, elems uint64) {
	fmt.Fprintln(w, "| method | bits/weight (QINS: packed) | rel_rmse | SNR dB | cosine | max_abs_err | worst tensor (SNR dB) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for m := range methods {
		total := diff.NewAccumulator()
		worst, worstSNR := "", math.Inf(1)
		for _, r := range results {
			total.Merge(r.stats[m])
			if s := r.stats[m].Stats(); float64(s.SNRdB) < worstSNR {
				worst, worstSNR = r.name, float64(s.SNRdB)
			}
		}
		var bits float64
		for _, t := range todo {
			bits += methods[m].bits(t) * float64(t.Elements())
		}
		s := total.Stats()
		worstCol := fmt.Sprintf("%s (%.2f)", worst, worstSNR)
		if s.Exact {
			worstCol = "- (every tensor exact)"
		}
		fmt.Fprintf(w, "| %s | %.3f | %.4f | %s | %.6f | %.4g | %s |\n",
			methods[m].name, bits/float64(elems), float64(s.RelRMSE), snr(s), float64(s.Cosine), float64(s.MaxAbsErr), worstCol)
	}
}

// printWorst prints the three tensors QINS (min/max) encodes worst, with
// every method's SNR on them.
func printWorst(w io.Writer, results []result) {
	sort.SliceStable(results, func(i, j int) bool {
		return results[i].stats[0].Stats().SNRdB < results[j].stats[0].Stats().SNRdB
	})
	fmt.Fprintf(w, "\nQINS (min/max), the worst tensors:\n\n| tensor |")
	for m := range methods {
		fmt.Fprintf(w, " %s SNR dB |", methods[m].name)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", len(methods)))
	for _, r := range results[:min(3, len(results))] {
		fmt.Fprintf(w, "| %s |", r.name)
		for m := range methods {
			fmt.Fprintf(w, " %s |", snr(r.stats[m].Stats()))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

func snr(s diff.Stats) string {
	if s.Exact {
		return "exact"
	}
	return fmt.Sprintf("%.2f", float64(s.SNRdB))
}

// measure reconstructs one tensor with every method.
func measure(t format.Tensor, buf []byte, a, out []float64) (result, error) {
	read, err := dtype.Reader(t.DType)
	if err != nil {
		return result{}, err
	}
	res := result{name: t.Name}
	recon := make([]func(a, out []float64, first int64) error, len(methods))
	for m := range methods {
		if recon[m], err = methods[m].start(t, buf); err != nil {
			return result{}, err
		}
		res.stats = append(res.stats, diff.NewAccumulator())
	}
	size := int64(t.DType.Size())
	n := int64(t.Elements())
	r := t.Section()
	step := max(1, chunkElems/max(qins.RowLen(t.Shape), 1)) * max(qins.RowLen(t.Shape), 1)
	if step > int64(len(a)) {
		buf, a, out = make([]byte, step*8), make([]float64, step), make([]float64, step)
	}
	for off := int64(0); off < n; off += step {
		m := min(step, n-off)
		if _, err := r.ReadAt(buf[:m*size], off*size); err != nil {
			return result{}, err
		}
		read(buf[:m*size], a[:m])
		for k := range methods {
			if err := recon[k](a[:m], out[:m], off); err != nil {
				return result{}, err
			}
			part := diff.NewAccumulator()
			part.Add(a[:m], out[:m], off)
			res.stats[k].Merge(part)
		}
	}
	return res, nil
}

// writeQ80 writes to dst the tensors of the checkpoint at src, those the
// report measures as their Q8_0-style round trip in F32, the others
// unchanged, row by row.
func writeQ80(dst, src string) error {
	c, err := format.OpenCheckpoint(src)
	if err != nil {
		return err
	}
	defer c.Close()
	infos := make([]format.TensorInfo, len(c.Tensors))
	for i, t := range c.Tensors {
		infos[i] = format.TensorInfo{Name: t.Name, DType: t.DType, Shape: t.Shape}
		if measured(t) {
			infos[i].DType = dtype.F32
		}
	}
	w, err := format.Create(dst, c.Metadata, infos, format.CreateOptions{})
	if err != nil {
		return err
	}
	defer w.Abort()
	for k, t := range c.Tensors {
		sec := t.Section()
		if !measured(t) {
			b := make([]byte, sec.Size())
			if _, err := sec.ReadAt(b, 0); err != nil {
				return err
			}
			if err := w.WriteAt(k, b, 0); err != nil {
				return err
			}
			continue
		}
		read, err := dtype.Reader(t.DType)
		if err != nil {
			return err
		}
		size, n := int64(t.DType.Size()), qins.RowLen(t.Shape)
		raw, a, out, f32 := make([]byte, n*size), make([]float64, n), make([]float64, n), make([]byte, 4*n)
		for r := int64(0); r < int64(rowsOf(t.Shape)); r++ {
			if _, err := sec.ReadAt(raw, r*n*size); err != nil {
				return err
			}
			read(raw, a)
			q80(a, out)
			for i, v := range out {
				binary.LittleEndian.PutUint32(f32[4*i:], math.Float32bits(float32(v)))
			}
			if err := w.WriteAt(k, f32, 4*r*n); err != nil {
				return err
			}
		}
	}
	return w.Commit()
}

// measured reports whether the report measures tensor t: floating point,
// rank 2 or more, as `qins convert` encodes by default.
func measured(t format.Tensor) bool { return t.DType.IsFloat() && len(t.Shape) >= 2 }
