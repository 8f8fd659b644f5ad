package eval

import (
	"bufio"
	"context"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/qins-dev/qins/convert"
	"github.com/qins-dev/qins/convert/eval/internal/model"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

// residentVariants writes stories260K (F32, with a down_proj of 172
// columns: rows whose sign bits do not start on a byte) in every QINS
// codec, layout and granularity, and restored to F16, BF16 and F64, and
// returns the paths by name; the tiny Phi-3.5 (BF16) too.
func residentVariants(t *testing.T, only ...string) map[string]string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	out := map[string]string{"F32": stories, "BF16 phi": tiny}
	for name, o := range map[string]convert.Options{
		"u8+i8 tensor":     {},
		"u8+i8 rows":       {Granularity: qins.GranularityRow},
		"packed tensor":    {Layout: qins.LayoutPacked},
		"packed rows mse":  {Layout: qins.LayoutPacked, Granularity: qins.GranularityRow, Range: qins.RangeMSE},
		"i8 tensor":        {Layout: qins.LayoutI8},
		"i8 rows":          {Layout: qins.LayoutI8, Granularity: qins.GranularityRow},
		"rational tensor":  {Codec: qins.CodecRational},
		"rational rows":    {Codec: qins.CodecRational, Granularity: qins.GranularityRow},
		"phi packed rows":  {Layout: qins.LayoutPacked, Granularity: qins.GranularityRow},
		"rational alpha 1": {Codec: qins.CodecRational, Alpha: 1},
	} {
		if only != nil && !slices.Contains(only, name) {
			continue
		}
		src := stories
		if strings.HasPrefix(name, "phi") {
			src = tiny
		}
		q := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".qins.safetensors")
		if _, err := convert.Convert(ctx, src, q, o); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = q
	}
	for _, dt := range []dtype.DType{dtype.F16, dtype.BF16, dtype.F64} {
		if only != nil && !slices.Contains(only, dt.String()) {
			continue
		}
		p := filepath.Join(dir, dt.String()+".safetensors")
		if _, err := convert.Restore(ctx, out["u8+i8 rows"], p, convert.RestoreOptions{DType: dt}); err != nil {
			t.Fatal(err)
		}
		out[dt.String()] = p
	}
	return out
}

// TestResidentDecodeExact checks that every matrix kept in memory holds
// exactly the values a read gives (what a restore to F32 writes), for
// every stored form, that StoredBytes is its memory, and that MulVec is
// their product within float32 rounding.
func TestResidentDecodeExact(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 8))
	for name, path := range residentVariants(t) {
		t.Run(name, func(t *testing.T) {
			w, err := OpenWeights(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			rw := resident{w}
			for _, tn := range w.Names() {
				s, _ := w.Shape(tn)
				if len(s) != 2 || strings.HasSuffix(tn, ".logrange") {
					continue
				}
				rows, cols := s[0], s[1]
				mat, err := rw.LoadMatrix(ctx, tn)
				if err != nil {
					t.Fatalf("%s: %v", tn, err)
				}
				if got, want := mat.Bytes(), rw.StoredBytes(tn); got != want {
					t.Errorf("%s: %d bytes in memory, StoredBytes %d", tn, got, want)
				}
				want := make([]float32, rows*cols)
				if err := w.Read(ctx, tn, want); err != nil {
					t.Fatal(err)
				}
				got := make([]float32, rows*cols)
				mat.DecodeRows(0, rows, got)
				for i := range got {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s: element %d is %v (%#08x) in memory, %v (%#08x) read", tn, i, got[i], math.Float32bits(got[i]), want[i], math.Float32bits(want[i]))
					}
				}
				x := make([]float32, cols)
				for i := range x {
					x[i] = float32(r.NormFloat64())
				}
				y := make([]float32, rows)
				mat.MulVec(y, x)
				for i := range rows {
					var dot, mag float64
					for j := range cols {
						p := float64(want[i*cols+j]) * float64(x[j])
						dot += p
						mag += math.Abs(p)
					}
					if d := math.Abs(float64(y[i]) - dot); d > float64(cols+2)*0x1p-24*mag {
						t.Fatalf("%s: row %d: MulVec %v, decoded dot %v", tn, i, y[i], dot)
					}
				}
			}
		})
	}
}

