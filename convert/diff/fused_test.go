package diff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/qins-dev/qins/convert"
	"github.com/qins-dev/qins/convert/internal/testfile"
	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

// fusedInput is a chunk of 1<<16 BF16 values of one row range, their
// codes and signs, and the table decoding them.
func fusedInput(tb testing.TB) (raw []byte, codes []uint8, signs []int8, tab *table) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 1 << 16
	raw = make([]byte, 2*n)
	codes, signs = make([]uint8, n), make([]int8, n)
	p := quant.Params{LogMin: math.Log(1e-5), LogMax: math.Log(0.1)}
	for i := range n {
		v := float32(0.02 * r.NormFloat64())
		b := math.Float32bits(v) >> 16
		raw[2*i], raw[2*i+1] = byte(b), byte(b>>8)
		codes[i] = p.Code(math.Abs(float64(v)))
		signs[i] = quant.Sign(float64(v))
		if signs[i] == 0 {
			codes[i] = 255
		}
	}
	tab = newTable()
	*(*[3][256]float64)(unsafe.Pointer(tab)) = *quant.NewDecoder(p).TableF32()
	return raw, codes, signs, tab
}

// BenchmarkFusedPairs times the kernels on a chunk: "go" and "avx2" keep
// Add's order of additions, "best" is fuseRun, "magnitudes" fuseRunMag,
// "packed" fuseRunPacked (AVX-512 where it runs; both build their input
// in the loop).
func BenchmarkFusedPairs(b *testing.B) {
	raw, codes, signs, tab := fusedInput(b)
	for _, c := range []struct {
		name string
		f    func(*lanes, []byte, []uint8, []int8, *table, int64) bool
	}{{"go", fusePairsGo}, {"avx2", fusePairs}, {"best", fuseRun}, {"magnitudes", magRun}, {"packed", packedRun}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(codes)) * 4) // a BF16 value, a code and a sign
			for b.Loop() {
				var l lanes
				c.f(&l, raw, codes, signs, tab, 0)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(codes)), "ns/elem")
		})
	}
}

// The kernel of the platform (AVX on amd64) gives fusePairsGo's lanes to
// the bit, and stops at an invalid sign.
func TestFusePairsKernel(t *testing.T) {
	raw, codes, signs, tab := fusedInput(t)
	// Ties of the largest error, zeros of both signs, equal values.
	for _, i := range []int{100, 101, 4000, 4003} {
		raw[2*i], raw[2*i+1] = 0, 0x40 // 2.0
		codes[i], signs[i] = 255, -1
	}
	raw[2*7], raw[2*7+1], signs[7] = 0, 0x80, 0 // -0 against +0
	for _, n := range []int{0, 2, 4, 6, 64, 1002, len(codes)} {
		a, b := newLanes(), newLanes()
		okA := fusePairsGo(&a, raw[:2*n], codes[:n], signs[:n], tab, 6)
		okB := fusePairs(&b, raw[:2*n], codes[:n], signs[:n], tab, 6)
		ea, ia := a.largest()
		eb, ib := b.largest()
		a.maxErr, a.maxIdx, b.maxErr, b.maxIdx = [8]float64{ea}, [8]int64{ia}, [8]float64{eb}, [8]int64{ib}
		if !okA || !okB || a != b || n > 200 && ia < 0 {
			t.Errorf("%d elements: %v %v\n%+v\n%+v", n, okA, okB, a, b)
		}
	}
	bad := append([]int8(nil), signs...)
	bad[501] = 2
	// An invalid sign: Go and AVX stop, AVX2 reads NaN; either way the
	// chunk goes to the float path.
	var l lanes
	ok := fusePairs(&l, raw, codes, bad, tab, 0)
	if s := l.sumAbs[0] + l.sumAbs[1]; ok && !math.IsNaN(s) {
		t.Errorf("sign 2 passes: %v", s)
	}
	if fusePairsGo(&l, raw, codes, bad, tab, 0) {
		t.Error("sign 2 passes the Go code")
	}
}

