package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRowGranularityEmptyTensor converts a tensor of rows of no elements
// (a last dimension of 0) with one range per row, in every layout and
// range, as the default granularity converts it, and reads it back with
// restore, diff and inspect (issue 23).
func TestRowGranularityEmptyTensor(t *testing.T) {
	for _, shape := range [][]uint64{{5, 0}, {0, 5}, {2, 0, 3}} {
		dir := t.TempDir()
		src := filepath.Join(dir, "empty.safetensors")
		writeF32(t, src, "e", shape, nil)
		for _, layout := range []string{"u8+i8", "packed"} {
			for _, rng := range []string{"minmax", "mse"} {
				q := filepath.Join(dir, layout+"-"+rng+".safetensors")
				r := filepath.Join(dir, layout+"-"+rng+".restored.safetensors")
				steps := [][]string{
					{"convert", "-q", src, "-o", q, "--granularity", "row", "--layout", layout, "--range", rng, "--include", "."},
					{"restore", "-q", q, "-o", r},
					{"diff", "-q", src, q},
					{"diff", "-q", q, r, "--max-rel-rmse", "0"},
					{"inspect", q},
				}
				for _, args := range steps {
					if code, out, errs := runQINS(t, args...); code != 0 {
						t.Fatalf("%v %s: exit %d\n%s%s", shape, strings.Join(args, " "), code, out, errs)
					}
				}
				if _, out, _ := runQINS(t, "inspect", q); !strings.Contains(out, "QINS version 2") {
					t.Errorf("%v %s %s: inspect:\n%s", shape, layout, rng, out)
				}
			}
		}
	}
}

// TestRowGranularityNothingEncoded converts a checkpoint with nothing to
// encode with one range per row: the output is QINS version 1, the least
// version that describes it (issue 23).
func TestRowGranularityNothingEncoded(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "ints.safetensors")
	h := `{"ids":{"dtype":"I64","shape":[2,2],"data_offsets":[0,32]},"mask":{"dtype":"U8","shape":[2,4],"data_offsets":[32,40]}}`
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	b = append(append(b, h...), make([]byte, 40)...)
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	q := filepath.Join(dir, "q.safetensors")
	if code, _, errs := runQINS(t, "convert", "-q", src, "-o", q, "--granularity", "row"); code != 0 {
		t.Fatalf("convert: exit %d: %s", code, errs)
	}
	if _, out, _ := runQINS(t, "inspect", q); !strings.Contains(out, "QINS version 1") {
		t.Errorf("inspect:\n%s", out)
	}
}
