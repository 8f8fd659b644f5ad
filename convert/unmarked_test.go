package convert

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
)

// dropMetadata rewrites the QINS file at path without the metadata
// entries keys, the header padded back to its length so that the data
// stays where it is: a file that lost them.
func dropMetadata(t *testing.T, path string, keys ...string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	var h map[string]json.RawMessage
	if err := json.Unmarshal(raw[8:8+n], &h); err != nil {
		t.Fatal(err)
	}
	var meta map[string]string
	if err := json.Unmarshal(h["__metadata__"], &meta); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if _, ok := meta[k]; !ok {
			t.Fatalf("no metadata %q", k)
		}
		delete(meta, k)
	}
	h["__metadata__"], _ = json.Marshal(meta)
	js, _ := json.Marshal(h)
	js = append(js, strings.Repeat(" ", int(n)-len(js))...)
	out := append(append(binary.LittleEndian.AppendUint64(nil, n), js...), raw[8+n:]...)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreUnmarkedPairs restores QINS files that lost qins:NAME
// entries: the tensors' codes and signs are copied as plain tensors, as
// the format says, and the summary names them (issue 23); a pair of
// another shape, or a complete file, is not named.
func TestRestoreUnmarkedPairs(t *testing.T) {
	all := regexp.MustCompile(".")
	for _, tc := range []struct {
		name string
		opts Options
		drop []string
		want []string
	}{
		{"u8+i8", Options{Include: all}, []string{"model.w", "model.norm"}, []string{"model.norm", "model.w"}},
		{"packed", Options{Include: all, Layout: qins.LayoutPacked}, []string{"model.f16"}, []string{"model.f16"}},
		{"row", Options{Include: all, Granularity: qins.GranularityRow, Layout: qins.LayoutPacked}, []string{"model.const"}, []string{"model.const"}},
		{"complete", Options{Include: all}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			q, r := filepath.Join(dir, "q.safetensors"), filepath.Join(dir, "r.safetensors")
			s, err := Convert(context.Background(), smallSrc, q, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, n := range tc.drop {
				keys = append(keys, qins.ParamsKey(n))
			}
			dropMetadata(t, q, keys...)
			rs, err := Restore(context.Background(), q, r, RestoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rs.Unmarked, tc.want) {
				t.Errorf("unmarked %q, want %q", rs.Unmarked, tc.want)
			}
			if rs.Encoded != s.Encoded-len(tc.drop) {
				t.Errorf("%d decoded, %d encoded less %d", rs.Encoded, s.Encoded, len(tc.drop))
			}
			restored := byName(open(t, r))
			for _, n := range tc.drop {
				if _, ok := restored[n+qins.CodesSuffix]; !ok {
					t.Errorf("%s: codes not copied", n)
				}
			}
		})
	}
}

// TestUnmarkedPairsShapes checks which unmarked pairs unmarkedPairs names:
// only codes U8 with signs I8 of their shape, or sign bits U8 of
// ceil(n/8) bytes.
func TestUnmarkedPairsShapes(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q.safetensors")
	specs := []rawSpec{
		{"a.qins", dtype.U8, []uint64{2, 3}, make([]byte, 6)}, {"a.sign", dtype.I8, []uint64{2, 3}, make([]byte, 6)},
		{"b.qins", dtype.U8, []uint64{10}, make([]byte, 10)}, {"b.signbits", dtype.U8, []uint64{2}, make([]byte, 2)},
		{"c.qins", dtype.U8, []uint64{2, 3}, make([]byte, 6)}, {"c.sign", dtype.I8, []uint64{3, 2}, make([]byte, 6)},
		{"d.qins", dtype.U8, []uint64{10}, make([]byte, 10)}, {"d.signbits", dtype.U8, []uint64{3}, make([]byte, 3)},
		{"e.qins", dtype.I8, []uint64{2}, make([]byte, 2)}, {"e.sign", dtype.I8, []uint64{2}, make([]byte, 2)},
		{"f.qins", dtype.U8, []uint64{2}, make([]byte, 2)}, {"f.sign", dtype.U8, []uint64{2}, make([]byte, 2)},
		{"g.qins", dtype.U8, []uint64{2}, make([]byte, 2)},
		{"h.sign", dtype.I8, []uint64{2}, make([]byte, 2)},
	}
	writeRaw(t, q, specs...)
	_, ls, err := openModel(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if got := unmarkedPairs(ls, qins.VersionRows); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("unmarked %q, want a and b", got)
	}
	// In a version-3 file a lone codes tensor, U8 (rational) or I8 (i8),
	// is what a tensor that lost its entry looks like too.
	if got := unmarkedPairs(ls, qins.VersionRational); !slices.Equal(got, []string{"a", "b", "c", "d", "e", "f", "g"}) {
		t.Errorf("version 3: unmarked %q, want a to g", got)
	}
}
