package outfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// outputKinds are the two ways an Output is kept until Commit.
var outputKinds = []struct {
	name  string
	named bool
}{{"unnamed", false}, {"named", true}}

func TestOutputNoReplaceWithoutForce(t *testing.T) {
	for _, k := range outputKinds {
		t.Run(k.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			o, err := Create(out, Options{named: k.named})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := o.Write([]byte("new")); err != nil {
				t.Fatal(err)
			}
			if k.named != (len(dirNames(t, dir)) == 1) {
				t.Errorf("folder holds %v while writing", dirNames(t, dir))
			}
			os.WriteFile(out, []byte("appeared"), 0o644)
			if err := o.Commit(); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), out) {
				t.Errorf("Commit over a file that appeared: %v, want ErrExists naming it", err)
			}
			if b, _ := os.ReadFile(out); string(b) != "appeared" {
				t.Errorf("the file that appeared holds %q", b)
			}
			if names := dirNames(t, dir); len(names) != 1 {
				t.Errorf("folder holds %v", names)
			}
			// With Force, it is replaced.
			o, err = Create(out, Options{Force: true, named: k.named})
			if err != nil {
				t.Fatal(err)
			}
			o.Write([]byte("new"))
			if err := o.Commit(); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(out); string(b) != "new" {
				t.Errorf("forced output holds %q", b)
			}
			if names := dirNames(t, dir); len(names) != 1 {
				t.Errorf("folder holds %v", names)
			}
		})
	}
}

func TestPendingClose(t *testing.T) {
	for _, k := range outputKinds {
		t.Run(k.name, func(t *testing.T) {
			dir := t.TempDir()
			p := &Pending{}
			o, err := Create(filepath.Join(dir, "out"), Options{Pending: p, named: k.named})
			if err != nil {
				t.Fatal(err)
			}
			o.Write([]byte("half"))
			p.Close() // a signal handler, while the output is written
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("after Close the folder holds %v", names)
			}
			if err := o.Commit(); !errors.Is(err, ErrInterrupted) {
				t.Errorf("Commit after Close: %v, want ErrInterrupted", err)
			}
			if _, err := Create(filepath.Join(dir, "other"), Options{Pending: p, named: k.named}); !errors.Is(err, ErrInterrupted) {
				t.Errorf("CreateOutput after Close: %v", err)
			}
			if names := dirNames(t, dir); len(names) != 0 {
				t.Errorf("folder holds %v", names)
			}
		})
	}
}

func TestTempNameFits(t *testing.T) {
	for _, base := range []string{strings.Repeat("x", 255), strings.Repeat("é", 127), "short"} {
		name := filepath.Base(tempName(filepath.Join("/d", base)))
		if len(name) > 255 || !strings.HasPrefix(name, ".") {
			t.Errorf("temporary name of %d bytes: %q", len(name), name)
		}
		if !strings.HasPrefix(name[1:], base[:min(len(base), 10)]) {
			t.Errorf("%q does not start with the output's name", name)
		}
	}
	// A named temporary file beside a 255-byte output name works.
	dir := t.TempDir()
	out := filepath.Join(dir, strings.Repeat("y", 255))
	o, err := Create(out, Options{named: true})
	if err != nil {
		t.Fatal(err)
	}
	o.Write([]byte("z"))
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestSizedBothOutputKinds: a sized output written at offsets, with
// direct I/O or through the page cache, named or not, holds its bytes and
// follows the umask.
func TestSizedBothOutputKinds(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, k := range outputKinds {
		for _, buffered := range []bool{false, true} {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.bin")
			data := make([]byte, 5000)
			for i := range data {
				data[i] = byte(i)
			}
			o, err := Create(out, Options{named: k.named, Buffered: buffered, Size: int64(len(data))})
			if err != nil {
				t.Fatal(err)
			}
			// Out of order, across block boundaries.
			if err := o.WriteAt(data[4000:], 4000); err != nil {
				t.Fatal(err)
			}
			if err := o.WriteAt(data[:4000], 0); err != nil {
				t.Fatal(err)
			}
			if err := o.Commit(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil || string(got) != string(data) {
				t.Errorf("%s, buffered %v: data differs (%v)", k.name, buffered, err)
			}
			if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600 under umask 077", k.name, st.Mode().Perm())
			}
		}
	}
}

// TestCheck checks what Check refuses before any work: an output that
// cannot be created (its folder is missing, or is a file) as well as one
// that may not be replaced.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o644)
	for _, c := range []struct {
		name, path string
		force      bool
		says       string // "" for no error
	}{
		{"new", filepath.Join(dir, "new"), false, ""},
		{"existing", file, false, "output exists"},
		{"existing, force", file, true, ""},
		{"folder", dir, true, "is a directory"},
		{"device", "/dev/null", true, "not a regular file"},
		{"missing folder", filepath.Join(dir, "none", "out"), false, "the folder " + filepath.Join(dir, "none") + " does not exist"},
		{"missing folders", filepath.Join(dir, "a", "b", "out"), true, "does not exist"},
		{"folder is a file", filepath.Join(file, "out"), false, "not a directory"},
	} {
		err := Check(c.path, c.force)
		switch {
		case c.says == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.says != "" && (err == nil || !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.says)):
			t.Errorf("%s: %v, want an error naming %s and saying %q", c.name, err, c.path, c.says)
		}
	}
}
