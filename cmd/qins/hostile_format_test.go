package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/qins-dev/qins/format"
)

// stFile returns a safetensors file of header h and data.
func stFile(h string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	return append(append(b, h...), data...)
}

// qinsFile returns a QINS file whose tensor w has the "qins:w" value meta
// and the given entries and data.
func qinsFile(meta, entries string, data []byte) []byte {
	m, _ := json.Marshal(meta)
	return stFile(`{"__metadata__":{"qins":"1","qins:w":`+string(m)+`},`+entries+`}`, data)
}

const u8i8Entries = `"w.qins":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"w.sign":{"dtype":"I8","shape":[2],"data_offsets":[2,4]}`

// names returns the sorted tensor names of a checkpoint.
func names(t *testing.T, path string) []string {
	t.Helper()
	c, err := format.OpenCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []string
	for _, x := range c.Tensors {
		out = append(out, x.Name)
	}
	sort.Strings(out)
	return out
}

// TestNamesRoundTrip: a tensor is encoded only where "qins:NAME" says so,
// so source tensors named like the layout's parts convert, read back, and
// restore under their own names (issue 16, item 6).
func TestNamesRoundTrip(t *testing.T) {
	var data []byte
	f32 := func(vals ...float32) {
		for _, v := range vals {
			data = binary.LittleEndian.AppendUint32(data, math.Float32bits(v))
		}
	}
	f32(0.5, -0.25, 0, 2)              // attention.weight [2,2]: encoded
	f32(1, -3, 0.125, 0)               // emb.qins [2,2]: encoded, as emb.qins.qins
	data = append(data, 1, 0xff, 0, 1) // attention.sign I8 [4]
	data = append(data, 7, 8, 9)       // vocab.qins U8 [3]
	data = append(data, 0xff)          // x.signbits U8 [1]
	h := `{"__metadata__":{"format":"pt"},` +
		`"attention.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},` +
		`"emb.qins":{"dtype":"F32","shape":[2,2],"data_offsets":[16,32]},` +
		`"attention.sign":{"dtype":"I8","shape":[4],"data_offsets":[32,36]},` +
		`"vocab.qins":{"dtype":"U8","shape":[3],"data_offsets":[36,39]},` +
		`"x.signbits":{"dtype":"U8","shape":[1],"data_offsets":[39,40]}}`
	dir := t.TempDir()
	src := filepath.Join(dir, "src.safetensors")
	if err := os.WriteFile(src, stFile(h, data), 0o644); err != nil {
		t.Fatal(err)
	}
	want := strings.Join(names(t, src), ",")
	for _, layout := range []string{"u8+i8", "packed"} {
		q := filepath.Join(dir, layout+".qins.safetensors")
		back := filepath.Join(dir, layout+".restored.safetensors")
		for _, args := range [][]string{
			{"convert", src, "-o", q, "--layout", layout, "--quiet"},
			{"inspect", q},
			{"restore", q, "-o", back, "--quiet"},
			{"diff", src, q},
			{"diff", src, back},
		} {
			if code, _, errs := runQINS(t, args...); code != 0 {
				t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errs)
			}
		}
		if got := strings.Join(names(t, back), ","); got != want {
			t.Errorf("%s: restored names %s, source %s", layout, got, want)
		}
		_, out, _ := runQINS(t, "inspect", q, "--json")
		var r struct{ Tensors []struct{ Name string } }
		if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Tensors) != 5 {
			t.Errorf("%s: inspect lists %+v (%v), want the 5 source tensors", layout, r.Tensors, err)
		}
	}
}

