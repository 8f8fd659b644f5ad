package convert

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/qins-dev/qins/convert/internal/testfile"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
)

// TestInterleave checks that the merged scan and encode steps of two
// tensors cover each exactly once, in order, each within a step of its
// share of the way at every point.
func TestInterleave(t *testing.T) {
	for _, c := range []struct{ sb, si, pb, sp int64 }{
		{4, 16, 4, 16}, {4, 17, 8, 3}, {1, 1, 5, 100}, {10, 1000, 3, 7}, {8, 8, 8, 0}, {6, 0, 2, 9},
	} {
		steps := interleave(nil, 1, c.sb, c.si, 0, c.pb, c.sp)
		n, m := (c.si+c.sb-1)/c.sb, (c.sp+c.pb-1)/c.pb
		if int64(len(steps)) != n+m {
			t.Fatalf("%+v: %d steps, want %d", c, len(steps), n+m)
		}
		var next [2]int64 // bytes covered, of the encode and the scan
		var a, b int64
		for _, s := range steps {
			k, size := s.job, [2]int64{c.sp, c.si}[s.job]
			if want := [2]int{passEncode, passScan}[k]; s.pass != want || s.off != next[k] || s.n <= 0 || s.off+s.n > size {
				t.Fatalf("%+v: step %+v out of place (next byte %d)", c, s, next[k])
			}
			next[k] += s.n
			if k == 1 {
				a++
			} else {
				b++
			}
			// a/n and b/m stay within one step of each other.
			if n > 0 && m > 0 && (a-1)*m > b*n+n || (b-1)*n > a*m+m {
				t.Fatalf("%+v: %d of %d scans beside %d of %d encodes", c, a, n, b, m)
			}
		}
		if next[0] != c.sp || next[1] != c.si {
			t.Fatalf("%+v: covered %v", c, next)
		}
	}
}

// cutAtStart is a Progress that cuts file path short as the work starts,
// after the checkpoint was opened and planned.
type cutAtStart struct {
	t    *testing.T
	path string
}

func (c cutAtStart) Start(int64) {
	if err := os.Truncate(c.path, 4096); err != nil {
		c.t.Error(err)
	}
}

func (cutAtStart) Add(int64) {}

// TestSourceCutShort checks that a source cut short during a conversion
// is an error naming it, not a crash: the range pass reads the file's
// mapping, where the missing pages fault.
func TestSourceCutShort(t *testing.T) {
	for _, opts := range []Options{
		{},
		{Layout: qins.LayoutPacked, Range: qins.RangeMSE},
		{Layout: qins.LayoutPacked, Granularity: qins.GranularityRow, Range: qins.RangeMSE},
		{Codec: qins.CodecRational, Alpha: 1},
	} {
		dir := t.TempDir()
		vals := make([]float64, 256*1024)
		for i := range vals {
			vals[i] = float64(i%251-125) / 128
		}
		src := testfile.Write(t, filepath.Join(dir, "src.safetensors"),
			testfile.T("a", dtype.BF16, []uint64{512, 512}, vals),
			testfile.T("b", dtype.BF16, []uint64{512, 512}, vals))
		dst := filepath.Join(dir, "out.safetensors")
		opts.Progress = cutAtStart{t, src}
		_, err := Convert(context.Background(), src, dst, opts)
		if err == nil || !strings.Contains(err.Error(), src) || !strings.Contains(err.Error(), "changed while") {
			t.Errorf("%+v: error %v, want one saying that %s changed", opts, err, src)
		}
		if _, serr := os.Stat(dst); !os.IsNotExist(serr) {
			t.Errorf("%+v: output left behind (%v)", opts, serr)
		}
	}
}

// TestOnePassEmpty: with a given alpha the rational codec takes no range
// pass; tensors of no elements beside one with data still get that alpha,
// every chunk size gives the same file, and it restores.
func TestOnePassEmpty(t *testing.T) {
	put, _ := dtype.Putter(dtype.F64)
	data := make([]byte, 8*40)
	for i := range 40 {
		put(data, i, float64(i%9)-4.5)
	}
	specs := []rawSpec{{"w", dtype.F64, []uint64{5, 8}, data}}
	for i, sh := range [][]uint64{{5, 0}, {0, 5}, {0}} {
		specs = append(specs, rawSpec{"e" + string(rune('0'+i)), dtype.BF16, sh, nil})
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src.safetensors")
	writeRaw(t, src, specs...)
	var first []byte
	for _, chunk := range []int{0, 8, 24, 1000} {
		q := filepath.Join(dir, "q.safetensors")
		opts := Options{WriteOptions: WriteOptions{ChunkBytes: chunk, Workers: 3, Force: true}, Codec: qins.CodecRational, Alpha: 0.5, Include: regexp.MustCompile(".")}
		if _, err := Convert(context.Background(), src, q, opts); err != nil {
			t.Fatal(err)
		}
		ls, err := qins.Logicals(context.Background(), open(t, q))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls {
			if !l.Encoded() || l.Alpha != 0.5 {
				t.Errorf("chunk %d: %s: encoded %v, alpha %v; want alpha 0.5", chunk, l.Name, l.Encoded(), l.Alpha)
			}
		}
		b, err := os.ReadFile(q)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Errorf("chunk %d: another file than the default chunk's", chunk)
		}
		if _, err := Restore(context.Background(), q, filepath.Join(dir, "r.safetensors"), RestoreOptions{WriteOptions: WriteOptions{Force: true}}); err != nil {
			t.Errorf("chunk %d: restore: %v", chunk, err)
		}
	}
}
