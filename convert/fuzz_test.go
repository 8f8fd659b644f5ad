package convert

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/qins-dev/qins/convert/diff"
	"github.com/qins-dev/qins/format"
)

// FuzzQINSFile feeds arbitrary files to the QINS reader: inspect, restore
// and diff must return an error or a valid result, never panic, and a
// failed restore leaves nothing behind.
func FuzzQINSFile(f *testing.F) {
	for _, p := range []string{smallQINS, smallSrc, smallRows, smallRational, smallI8, smallRationalRows, filepath.Join(newDTypesDir, "model.safetensors")} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Each run writes and syncs files: on a memory filesystem when there is
	// one, so that the fuzzer spends its time in the code, not on a disk.
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		dir, err := os.MkdirTemp(base, "qins-fuzz-")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		in := filepath.Join(dir, "in.safetensors")
		if err := os.WriteFile(in, b, 0o644); err != nil {
			t.Fatal(err)
		}
		rep, ierr := Inspect(context.Background(), in)
		out := filepath.Join(dir, "out.safetensors")
		_, rerr := Restore(context.Background(), in, out, RestoreOptions{})
		if rerr != nil {
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Fatalf("failed restore left %d files", len(ents))
			}
		} else {
			if ierr != nil {
				t.Fatalf("restore accepted what inspect refused: %v", ierr)
			}
			c, err := format.OpenCheckpoint(out)
			if err != nil {
				t.Fatalf("restored file does not open: %v", err)
			}
			if len(c.Tensors) != len(rep.Tensors) {
				t.Fatalf("restored %d tensors, inspect lists %d", len(c.Tensors), len(rep.Tensors))
			}
			// Nothing encoded decodes to an infinity or NaN.
			byName := map[string]*format.Tensor{}
			for i := range c.Tensors {
				byName[c.Tensors[i].Name] = &c.Tensors[i]
			}
			for _, tr := range rep.Tensors {
				x, ok := byName[tr.Name]
				if !tr.Encoded || !ok {
					continue
				}
				b := make([]byte, x.Bytes())
				if _, err := x.Section().ReadAt(b, 0); err != nil {
					t.Fatal(err)
				}
				for i := 0; i+4 <= len(b); i += 4 {
					if v := math.Float32frombits(binary.LittleEndian.Uint32(b[i:])); math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("tensor %q: element %d decodes to %v", tr.Name, i/4, v)
					}
				}
			}
			c.Close()
		}
		if _, err := diff.Diff(context.Background(), in, in, diff.Options{ChunkElems: 7, Workers: 2}); err == nil && ierr != nil {
			t.Fatalf("diff accepted what inspect refused: %v", ierr)
		}
	})
}