// TestNameCollision: a tensor whose codes or signs would take the name of
// another tensor is refused with the flag that avoids it, before anything
// is written; with that flag the checkpoint round-trips.
func TestNameCollision(t *testing.T) {
	for _, c := range []struct {
		other string
		opts  []string
	}{
		{"x.qins", nil},
		{"x.sign", []string{"--layout", "u8+i8"}},
		{"x.sign", []string{"--reference"}},
		{"x.signbits", nil},                              // the default layout is packed
		{"x.logrange", []string{"--granularity", "row"}}, // rows of 2 take a range each only when asked
		{"x.logrange", []string{"--layout", "i8", "--granularity", "row"}},
	} {
		other := c.other
		h := `{"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"` + other + `":{"dtype":"U8","shape":[4],"data_offsets":[16,20]}}`
		dir := t.TempDir()
		src := filepath.Join(dir, "src.safetensors")
		if err := os.WriteFile(src, stFile(h, bytes.Repeat([]byte{0x3f}, 20)), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "out.qins.safetensors")
		code, _, errs := runQINS(t, append([]string{"convert", src, "-o", out}, c.opts...)...)
		if code != 1 || !strings.Contains(errs, `tensor "x"`) || !strings.Contains(errs, `"`+other+`"`) || !strings.Contains(errs, `--exclude '^x$'`) || len(files(t, dir)) != 1 {
			t.Errorf("%s: exit %d, %q, files %v: want exit 1 naming x, it and the --exclude that avoids it, and no output", other, code, errs, files(t, dir))
		}
		if code, _, errs := runQINS(t, append([]string{"convert", src, "-o", out, "--exclude", "^x$", "--quiet"}, c.opts...)...); code != 0 {
			t.Fatalf("%s: with --exclude: exit %d: %s", other, code, errs)
		}
		back := filepath.Join(dir, "back.safetensors")
		if code, _, errs := runQINS(t, "restore", out, "-o", back, "--quiet"); code != 0 || strings.Join(names(t, back), ",") != strings.Join(names(t, src), ",") {
			t.Errorf("%s: restore exit %d (%s), names %v", other, code, errs, names(t, back))
		}
	}
}

// TestHostileQINSMetadata: every command refuses, in one line naming the
// file and the tensor, a QINS file whose metadata another reader would read
// differently (case-folded or duplicate keys: item 8), or which decodes to
// infinities or NaN (item 7), or whose packed sign bits are not 0 where the
// format says so. The internal "quant:" messages never show.
func TestHostileQINSMetadata(t *testing.T) {
	u8i8 := func(meta string) []byte { return qinsFile(meta, u8i8Entries, []byte{1, 2, 1, 0xff}) }
	packedMeta := `{"log_min":-3,"log_max":0,"dtype":"F32","layout":"packed"}`
	packed := func(bits byte) []byte {
		return qinsFile(packedMeta, `"w.qins":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"w.signbits":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}`, []byte{5, 0, 7, bits})
	}
	cases := []struct {
		name     string
		file     []byte
		want     string
		dataOnly bool // only the commands that read the codes see it
	}{
		{"upper-case key", u8i8(`{"log_min":-10.74,"log_max":1.55,"dtype":"F32","LOG_MAX":50}`), `unknown key "LOG_MAX"`, false},
		{"case-folded key", u8i8(`{"Log_Min":-10.74,"log_max":1.55,"dtype":"F32"}`), `unknown key "Log_Min"`, false},
		{"duplicate qins key", u8i8(`{"log_min":-10.74,"log_max":1.55,"dtype":"F32","log_max":50}`), `"log_max" twice`, false},
		{"unknown qins key", u8i8(`{"log_min":-10.74,"log_max":1.55,"dtype":"F32","scale":1}`), `unknown key "scale"`, false},
		{"huge log_min", u8i8(`{"log_min":-1e999,"log_max":1.55,"dtype":"F32"}`), "out of the range", false},
		{"log_max 1000", u8i8(`{"log_min":-10.74,"log_max":1000,"dtype":"F32"}`), "beyond the largest F32", false},
		{"log_max beyond F32", u8i8(`{"log_min":-10.74,"log_max":88.8,"dtype":"F32"}`), "beyond the largest F32", false},
		{"range to NaN", u8i8(`{"log_min":-1e308,"log_max":1e308,"dtype":"F32"}`), "too far apart", false},
		{"duplicate tensor key", stFile(`{"__metadata__":{"qins":"1","qins:w":"{\"log_min\":-3,\"log_max\":0,\"dtype\":\"F32\"}"},"w.qins":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"dtype":"I8"},"w.sign":{"dtype":"I8","shape":[2],"data_offsets":[2,4]}}`, []byte{1, 2, 1, 1}), `duplicate key "dtype"`, false},
		{"duplicate metadata key", stFile(`{"__metadata__":{"qins":"1","qins":"1"}}`, nil), `duplicate key "qins"`, false},
		{"packed zero with sign bit", packed(0b010), "element 1: an exact zero (code 0) has its sign bit set", true},
		{"packed padding bit", packed(0b1000), "padding bits", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "in.safetensors")
			if err := os.WriteFile(in, c.file, 0o444); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out.safetensors")
			for _, args := range [][]string{{"inspect", in}, {"restore", in, "-o", out}, {"diff", in, in}} {
				if c.dataOnly && args[0] == "inspect" {
					continue // inspect reads no data
				}
				code, _, errs := runQINS(t, args...)
				want := 1
				if args[0] == "diff" {
					want = 2
				}
				lines := strings.Split(strings.TrimRight(errs, "\n"), "\n")
				if code != want || len(lines) != 1 || !strings.Contains(errs, in) || !strings.Contains(errs, c.want) || strings.Contains(errs, "quant:") {
					t.Errorf("%s: exit %d (want %d), stderr %q: want one line naming %s and %q", args[0], code, want, errs, in, c.want)
				}
				if c.name != "duplicate metadata key" && !strings.Contains(errs, `tensor "w`) {
					t.Errorf("%s: %q does not name the tensor", args[0], errs)
				}
				if got := files(t, dir); len(got) != 1 {
					t.Errorf("%s left %v behind", args[0], got)
				}
			}
		})
	}
	// The valid variants read.
	dir := t.TempDir()
	for name, b := range map[string][]byte{"packed": packed(0b001), "u8+i8": u8i8(`{"log_min":-10.74,"log_max":1.55,"dtype":"F32","layout":"u8+i8","range":"minmax"}`)} {
		in := filepath.Join(dir, name+".safetensors")
		os.WriteFile(in, b, 0o644)
		if code, _, errs := runQINS(t, "restore", in, "-o", in+".out", "--quiet"); code != 0 {
			t.Errorf("%s: valid file refused: %s", name, errs)
		}
	}
}

