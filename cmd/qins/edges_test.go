package main

import (
	"encoding/binary"
	"encoding/json"
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

// TestRestoreWarnsUnmarkedPairs restores a QINS file holding pairs of
// codes and signs that no qins:NAME entry marks: they are copied, with
// one warning line on stderr naming them printably, the first few and a
// count (issue 23).
func TestRestoreWarnsUnmarkedPairs(t *testing.T) {
	write := func(path string, pairs []string) {
		t.Helper()
		type entry struct {
			DType   string   `json:"dtype"`
			Shape   []uint64 `json:"shape"`
			Offsets [2]int   `json:"data_offsets"`
		}
		h := map[string]any{"__metadata__": map[string]string{"qins": "1", "qins:w": `{"log_min":-3,"log_max":0,"dtype":"F32"}`}}
		off := 0
		add := func(name, dt string, n int) {
			h[name] = entry{dt, []uint64{uint64(n)}, [2]int{off, off + n}}
			off += n
		}
		add("w.qins", "U8", 2)
		add("w.sign", "I8", 2)
		for _, p := range pairs {
			add(p+".qins", "U8", 9)
			add(p+".signbits", "U8", 2)
		}
		js, _ := json.Marshal(h)
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
		data := make([]byte, off)
		data[0], data[1] = 1, 1 // w's codes; every other byte 0 is valid
		if err := os.WriteFile(path, append(append(b, js...), data...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		pairs []string
		want  string // the warning, after "qins: warning: "
	}{
		{"none", nil, ""},
		{"hostile name", []string{"evil\x1b[2J\nname", "plain"},
			`2 tensor(s) stored as QINS codes and signs without their qins:NAME metadata were copied as plain tensors, not decoded (has the file lost that metadata?): "evil\x1b[2J\nname", plain`},
		{"many", []string{"p1", "p2", "p3", "p4", "p5", "p6", "p7"},
			`7 tensor(s) stored as QINS codes and signs without their qins:NAME metadata were copied as plain tensors, not decoded (has the file lost that metadata?): p1, p2, p3, p4, p5 and 2 more`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(dir, tc.name+".safetensors")
			write(in, tc.pairs)
			for _, quiet := range []bool{true, false} { // a warning shows even with -q
				args := []string{"restore", in, "-o", filepath.Join(dir, tc.name+".restored.safetensors"), "--force"}
				if quiet {
					args = append(args, "-q")
				}
				code, _, errs := runQINS(t, args...)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, errs)
				}
				want := ""
				if tc.want != "" {
					want = "qins: warning: " + tc.want + "\n"
				}
				if errs != want {
					t.Errorf("quiet %v: stderr\n%q\nwant\n%q", quiet, errs, want)
				}
			}
		})
	}
}

// TestSideFileErrorsPrintable converts model folders whose side files or
// own name hold an ESC and a newline: each error is one line, its names
// quoted, none repeated unquoted (issue 23).
func TestSideFileErrorsPrintable(t *testing.T) {
	model, err := os.ReadFile(filepath.Join(tiny, "model-00002-of-00002.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	mkModel := func(dir string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), model, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base := t.TempDir()
	dangling := filepath.Join(base, "m")
	mkModel(dangling)
	if err := os.Symlink("nowhere\x1b[0m\nX", filepath.Join(dangling, "tok\x1b[31m\nY.json")); err != nil {
		t.Fatal(err)
	}
	weird := filepath.Join(base, "n\x1b[1m\nZ")
	mkModel(weird)
	for _, tc := range []struct {
		name   string
		args   []string
		want   string
		quoted int // names quoted in the message
	}{
		// The link's target is not named: only the link, once.
		{"dangling link", []string{"convert", dangling, "-o", filepath.Join(base, "out")}, `/m/tok\x1b[31m\nY.json": is a symbolic link that cannot be followed: no such file or directory`, 1},
		{"output inside the input folder", []string{"convert", weird, "-o", filepath.Join(weird, "out")}, `/out": is inside the input folder "` + base + `/n\x1b[1m\nZ"; write the output elsewhere`, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := runQINS(t, tc.args...)
			if code != 1 {
				t.Fatalf("exit %d: %q", code, errs)
			}
			if strings.ContainsAny(errs, "\x1b\r") || !strings.HasSuffix(errs, "\n") || strings.Count(errs, "\n") != strings.Count(errs, "\nhint: ")+1 {
				t.Errorf("stderr not printable lines: %q", errs)
			}
			if !strings.Contains(errs, tc.want) || strings.Count(errs, "\\x1b[") != tc.quoted {
				t.Errorf("stderr %q\nwant %q, %d name(s) quoted", errs, tc.want, tc.quoted)
			}
		})
	}
}