// TestResidentEval checks that eval's generations are the same with the
// weights resident as streamed, and that the report says which.
func TestResidentEval(t *testing.T) {
	ctx := context.Background()
	names := []string{"packed rows mse", "i8 rows", "rational tensor", "u8+i8 tensor", "u8+i8 rows", "F16"}
	vs := residentVariants(t, names...)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			res, err := Eval(ctx, stories, vs[name], Options{Generate: 40, Memory: 1 << 30})
			if err != nil {
				t.Fatal(err)
			}
			str, err := Eval(ctx, stories, vs[name], Options{Generate: 40, Memory: 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				r    *Report
				want bool
			}{{res, true}, {str, false}} {
				m := c.r.Memory
				if m == nil || m.Ref == nil || m.Ref.Resident != c.want || m.Ref.Bytes <= 0 || m.Cand != nil && m.Cand.Resident != c.want {
					t.Fatalf("budget %d: Memory %+v %+v", m.Budget, m.Ref, m.Cand)
				}
			}
			if !slices.Equal(res.IDs, str.IDs) || !slices.Equal(res.Greedy.CandIDs, str.Greedy.CandIDs) {
				t.Errorf("resident: %v then %v; streamed: %v then %v", res.IDs, res.Greedy.CandIDs, str.IDs, str.Greedy.CandIDs)
			}
			// With a prompt of 16 tokens and CAND's whole generation.
			ids, _ := expected(t)
			ids = ids[:60]
			res, err = Eval(ctx, stories, vs[name], Options{Tokens: ids, Generate: 30, Memory: 1 << 30})
			if err != nil {
				t.Fatal(err)
			}
			str, err = Eval(ctx, stories, vs[name], Options{Tokens: ids, Generate: 30, Memory: 1})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Memory.Cand.Resident || str.Memory.Cand.Resident {
				t.Fatalf("CAND resident %v with 1 GiB, %v with 1 byte", res.Memory.Cand.Resident, str.Memory.Cand.Resident)
			}
			if !slices.Equal(res.Greedy.RefIDs, str.Greedy.RefIDs) || !slices.Equal(res.Greedy.CandIDs, str.Greedy.CandIDs) {
				t.Errorf("resident: %v, %v; streamed: %v, %v", res.Greedy.RefIDs, res.Greedy.CandIDs, str.Greedy.RefIDs, str.Greedy.CandIDs)
			}
		})
	}
}

// TestResidentInvalid checks that loading refuses the codes and signs a
// read refuses, naming the file and tensor.
func TestResidentInvalid(t *testing.T) {
	ctx := context.Background()
	vs := residentVariants(t, "u8+i8 tensor", "i8 tensor", "packed tensor")
	const tn = "model.layers.1.mlp.down_proj.weight"
	type write struct {
		part string
		b    byte
		at   int64 // byte of the part
	}
	for _, c := range []struct {
		variant string
		writes  []write
		want    string
	}{
		{"u8+i8 tensor", []write{{".sign", 2, 5}}, "sign 2 is not -1, 0 or 1"},
		{"u8+i8 tensor", []write{{".qins", 0, 7}}, "code 0 is not a valid code"},
		{"i8 tensor", []write{{".qins", 0x80, 3}}, "i8 code -128"},
		{"packed tensor", []write{{".qins", 0, 9}, {".signbits", 2, 1}}, "an exact zero (code 0) has its sign bit set"},
	} {
		t.Run(c.want, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.safetensors")
			copyFile(t, vs[c.variant], p)
			w, err := OpenWeights(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			l, _ := w.t.Tensor(tn)
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, wr := range c.writes {
				part := l.Codes
				if wr.part != ".qins" {
					part = l.Signs
				}
				_, off, _ := part.Section().Outer()
				if _, err := f.WriteAt([]byte{wr.b}, off+wr.at); err != nil {
					t.Fatal(err)
				}
			}
			f.Close()
			w.Close()
			if w, err = OpenWeights(ctx, p); err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			_, err = resident{w}.LoadMatrix(ctx, tn)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), tn) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %v, want one naming %s, %s and %q", err, p, tn, c.want)
			}
			if rerr := w.Read(ctx, tn, make([]float32, 64*172)); rerr == nil {
				t.Fatalf("a read takes what loading refuses")
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

var _ model.Resident = resident{}

func TestMemAvailable(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"MemTotal:       24000000 kB\nMemAvailable:   2000 kB\n", 2000 << 10, true},
		{"MemTotal: 1 kB\n", 0, false},
		{"MemAvailable: x kB\n", 0, false},
		{"MemAvailable: 12 MB\n", 0, false},
	} {
		got, ok := memAvailable(bufioScanner(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("%q: %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
	if DefaultMemory() <= 0 {
		t.Errorf("DefaultMemory %d", DefaultMemory())
	}
}

func bufioScanner(s string) *bufio.Scanner { return bufio.NewScanner(strings.NewReader(s)) }

// TestLogTable checks the tables built by products against Magnitude,
// value by value, over ranges of every width a checkpoint gives, the
// mse range's low log_min included.
func TestLogTable(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var tab [256]float32
	for i := range 20000 {
		hi := r.Float64()*12 - 10
		lo := hi - r.Float64()*math.Exp(r.Float64()*6-3)*10
		if i%10 == 0 {
			lo = hi // one magnitude
		}
		p := quant.Params{LogMin: lo, LogMax: hi}
		if err := logTable(p, tab[:]); err != nil {
			t.Fatal(err)
		}
		for c := 1; c < 256; c++ {
			if want := float32(p.Magnitude(uint8(c))); tab[c] != want {
				t.Fatalf("range %+v code %d: %v, Magnitude %v", p, c, tab[c], want)
			}
		}
	}
}