// The fused path gives the float path's report to the bit (within 1e-12
// relative on the sums with AVX-512), on every
// layout and granularity it takes, either way round, at chunk sizes that
// split rows at odd positions, and hands chunks with a NaN or an
// infinity to the float path.
func TestDiffFusedIsFloatPath(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	conv := func(name string, src string, o convert.Options) string {
		p := filepath.Join(dir, name)
		if _, err := convert.Convert(ctx, src, p, o); err != nil {
			t.Fatal(err)
		}
		return p
	}
	r := rand.New(rand.NewPCG(3, 4))
	v := make([]float64, 37*129)
	for i := range v {
		v[i] = 0.02 * r.NormFloat64()
	}
	x := v[:13*129]
	clean := testfile.Write(t, filepath.Join(dir, "clean.safetensors"), testfile.T("w", dtype.BF16, []uint64{37, 129}, v), testfile.T("x", dtype.BF16, []uint64{13, 129}, x))
	w := append([]float64(nil), v...)
	w[40], w[41], w[3000] = math.NaN(), math.Inf(1), math.Inf(-1)
	dirty := testfile.Write(t, filepath.Join(dir, "dirty.safetensors"), testfile.T("w", dtype.BF16, []uint64{37, 129}, w), testfile.T("x", dtype.BF16, []uint64{13, 129}, x))
	files := map[string]string{
		"reference":     conv("reference.safetensors", tinyDir, convert.Options{}),
		"qins default":  conv("default.safetensors", tinyDir, convert.Options{Layout: qins.LayoutPacked, Granularity: qins.GranularityRow, Range: qins.RangeMSE}),
		"u8+i8 row":     conv("u8i8row.safetensors", tinyDir, convert.Options{Layout: qins.LayoutU8I8, Granularity: qins.GranularityRow}),
		"u8+i8 tensor":  conv("u8i8.safetensors", tinyDir, convert.Options{Layout: qins.LayoutU8I8, Granularity: qins.GranularityTensor}),
		"packed tensor": conv("packed.safetensors", tinyDir, convert.Options{Layout: qins.LayoutPacked, Granularity: qins.GranularityTensor}),
		"odd rows":      conv("odd.safetensors", clean, convert.Options{Granularity: qins.GranularityRow}),
	}
	for name, q := range files {
		src := tinyDir
		if name == "odd rows" {
			src = dirty
		}
		for _, pair := range [][2]string{{src, q}, {q, src}} {
			for _, chunk := range []int{3, 1000, 0} {
				var fused atomic.Int64
				got, err := diffWith(ctx, pair[0], pair[1], Options{ChunkElems: chunk}, testHooks{histMin: 1 << 62, fused: &fused})
				if err != nil {
					t.Fatal(err)
				}
				want, err := diffWith(ctx, pair[0], pair[1], Options{ChunkElems: chunk}, testHooks{floatOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				if fused.Load() == 0 {
					t.Errorf("%s, chunk %d: no chunk took the fused path", name, chunk)
				}
				a, _ := json.Marshal(got)
				b, _ := json.Marshal(want)
				if avx512 {
					// Eight lanes and fused products: the same figures
					// but for the last digits.
					if err := sameReport(a, b, 1e-12); err != nil {
						t.Errorf("%s (%s against %s), chunk %d: %v", name, pair[0], pair[1], chunk, err)
					}
				} else if string(a) != string(b) {
					t.Errorf("%s (%s against %s), chunk %d:\n%s\n%s", name, pair[0], pair[1], chunk, a, b)
				}
			}
		}
	}
}

// fuseRun, whichever kernel it takes (AVX-512, AVX2, Go), gives the sums
// of the decoded values within 1e-12 relative of a compensated sum (each
// term is exact in float64: a BF16 value times a float32 one), and the
// largest error, that error's first position and the identical count of
// Accumulator.Add exactly, on runs of lengths 0 to 65536 at odd and even
// positions; an invalid sign or code makes its sums NaN or stops it.
func TestFuseRunMatchesAdd(t *testing.T) {
	raw, codes, signs, tab := fusedInput(t)
	for _, i := range []int{100, 101, 4000, 4003, 4011} { // ties of the largest error
		raw[2*i], raw[2*i+1] = 0, 0x40 // 2.0
		codes[i], signs[i] = 255, -1
	}
	raw[2*7], raw[2*7+1], signs[7] = 0, 0x80, 0 // -0 against +0
	for i := 200; i < 300; i++ {                // equal values
		raw[2*i], raw[2*i+1], signs[i] = 0, 0, 0
	}
	for _, c := range []struct{ off, n int }{{0, 0}, {0, 7}, {1, 8}, {3, 17}, {0, 64}, {5, 1003}, {96, 4000}, {0, len(codes)}} {
		x, y := make([]float64, c.n), make([]float64, c.n)
		for i := range c.n {
			j := c.off + i
			x[i] = float64(math.Float32frombits(uint32(raw[2*j])<<16 | uint32(raw[2*j+1])<<24))
			y[i] = tab[uint8(signs[j])+1][codes[j]]
		}
		want := NewAccumulator()
		want.Add(x, y, int64(c.off))
		for _, run := range []struct {
			name string
			f    func(*lanes, []byte, []uint8, []int8, *table, int64) bool
		}{{"table", fuseRun}, {"magnitudes", magRun}, {"packed", packedRun}} {
			l := newLanes()
			if !run.f(&l, raw[2*c.off:2*(c.off+c.n)], codes[c.off:c.off+c.n], signs[c.off:c.off+c.n], tab, int64(c.off)) {
				t.Fatalf("%s %+v: stopped", run.name, c)
			}
			e, i := l.largest()
			if e != want.maxErr || i != want.maxIdx || l.identical != want.identical {
				t.Errorf("%s %+v: largest %v at %d, %d identical; Add: %v at %d, %d", run.name, c, e, i, l.identical, want.maxErr, want.maxIdx, want.identical)
			}
			for _, s := range []struct {
				name      string
				got, want float64
			}{{"sumAbs", sum(&l.sumAbs), exactSum(x, y, func(a, b float64) float64 { return math.Abs(a - b) })},
				{"sse", sum(&l.sse), exactSum(x, y, func(a, b float64) float64 { return (a - b) * (a - b) })},
				{"sa2", sum(&l.sa2), exactSum(x, y, func(a, b float64) float64 { return a * a })},
				{"sb2", sum(&l.sb2), exactSum(x, y, func(a, b float64) float64 { return b * b })},
				{"sab", sum(&l.sab), exactSum(x, y, func(a, b float64) float64 { return a * b })}} {
				if d := math.Abs(s.got - s.want); !(d <= 1e-12*math.Abs(s.want)) {
					t.Errorf("%s %+v: %s %v, the exact sum's %v (%.3g relative)", run.name, c, s.name, s.got, s.want, d/math.Abs(s.want))
				}
			}
		}
	}
	for _, bad := range []func(){func() { signs[501] = 2 }, func() { codes[502], signs[502] = 0, 1 }} {
		s, k := append([]int8(nil), signs...), append([]uint8(nil), codes...)
		bad()
		for _, f := range []func(*lanes, []byte, []uint8, []int8, *table, int64) bool{fuseRun, magRun, packedRun} {
			l := newLanes()
			if f(&l, raw, codes, signs, tab, 0) && !math.IsNaN(sum(&l.sumAbs)) {
				t.Errorf("an invalid element passes: %v", sum(&l.sumAbs))
			}
		}
		copy(signs, s)
		copy(codes, k)
	}
}

// exactSum is the sum of f over the pairs of x and y, compensated
// (Neumaier): within an ulp or so of the exact sum.
func exactSum(x, y []float64, f func(a, b float64) float64) float64 {
	var s, c float64
	for i := range x {
		v := f(x[i], y[i])
		t := s + v
		if math.Abs(s) >= math.Abs(v) {
			c += (s - t) + v
		} else {
			c += (v - t) + s
		}
		s = t
	}
	return s + c
}

// sameReport returns an error unless the JSON reports a and b are equal
// but for numbers within tol relative of each other.
func sameReport(a, b []byte, tol float64) error {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		return err
	}
	if err := json.Unmarshal(b, &y); err != nil {
		return err
	}
	return sameJSON("", x, y, tol)
}

func sameJSON(path string, x, y any, tol float64) error {
	switch x := x.(type) {
	case map[string]any:
		y, ok := y.(map[string]any)
		if !ok || len(x) != len(y) {
			return fmt.Errorf("%s: %v against %v", path, x, y)
		}
		for k := range x {
			if err := sameJSON(path+"."+k, x[k], y[k], tol); err != nil {
				return err
			}
		}
	case []any:
		y, ok := y.([]any)
		if !ok || len(x) != len(y) {
			return fmt.Errorf("%s: %v against %v", path, x, y)
		}
		for i := range x {
			if err := sameJSON(fmt.Sprintf("%s[%d]", path, i), x[i], y[i], tol); err != nil {
				return err
			}
		}
	case float64:
		y, ok := y.(float64)
		if !ok || !(math.Abs(x-y) <= tol*math.Max(math.Abs(x), math.Abs(y))) {
			return fmt.Errorf("%s: %v against %v", path, x, y)
		}
	default:
		if x != y {
			return fmt.Errorf("%s: %v against %v", path, x, y)
		}
	}
	return nil
}

// magRun is fuseRunMag on the magnitudes of tab.
func magRun(l *lanes, raw []byte, codes []uint8, signs []int8, tab *table, first int64) bool {
	var mag [256]float32
	for c := range mag {
		mag[c] = float32(tab[2][c])
	}
	return fuseRunMag(l, raw, codes, signs, &mag, first)
}

// packedRun is fuseRunPacked on the packed layout of codes and signs,
// its bits starting at bit first%8+3 of their first byte: code 0 for sign
// 0, and code 0 with its bit set for an invalid code or sign.
func packedRun(l *lanes, raw []byte, codes []uint8, signs []int8, tab *table, first int64) bool {
	var mag [256]float32
	for c := 1; c < 256; c++ {
		mag[c] = float32(tab[2][c])
	}
	off := int(first%8) + 3
	pc, bits := make([]uint8, len(codes)), make([]byte, (off+len(codes)+7)/8)
	for i, c := range codes {
		p := off + i
		switch s := signs[i]; {
		case c == 0 || s < -1 || s > 1:
			pc[i], bits[p>>3] = 0, bits[p>>3]|1<<(p&7)
		case s == 0:
			pc[i] = 0
		case s < 0:
			pc[i], bits[p>>3] = c, bits[p>>3]|1<<(p&7)
		default:
			pc[i] = c
		}
	}
	return fuseRunPacked(l, raw, pc, bits, off, &mag, first)
}

// A BF16 file cut short after it was opened (and mapped): the fused path
// reports an error instead of crashing on the fault.
func TestFusedFileCutShort(t *testing.T) {
	if !avx512 {
		t.Skip("the fused path reads mappings where AVX-512 runs; elsewhere ReadAt reports a short file")
	}
	ctx := context.Background()
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(5, 6))
	v := make([]float64, 64*1024)
	for i := range v {
		v[i] = 0.02 * r.NormFloat64()
	}
	src := testfile.Write(t, filepath.Join(dir, "w.safetensors"), testfile.T("w", dtype.BF16, []uint64{64, 1024}, v))
	q := filepath.Join(dir, "w.qins.safetensors")
	if _, err := convert.Convert(ctx, src, q, convert.Options{Granularity: qins.GranularityRow}); err != nil {
		t.Fatal(err)
	}
	ra, err := qins.Open(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer ra.Close()
	rb, err := qins.Open(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer rb.Close()
	if err := os.Truncate(src, 4096); err != nil {
		t.Fatal(err)
	}
	sa, err := qins.NewSource(&ra.Tensors[0])
	if err != nil {
		t.Fatal(err)
	}
	sb, err := qins.NewSource(&rb.Tensors[0])
	if err != nil {
		t.Fatal(err)
	}
	var buf diffBufs
	var p Accumulator
	ok, err := fusedChunk(sa, sb, false, 32*1024, 32*1024, &buf, &p)
	if ok || !errors.Is(err, format.ErrMappingFault) {
		t.Fatalf("a file cut short: %v, %v", ok, err)
	}
}

// cutOnStart is a Progress that cuts file path short when the diff
// starts, after both files were opened.
type cutOnStart struct {
	t    *testing.T
	path string
}

func (c cutOnStart) Start(int64) {
	if err := os.Truncate(c.path, 4096); err != nil {
		c.t.Fatal(err)
	}
}

func (cutOnStart) Add(int64) {}

// A diff whose file is cut short while it runs names that file (and the
// tensor), not both sides, whichever side it is.
func TestDiffNamesTheFileCutShort(t *testing.T) {
	if !avx512 {
		t.Skip("the fused path reads mappings where AVX-512 runs; elsewhere ReadAt reports a short file")
	}
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 8))
	v := make([]float64, 64*1024)
	for i := range v {
		v[i] = 0.02 * r.NormFloat64()
	}
	for _, c := range []struct {
		name    string
		cutQINS bool
	}{{"BF16 cut", false}, {"QINS cut", true}} {
		for _, swap := range []bool{false, true} {
			dir := t.TempDir()
			src := testfile.Write(t, filepath.Join(dir, "w.safetensors"), testfile.T("w", dtype.BF16, []uint64{64, 1024}, v))
			q := filepath.Join(dir, "w.qins.safetensors")
			if _, err := convert.Convert(ctx, src, q, convert.Options{Granularity: qins.GranularityTensor}); err != nil {
				t.Fatal(err)
			}
			cut, other := src, q
			if c.cutQINS {
				cut, other = q, src
			}
			a, b := src, q
			if swap {
				a, b = q, src
			}
			_, err := diffWith(ctx, a, b, Options{Progress: cutOnStart{t, cut}}, testHooks{histMin: 1 << 62})
			if err == nil || !strings.Contains(err.Error(), cut) || strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), `"w"`) {
				t.Errorf("%s, swap %v: %v; want an error naming %s and w only", c.name, swap, err, cut)
			}
		}
	}
}

// TestDiffPerTensorTakesFused: a BF16 tensor against a per-tensor QINS
// one, large enough for the pair counts, takes the fused path where
// AVX-512 runs (faster there) and the pair counts elsewhere.
func TestDiffPerTensorTakesFused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, layout := range []qins.Layout{qins.LayoutU8I8, qins.LayoutPacked} {
		q := filepath.Join(dir, layout.String()+".safetensors")
		if _, err := convert.Convert(ctx, tinyDir, q, convert.Options{Layout: layout}); err != nil {
			t.Fatal(err)
		}
		var fused atomic.Int64
		if _, err := diffWith(ctx, tinyDir, q, Options{}, testHooks{histMin: 1, fused: &fused}); err != nil {
			t.Fatal(err)
		}
		if got := fused.Load() > 0; got != avx512 {
			t.Errorf("%v: fused path taken %v, want %v (AVX-512 %v)", layout, got, avx512, avx512)
		}
	}
}
