package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tiny = "../../testdata/phi-3.5-mini-tiny"

// qins runs the command line in-process and returns its exit status and
// output.
func runQINS(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"qins"}, args...), &out, &errb)
	if strings.Contains(errb.String(), "goroutine ") || strings.Contains(errb.String(), "panic") {
		t.Fatalf("panic trace on stderr:\n%s", errb.String())
	}
	return code, out.String(), errb.String()
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestConvertRestoreInspect(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "tiny.qins.safetensors")
	r := filepath.Join(dir, "tiny.f32.safetensors")
	// Flags after the positional argument, as people type them.
	code, out, errs := runQINS(t, "convert", tiny, "-o", q)
	if code != 0 {
		t.Fatalf("convert: exit %d: %s", code, errs)
	}
	for _, want := range []string{"130 encoded, 65 copied", "the source", "of FP32", "MB/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if errs != "" {
		t.Errorf("stderr not empty when it is not a terminal: %q", errs)
	}
	// Flags first works too.
	if code, _, errs := runQINS(t, "restore", "-o", r, "--dtype", "f32", q); code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errs)
	}
	code, out, _ = runQINS(t, "inspect", q, "--json")
	if code != 0 {
		t.Fatalf("inspect: exit %d", code)
	}
	var rep struct {
		QINS    bool `json:"qins"`
		Tensors []struct {
			Name    string   `json:"name"`
			Encoded bool     `json:"encoded"`
			LogMin  *float64 `json:"log_min"`
		} `json:"tensors"`
		Total struct{ Tensors, Encoded int } `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, out)
	}
	if !rep.QINS || rep.Total.Tensors != 195 || rep.Total.Encoded != 130 {
		t.Errorf("inspect: %+v", rep.Total)
	}
	code, out, _ = runQINS(t, "inspect", r)
	if code != 0 || !strings.Contains(out, "lm_head.weight") || !strings.Contains(out, "F32") {
		t.Errorf("inspect text: exit %d\n%s", code, out)
	}
}

func TestDefaultOutputBesideSource(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "one.safetensors")
	b, _ := os.ReadFile(filepath.Join(tiny, "model-00002-of-00002.safetensors"))
	os.WriteFile(src, b, 0o644)
	if code, _, errs := runQINS(t, "convert", "-q", src); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "one.qins.safetensors")); err != nil {
		t.Error(err)
	}
}

func TestRefusals(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.safetensors")
	os.WriteFile(out, []byte("precious"), 0o644)
	code, _, errs := runQINS(t, "convert", tiny, "-o", out)
	if code != 1 || !strings.Contains(errs, out) || !strings.Contains(errs, "--force") {
		t.Errorf("existing output: exit %d, %q", code, errs)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Error("existing output overwritten without --force")
	}
	if code, _, errs := runQINS(t, "convert", tiny, "-o", out, "--force", "-q"); code != 0 {
		t.Errorf("--force: exit %d: %s", code, errs)
	}

	// The output is one of the inputs: refused even with --force.
	src := filepath.Join(dir, "in.safetensors")
	b, _ := os.ReadFile(filepath.Join(tiny, "model-00002-of-00002.safetensors"))
	os.WriteFile(src, b, 0o644)
	code, _, errs = runQINS(t, "convert", src, "-o", src, "--force")
	if code != 1 || !strings.Contains(errs, "input") {
		t.Errorf("output = input: exit %d, %q", code, errs)
	}
	if after, _ := os.ReadFile(src); !bytes.Equal(after, b) {
		t.Error("input modified")
	}
}

func TestExitCodesAndMessages(t *testing.T) {
	dir := t.TempDir()
	nan := filepath.Join(dir, "nan.safetensors")
	writeF32(t, nan, "layer.weight", []uint64{2, 3}, []float32{1, 2, 3, float32(math.NaN()), 5, 6})
	notQINS := filepath.Join(tiny, "model-00002-of-00002.safetensors")
	cases := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no argument", []string{"convert"}, 2, []string{"needs SRC"}},
		{"two arguments", []string{"convert", "a", "b"}, 2, []string{"takes one SRC"}},
		{"unknown flag", []string{"convert", "--frobnicate", tiny}, 2, []string{"frobnicate"}},
		{"bad regex", []string{"convert", tiny, "--include", "("}, 2, []string{"--include"}},
		{"bad dtype", []string{"restore", notQINS, "-o", filepath.Join(dir, "x"), "--dtype", "I8"}, 2, []string{"--dtype"}},
		{"restore needs -o", []string{"restore", notQINS}, 2, []string{"-o OUT"}},
		{"missing input", []string{"convert", filepath.Join(dir, "nope"), "-o", filepath.Join(dir, "o")}, 1, []string{"nope"}},
		{"NaN", []string{"convert", nan, "-o", filepath.Join(dir, "o")}, 1, []string{nan, `tensor "layer.weight"`, "element 3"}},
		{"restore of a plain file", []string{"restore", notQINS, "-o", filepath.Join(dir, "o")}, 1, []string{"not a QINS file"}},
		// Run in this process: an unknown command must not exit it.
		{"unknown command", []string{"frobnicate", tiny}, 2, []string{"usage error", `no command "frobnicate"`}},
		{"help of an unknown command", []string{"help", "frobnicate"}, 2, []string{"usage error", `no command "frobnicate"`}},
		{"convert of a QINS file", nil, 1, []string{"already a QINS file"}},
	}
	q := filepath.Join(dir, "q.safetensors")
	if code, _, errs := runQINS(t, "convert", "-q", tiny, "-o", q); code != 0 {
		t.Fatal(errs)
	}
	cases[len(cases)-1].args = []string{"convert", q, "-o", filepath.Join(dir, "o")}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := files(t, dir)
			code, _, errs := runQINS(t, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr %q", code, c.code, errs)
			}
			first := strings.SplitN(errs, "\n", 2)[0]
			if !strings.HasPrefix(first, "qins: ") {
				t.Errorf("stderr %q does not start with qins:", errs)
			}
			for _, w := range c.want {
				if !strings.Contains(first, w) {
					t.Errorf("first line %q lacks %q", first, w)
				}
			}
			if after := files(t, dir); len(after) != len(before) {
				t.Errorf("files before %v, after %v", before, after)
			}
		})
	}
}

// TestHints checks that errors of the library, which speak of its
// options, reach the user with the flag that helps, on the line after.
func TestHints(t *testing.T) {
	dir := t.TempDir()
	notQINS := filepath.Join(tiny, "model-00002-of-00002.safetensors")
	existing := filepath.Join(dir, "existing.safetensors")
	if err := os.WriteFile(existing, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args        []string
		first, hint string
	}{
		{[]string{"convert", tiny, "-o", filepath.Join(dir, "o"), "--include", "^nothing$"}, `the include pattern "^nothing$" matches no floating-point tensor`, "hint: --include REGEX names the floating-point tensors to encode"},
		{[]string{"restore", notQINS, "-o", filepath.Join(dir, "o")}, "is not a QINS file", "hint: qins convert makes one"},
		{[]string{"convert", notQINS, "-o", existing}, "exists", "hint: pass --force to replace it"},
		{[]string{"inspect", filepath.Join(dir, "nope")}, "nope", "hint: check the path"},
	} {
		code, _, errs := runQINS(t, c.args...)
		lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
		if code != 1 || len(lines) != 2 || !strings.Contains(lines[0], c.first) || !strings.HasPrefix(lines[1], c.hint) {
			t.Errorf("%v: exit %d, stderr %q: want exit 1, %q, then %q", c.args, code, errs, c.first, c.hint)
		}
	}
	if got := files(t, dir); len(got) != 1 {
		t.Errorf("left behind: %v", got)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep" {
		t.Errorf("%s changed", existing)
	}
}

func TestReorderArgs(t *testing.T) {
	app := newApp(context.Background(), nil, nil, nil)
	cases := []struct{ in, want, err string }{
		{in: "qins convert SRC -o OUT", want: "qins convert -o OUT -- SRC"},
		{in: "qins convert -o OUT SRC --force", want: "qins convert -o OUT --force -- SRC"},
		{in: "qins convert SRC --include=x -q", want: "qins convert --include=x -q -- SRC"},
		{in: "qins restore IN --dtype BF16 -o OUT", want: "qins restore --dtype BF16 -o OUT -- IN"},
		{in: "qins convert -- -odd-name", want: "qins convert -- -odd-name"},
		{in: "qins convert -o=-odd-out SRC", want: "qins convert -o=-odd-out -- SRC"},
		{in: "qins diff A B --plot p.png -f", want: "qins diff --plot p.png -f -- A B"},
		{in: "qins --help", want: "qins --help"},
		// A flag that takes a value must have one.
		{in: "qins convert SRC -o", err: "-o needs a value"},
		{in: "qins convert SRC --layout", err: "--layout needs a value"},
		{in: "qins convert -o -- SRC", err: "-o needs a value"},
		{in: "qins convert SRC -o --force", err: "-o needs a value"},
		{in: "qins convert SRC -o -q", err: "-o needs a value"},
		{in: "qins restore IN -o OUT --dtype --help", err: "--dtype needs a value"},
		{in: "qins diff A B --plot", err: "--plot needs a value"},
	}
	for _, c := range cases {
		args, err := reorderArgs(app, strings.Fields(c.in))
		got := strings.Join(args, " ")
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: got %q, %v; want error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// writeF32 writes a one-tensor F32 safetensors file.
func writeF32(t *testing.T, path, name string, shape []uint64, vals []float32) {
	t.Helper()
	sh, _ := json.Marshal(shape)
	h := `{"` + name + `":{"dtype":"F32","shape":` + string(sh) + `,"data_offsets":[0,` + itoa(4*len(vals)) + `]}}`
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	b = append(b, h...)
	for _, v := range vals {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestDiffExitCodes(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "q.safetensors")
	if code, _, errs := runQINS(t, "convert", "-q", tiny, "-o", q); code != 0 {
		t.Fatal(errs)
	}
	cases := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"itself", []string{"diff", tiny, tiny}, 0, "OK"},
		{"QINS within thresholds", []string{"diff", tiny, q, "--min-snr-db", "30", "--min-cosine", "0.99"}, 0, "OK"},
		{"QINS over a threshold", []string{"diff", tiny, q, "--max-rel-rmse", "0.001"}, 1, "DIFFERENT"},
		{"json", []string{"diff", "--json", tiny, q}, 0, `"total"`},
		{"unreadable input", []string{"diff", tiny, filepath.Join(dir, "nope")}, 2, ""},
		{"not a safetensors file", []string{"diff", tiny, "main.go"}, 2, ""},
		{"one argument", []string{"diff", tiny}, 2, ""},
		{"missing tensors", []string{"diff", tiny, filepath.Join(tiny, "model-00002-of-00002.safetensors")}, 1, "missing in b (128)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errs := runQINS(t, c.args...)
			if code != c.code || !strings.Contains(out, c.out) {
				t.Errorf("exit %d (want %d), stdout lacks %q?\n%s\n%s", code, c.code, c.out, out, errs)
			}
			if c.code == 2 && !strings.HasPrefix(errs, "qins: ") {
				t.Errorf("stderr %q", errs)
			}
		})
	}
}

func TestDiffPlot(t *testing.T) {
	dir := t.TempDir()
	q, png := filepath.Join(dir, "q.safetensors"), filepath.Join(dir, "snr.png")
	if code, _, errs := runQINS(t, "convert", "-q", tiny, "-o", q); code != 0 {
		t.Fatal(errs)
	}
	if code, _, errs := runQINS(t, "diff", tiny, q, "--top", "0", "--plot", png); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	b, err := os.ReadFile(png)
	if err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Fatalf("no PNG written: %v, %d bytes", err, len(b))
	}
	// Nothing to draw when every tensor matches: an error, exit 2 is not
	// right for it (the inputs are fine), so it is 1.
	if code, _, errs := runQINS(t, "diff", tiny, tiny, "--plot", filepath.Join(dir, "none.png")); code != 1 || !strings.Contains(errs, "nothing to plot") {
		t.Errorf("exact diff with --plot: exit %d, %q", code, errs)
	}
}
