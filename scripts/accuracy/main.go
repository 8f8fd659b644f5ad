// Command accuracy measures what QINS loses on a checkpoint, with the
// formula's min/max range and with --range mse, next to two baselines on
// the same tensors: plain BF16 rounding of the values, and a Q8_0-style
// 8-bit code (blocks of 32 weights with one FP16 scale each, as ggml's
// q8_0). The layout does not change the values, only the size. It looks at the tensors `qins convert` encodes by default
// (floating point, rank >= 2) and prints a Markdown table per checkpoint.
//
//	go run ./scripts/accuracy CHECKPOINT [CHECKPOINT...]
//
// Every reconstruction is compared as F32, as `qins restore` writes it, and
// measured with the accumulator `qins diff` uses, so the QINS rows equal
// `qins diff` on those tensors.
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/qins-dev/qins/convert"
	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/quant"
)

// chunkElems is a multiple of the Q8_0 block size.
const chunkElems = 1 << 20

// method reconstructs the values of one tensor, chunk by chunk.
type method struct {
	name, bits string
	// start returns the reconstruction of one tensor, after an optional
	// pass over it.
	start func(t format.Tensor, buf []byte) (func(a, out []float64, first int64) error, error)
}

var methods = []method{
	{"QINS, min/max range (the formula)", "16 (u8+i8) or 9 (packed)", startQINS(false)},
	{"QINS, --range mse", "16 (u8+i8) or 9 (packed)", startQINS(true)},
	{"BF16 rounding", "16", func(format.Tensor, []byte) (func(a, out []float64, first int64) error, error) {
		return func(a, out []float64, _ int64) error {
			for i, v := range a {
				out[i] = float64(quant.BF16ToFloat32(quant.Float64ToBF16(v)))
			}
			return nil
		}, nil
	}},
	{"Q8_0-style (32-blocks, FP16 scale)", "8.5", func(format.Tensor, []byte) (func(a, out []float64, first int64) error, error) {
		return q80, nil
	}},
}

// q80 quantizes blocks of 32 as ggml's reference q8_0 does, in float32:
// d = max|x|/127, q = round(x/d), value = q * fp16(d).
func q80(a, out []float64, _ int64) error {
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
		dh := quant.F16ToFloat32(quant.Float32ToF16(d))
		for i, v := range blk {
			q := float32(math.Round(float64(float32(v) * id)))
			out[b+i] = float64(q * dh)
		}
	}
	return nil
}

// startQINS returns the start of the QINS method: the range pass over t,
// then the encode-decode of its chunks, with the min/max or the mse range.
func startQINS(mse bool) func(t format.Tensor, buf []byte) (func(a, out []float64, first int64) error, error) {
	return func(t format.Tensor, buf []byte) (func(a, out []float64, first int64) error, error) {
		return qins(t, buf, mse)
	}
}

func qins(t format.Tensor, buf []byte, mse bool) (func(a, out []float64, first int64) error, error) {
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
	put, _ := quant.Putter(t.DType)
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
	stats []*convert.Accumulator // per method
}

func main() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: accuracy CHECKPOINT [CHECKPOINT...]")
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	for _, p := range flag.Args() {
		if err := report(os.Stdout, p); err != nil {
			fmt.Fprintln(os.Stderr, "accuracy:", err)
			os.Exit(1)
		}
	}
}

func report(w io.Writer, path string) error {
	c, err := format.OpenCheckpoint(path)
	if err != nil {
		return err
	}
	defer c.Close()
	var todo []format.Tensor
	for _, t := range c.Tensors {
		if quant.IsFloat(t.DType) && len(t.Shape) >= 2 {
			todo = append(todo, t)
		}
	}
	results := make([]result, len(todo))
	var next int
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, chunkElems*8)
			a, out := make([]float64, chunkElems), make([]float64, chunkElems)
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(todo) {
					return
				}
				r, err := measure(todo[i], buf, a, out)
				if err != nil {
					mu.Lock()
					firstErr = fmt.Errorf("%s: tensor %q: %v", todo[i].File.Path, todo[i].Name, err)
					next = len(todo)
					mu.Unlock()
					return
				}
				results[i] = r
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	var elems uint64
	for _, t := range todo {
		elems += t.Elements()
	}
	fmt.Fprintf(w, "%s: %d tensors, %d weights\n\n", c.Path, len(todo), elems)
	fmt.Fprintln(w, "| method | bits/weight | rel_rmse | SNR dB | cosine | max_abs_err | worst tensor (SNR dB) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	for m := range methods {
		total := convert.NewAccumulator()
		worst, worstSNR := "", math.Inf(1)
		for _, r := range results {
			total.Merge(r.stats[m])
			if s := r.stats[m].Stats(); float64(s.SNRdB) < worstSNR {
				worst, worstSNR = r.name, float64(s.SNRdB)
			}
		}
		s := total.Stats()
		worstCol := fmt.Sprintf("%s (%.2f)", worst, worstSNR)
		if s.Exact {
			worstCol = "- (every tensor exact)"
		}
		fmt.Fprintf(w, "| %s | %s | %.4f | %s | %.6f | %.4g | %s |\n",
			methods[m].name, methods[m].bits, float64(s.RelRMSE), snr(s), float64(s.Cosine), float64(s.MaxAbsErr), worstCol)
	}
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
	return nil
}

func snr(s convert.DiffStats) string {
	if s.Exact {
		return "exact"
	}
	return fmt.Sprintf("%.2f", float64(s.SNRdB))
}

// measure reconstructs one tensor with every method.
func measure(t format.Tensor, buf []byte, a, out []float64) (result, error) {
	read, err := quant.Reader(t.DType)
	if err != nil {
		return result{}, err
	}
	res := result{name: t.Name}
	recon := make([]func(a, out []float64, first int64) error, len(methods))
	for m := range methods {
		if recon[m], err = methods[m].start(t, buf); err != nil {
			return result{}, err
		}
		res.stats = append(res.stats, convert.NewAccumulator())
	}
	size := int64(t.DType.Size())
	n := int64(t.Elements())
	r := t.Section()
	for off := int64(0); off < n; off += chunkElems {
		m := min(chunkElems, n-off)
		if _, err := r.ReadAt(buf[:m*size], off*size); err != nil {
			return result{}, err
		}
		read(buf[:m*size], a[:m])
		for k := range methods {
			if err := recon[k](a[:m], out[:m], off); err != nil {
				return result{}, err
			}
			part := convert.NewAccumulator()
			part.Add(a[:m], out[:m], off)
			res.stats[k].Merge(part)
		}
	}
	return res, nil
}
