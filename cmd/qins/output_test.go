package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// one is a single-file copy of a tiny checkpoint shard, for quick runs.
func one(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(dir, "in.safetensors")
	b, err := os.ReadFile(filepath.Join(tiny, "model-00002-of-00002.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return src
}

func TestFlagWithoutValue(t *testing.T) {
	dir := t.TempDir()
	src := one(t, dir)
	cases := [][]string{
		{"convert", src, "-o"},
		{"convert", src, "--layout"},
		{"convert", src, "-o", "--force"},
		{"convert", src, "-o", ""},
		{"restore", src, "-o"},
		{"diff", src, src, "--plot"},
		{"diff", src, src, "--top"},
	}
	for _, args := range cases {
		code, _, errs := runQINS(t, args...)
		if code != 2 || !strings.HasPrefix(errs, "qins: usage error: ") {
			t.Errorf("%q: exit %d, stderr %q; want a usage error", args, code, errs)
		}
		if got := files(t, dir); len(got) != 1 {
			t.Errorf("%q left %v", args, got)
		}
	}
	// Nothing named "--" is written anywhere, in the working folder either.
	if _, err := os.Stat("--"); err == nil {
		t.Error(`a file named "--" was written`)
	}
}

func TestOutputNotRegular(t *testing.T) {
	dir := t.TempDir()
	src := one(t, dir)
	sub := filepath.Join(dir, "sub")
	fifo := filepath.Join(dir, "fifo")
	os.Mkdir(sub, 0o755)
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		out, want string
	}{
		{sub, "is a directory"},
		{fifo, ", not a regular file"},
	}
	// A character device of our own, like /dev/null (1, 3): a regression
	// here must not replace the real one.
	dev := filepath.Join(dir, "null")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, 1<<8|3); err == nil {
		cases = append(cases, struct{ out, want string }{dev, ", not a regular file"})
	} else {
		t.Logf("no character device case: mknod: %v", err)
		os.WriteFile(dev, nil, 0o644) // the count of files below stays the same
	}
	for _, c := range cases {
		for _, args := range [][]string{
			{"convert", src, "-o", c.out, "--force"},
			{"convert", src, "-o", c.out},
		} {
			code, _, errs := runQINS(t, args...)
			if code != 1 || !strings.Contains(errs, c.out) || !strings.Contains(errs, c.want) {
				t.Errorf("%q: exit %d, %q; want %q", args, code, errs, c.want)
			}
		}
	}
	if st, err := os.Lstat(dev); err != nil || (len(cases) == 3 && st.Mode()&os.ModeCharDevice == 0) {
		t.Errorf("the device is now %v", st.Mode())
	}
	if st, _ := os.Lstat(fifo); st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO is now %v", st.Mode())
	}
	if got := files(t, sub); len(got) != 0 {
		t.Errorf("written into the folder: %v", got)
	}
	if got := files(t, dir); len(got) != 4 {
		t.Errorf("left %v", got)
	}
}

func TestOutputLongName(t *testing.T) {
	// --reference, the fastest encoding: the names are under test.
	for _, n := range []int{200, 243, 250, 255} {
		dir := t.TempDir()
		src := one(t, dir)
		out := filepath.Join(dir, strings.Repeat("x", n-len(".safetensors"))+".safetensors")
		if code, _, errs := runQINS(t, "convert", "-q", src, "-o", out, "--reference"); code != 0 {
			t.Fatalf("%d-byte name: exit %d: %s", n, code, errs)
		}
		// Replacing goes through a temporary name: it must fit too.
		if code, _, errs := runQINS(t, "convert", "-q", src, "-o", out, "--force", "--reference"); code != 0 {
			t.Fatalf("%d-byte name, --force: exit %d: %s", n, code, errs)
		}
		if got := files(t, dir); len(got) != 2 {
			t.Errorf("%d-byte name: folder holds %v", n, got)
		}
	}
}

func TestOutputModeFollowsUmask(t *testing.T) {
	dir := t.TempDir()
	src := one(t, dir)
	q := filepath.Join(dir, "q.safetensors")
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	for _, c := range []struct {
		args []string
		out  string
	}{
		{[]string{"convert", "-q", src, "-o", q, "--reference"}, q},
		{[]string{"restore", "-q", q, "-o", filepath.Join(dir, "r.safetensors")}, filepath.Join(dir, "r.safetensors")},
		{[]string{"convert", "-q", src, "-o", q, "--force", "--reference"}, q},
	} {
		if code, _, errs := runQINS(t, c.args...); code != 0 {
			t.Fatalf("%q: exit %d: %s", c.args, code, errs)
		}
		if st, _ := os.Stat(c.out); st.Mode().Perm() != 0o640 {
			t.Errorf("%q: mode %v, want 0640 under umask 027", c.args, st.Mode().Perm())
		}
	}
}

