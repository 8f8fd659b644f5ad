package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// copyTiny copies the tiny checkpoint folder into dir/name.
func copyTiny(t *testing.T, dir, name string) string {
	t.Helper()
	dst := filepath.Join(dir, name)
	os.Mkdir(dst, 0o755)
	for _, n := range files(t, tiny) {
		b, err := os.ReadFile(filepath.Join(tiny, n))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, n), b, 0o644)
	}
	return dst
}

func TestFolderCommands(t *testing.T) {
	dir := t.TempDir()
	src := copyTiny(t, dir, "phi")
	// OUT omitted: a folder beside the source.
	code, out, errs := qins(t, "convert", src, "--max-shard-size", "60kB")
	if code != 0 {
		t.Fatalf("convert: exit %d: %s", code, errs)
	}
	q := filepath.Join(dir, "phi.qins")
	if !strings.Contains(out, "weight file(s) and their index, 1 other file(s) copied") || !strings.Contains(out, q) {
		t.Errorf("summary:\n%s", out)
	}
	want := []string{"config.json", "model.qins-00001-of-00003.safetensors", "model.qins-00002-of-00003.safetensors",
		"model.qins-00003-of-00003.safetensors", "model.qins.safetensors.index.json"}
	if got := files(t, q); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("QINS folder holds %v", got)
	}
	if code, out, _ := qins(t, "inspect", q); code != 0 || !strings.Contains(out, "QINS version 1, 3 file(s)") {
		t.Errorf("inspect: exit %d\n%s", code, out)
	}
	if code, _, errs := qins(t, "restore", q, "--dtype", "bf16", "-q"); code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errs)
	}
	r := filepath.Join(dir, "phi.restored")
	if got := files(t, r); strings.Join(got, " ") != "config.json model.safetensors" {
		t.Errorf("restored folder holds %v", got)
	}
	cfg, _ := os.ReadFile(filepath.Join(r, "config.json"))
	if !strings.Contains(string(cfg), `"torch_dtype": "bfloat16"`) {
		t.Errorf("config.json:\n%s", cfg)
	}
	if code, out, errs := qins(t, "diff", src, r, "--min-snr-db", "30", "--top", "0"); code != 0 {
		t.Errorf("diff: exit %d: %s%s", code, out, errs)
	}

	// Again without --force: refused, with the hint.
	code, _, errs = qins(t, "convert", src)
	if code != 1 || !strings.Contains(errs, "output exists") || !strings.Contains(errs, "--force") {
		t.Errorf("existing folder: exit %d, %q", code, errs)
	}
	// Into the input: refused even with --force.
	code, _, errs = qins(t, "convert", src, "-o", filepath.Join(src, "x.qins"), "--force")
	if code != 1 || !strings.Contains(errs, "inside the input folder") {
		t.Errorf("output inside input: exit %d, %q", code, errs)
	}
	// -o FILE.safetensors: one file, as before.
	f := filepath.Join(dir, "one.safetensors")
	if code, _, errs := qins(t, "convert", src, "-o", f, "-q"); code != 0 {
		t.Errorf("file output: exit %d: %s", code, errs)
	}
	if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
		t.Errorf("%s: %v", f, err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"convert", src, "-o", filepath.Join(dir, "b.qins"), "--max-shard-size", "lots"}, 2, "--max-shard-size"},
		{[]string{"convert", src, "-o", filepath.Join(dir, "b.safetensors"), "--max-shard-size", "1MB"}, 1, "folder output"},
		{[]string{"restore", f}, 2, "needs -o OUT"},
	} {
		code, _, errs := qins(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errs)
		}
	}
}