// TestRestoreDTypeRange: a tensor whose values do not fit the dtype asked
// for is an error naming it, not a file of infinities.
func TestRestoreDTypeRange(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.safetensors")
	// exp(20) = 4.85e8 fits F32 and BF16, not F16.
	if err := os.WriteFile(in, qinsFile(`{"log_min":-3,"log_max":20,"dtype":"F32"}`, u8i8Entries, []byte{1, 2, 1, 1}), 0o644); err != nil {
		t.Fatal(err)
	}
	for dt, ok := range map[string]bool{"F32": true, "BF16": true, "F64": true, "F16": false} {
		out := filepath.Join(dir, dt+".safetensors")
		code, _, errs := runQINS(t, "restore", in, "-o", out, "--dtype", dt, "--quiet")
		if ok != (code == 0) || (!ok && (!strings.Contains(errs, `tensor "w"`) || !strings.Contains(errs, "cannot be restored to F16"))) {
			t.Errorf("--dtype %s: exit %d, %q", dt, code, errs)
		}
	}
}

// TestNamesInShardedFolders: the name rules hold when the output is a
// folder split into shards: a clash is refused whatever the split, and a
// tensor that merely ends in another layout's suffix beside an encoded one
// round-trips.
func TestNamesInShardedFolders(t *testing.T) {
	var data []byte
	for i := range 32 {
		data = binary.LittleEndian.AppendUint32(data, math.Float32bits(float32(i+1)/8))
	}
	data = append(data, bytes.Repeat([]byte{1}, 4)...)
	h := `{"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,64]},` +
		`"v":{"dtype":"F32","shape":[4,4],"data_offsets":[64,128]},` +
		`"w.signbits":{"dtype":"U8","shape":[4],"data_offsets":[128,132]}}`
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	if err := os.WriteFile(filepath.Join(src, "model.safetensors"), stFile(h, data), 0o644); err != nil {
		t.Fatal(err)
	}
	// u8+i8: w.signbits is an ordinary tensor beside the encoded w.
	q := filepath.Join(dir, "a.qins")
	back := filepath.Join(dir, "a.restored")
	for _, args := range [][]string{
		{"convert", src, "-o", q, "--max-shard-size", "40", "--quiet", "--reference"},
		{"inspect", q},
		{"restore", q, "-o", back, "--quiet"},
		{"diff", src, q},
	} {
		if code, _, errs := runQINS(t, args...); code != 0 {
			t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errs)
		}
	}
	if shards, _ := filepath.Glob(filepath.Join(q, "*.safetensors")); len(shards) < 2 {
		t.Errorf("want several shards, got %v", shards)
	}
	// packed (the default): w's sign bits would take w.signbits's name,
	// in any shard.
	out := filepath.Join(dir, "b.qins")
	code, _, errs := runQINS(t, "convert", src, "-o", out, "--max-shard-size", "40")
	if code != 1 || !strings.Contains(errs, `"w.signbits"`) {
		t.Errorf("packed, sharded: exit %d, %q: want the clash refused", code, errs)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was written", out)
	}
}
