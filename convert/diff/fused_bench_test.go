package diff

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync/atomic"
	"unsafe"

	"github.com/qins-dev/qins/convert"
	"github.com/qins-dev/qins/convert/internal/testfile"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"math"
	"math/rand/v2"
	"testing"

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

func BenchmarkFusedPairs(b *testing.B) {
	raw, codes, signs, tab := fusedInput(b)
	for _, c := range []struct {
		name string
		f    func(*lanes, []byte, []uint8, []int8, *table, int64) bool
	}{{"go", fusePairsGo}, {"best", fusePairs}} {
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
		var a, b lanes
		a.maxIdx, b.maxIdx = [4]int64{-1, -1, -1, -1}, [4]int64{-1, -1, -1, -1}
		okA := fusePairsGo(&a, raw[:2*n], codes[:n], signs[:n], tab, 6)
		okB := fusePairs(&b, raw[:2*n], codes[:n], signs[:n], tab, 6)
		ea, ia := a.largest()
		eb, ib := b.largest()
		a.maxErr, a.maxIdx, b.maxErr, b.maxIdx = [4]float64{ea}, [4]int64{ia}, [4]float64{eb}, [4]int64{ib}
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

// The fused path gives the float path's report to the bit, on every
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
				if string(a) != string(b) {
					t.Errorf("%s (%s against %s), chunk %d:\n%s\n%s", name, pair[0], pair[1], chunk, a, b)
				}
			}
		}
	}
}