func TestDiffPlotSafety(t *testing.T) {
	dir := t.TempDir()
	src := one(t, dir)
	q := filepath.Join(dir, "q.safetensors")
	if code, _, errs := runQINS(t, "convert", "-q", src, "-o", q, "--reference"); code != 0 {
		t.Fatal(errs)
	}
	orig, _ := os.ReadFile(src)
	png := filepath.Join(dir, "snr.png")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"input as plot", []string{"diff", src, q, "--plot", src, "--force"}, 2, "FILE.png"},
		{"not a PNG", []string{"diff", src, q, "--plot", filepath.Join(dir, "x.txt")}, 2, "FILE.png"},
		{"first plot", []string{"diff", src, q, "--plot", png}, 0, ""},
		{"existing plot", []string{"diff", src, q, "--plot", png}, 1, "--force"},
		{"plot is a folder", []string{"diff", src, q, "--plot", dir + "/sub.png", "--force"}, 1, "is a directory"},
		{"replaced with --force", []string{"diff", src, q, "--plot", png, "--force"}, 0, ""},
	}
	os.Mkdir(filepath.Join(dir, "sub.png"), 0o755)
	for _, c := range cases {
		before, _ := os.ReadFile(png)
		code, _, errs := runQINS(t, c.args...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("%s: exit %d (want %d), stderr %q (want %q)", c.name, code, c.code, errs, c.want)
		}
		if after, _ := os.ReadFile(png); c.code != 0 && !bytes.Equal(before, after) {
			t.Errorf("%s: the existing plot changed", c.name)
		}
	}
	if after, _ := os.ReadFile(src); !bytes.Equal(after, orig) {
		t.Error("input modified")
	}
	if got := files(t, dir); len(got) != 4 { // in, q, snr.png, sub.png
		t.Errorf("folder holds %v", got)
	}
	// An input that is a .png, given as the plot, is refused before any
	// work: diff exits 2 and the input stays as it was.
	odd := filepath.Join(dir, "odd.png")
	os.WriteFile(odd, orig, 0o644)
	code, _, errs := runQINS(t, "diff", odd, q, "--plot", odd, "--force")
	if code != 2 || !strings.Contains(errs, "input") {
		t.Errorf("a .png input as the plot: exit %d, %q", code, errs)
	}
	if after, _ := os.ReadFile(odd); !bytes.Equal(after, orig) {
		t.Error("the .png input was modified")
	}
}

// failing is a writer that always fails, as /dev/full does.
type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

func TestDiffWriteErrorIsTrouble(t *testing.T) {
	for _, args := range [][]string{
		{"diff", tiny, tiny},
		{"diff", tiny, tiny, "--json"},
		{"eval", stories, stories, "--generate", "3", "-q"},
		{"eval", stories, stories, "--generate", "3", "--json"},
	} {
		var errb bytes.Buffer
		code := run(context.Background(), append([]string{"qins"}, args...), failing{}, &errb)
		if code != 2 || !strings.Contains(errb.String(), "no space left") {
			t.Errorf("%q to a full disk: exit %d, %q; want 2", args, code, errb.String())
		}
	}
}

// rawFile writes a safetensors file with header h and n zero data bytes.
func rawFile(t *testing.T, path, h string, n int) {
	t.Helper()
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	b = append(append(b, h...), make([]byte, n)...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestControlCharactersQuoted(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "b.safetensors")
	names := []string{"x\nforged row", "esc\x1b[31mred", "nul\x00byte", "tab\tcell"}
	var h strings.Builder
	h.WriteString("{")
	for i, n := range names {
		if i > 0 {
			h.WriteString(",")
		}
		q, _ := json.Marshal(n)
		h.WriteString(string(q) + `:{"dtype":"F32","shape":[1],"data_offsets":[` + itoa(4*i) + `,` + itoa(4*i+4) + `]}`)
	}
	h.WriteString("}")
	rawFile(t, a, h.String(), 4*len(names))
	rawFile(t, b, `{"plain":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4)
	for _, args := range [][]string{{"inspect", a}, {"diff", a, a, "--top", "-1"}, {"diff", a, b}} {
		_, out, errs := runQINS(t, args...)
		for _, bad := range []string{"\x1b", "\x00", "\nforged", "tab\tcell"} {
			if strings.Contains(out, bad) {
				t.Errorf("%q prints %q raw:\n%s", args, bad, out)
			}
		}
		for _, want := range []string{`"x\nforged row"`, `"esc\x1b[31mred"`, `"nul\x00byte"`} {
			if !strings.Contains(out, want) {
				t.Errorf("%q: output lacks %s:\n%s%s", args, want, out, errs)
			}
		}
	}
}
