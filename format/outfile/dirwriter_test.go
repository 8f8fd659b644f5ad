package outfile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestDirWriter(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	d, err := CreateDir(out, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src.txt")
	os.WriteFile(src, []byte("side file"), 0o444)
	if err := d.Mkdir("sub", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("sub/a.txt", strings.NewReader("side file"), 0o640, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("the folder appeared before Commit")
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "sub", "a.txt"))
	st, _ := os.Stat(filepath.Join(out, "sub", "a.txt"))
	mask := syscall.Umask(0)
	syscall.Umask(mask)
	if err != nil || string(b) != "side file" || st.Mode().Perm() != 0o640&^os.FileMode(mask) {
		t.Errorf("copied file: %q, %v, mode %v", b, err, st.Mode())
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o755 {
		t.Errorf("folder mode %v", st.Mode())
	}

	// A folder holding no model is never replaced; one holding a model is
	// refused without force, replaced with it, nothing left.
	if _, err := CreateDir(out, true, nil); err == nil || !strings.Contains(err.Error(), "holds no safetensors model") {
		t.Errorf("folder without a model: %v", err)
	}
	os.WriteFile(filepath.Join(out, "model.safetensors"), nil, 0o644)
	if _, err := CreateDir(out, false, nil); !errors.Is(err, ErrExists) {
		t.Errorf("existing output: %v", err)
	}
	d, err = CreateDir(out, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("new.txt", strings.NewReader("new"), 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := dirNames(t, out); !reflect.DeepEqual(got, []string{"new.txt"}) {
		t.Errorf("replaced folder holds %v", got)
	}
	if got := dirNames(t, dir); !reflect.DeepEqual(got, []string{"out", "src.txt"}) {
		t.Errorf("left beside: %v", got)
	}

	// Abort, and a failing check, leave nothing.
	d, _ = CreateDir(filepath.Join(dir, "aborted"), false, nil)
	stop := errors.New("stop")
	if err := d.WriteFile("x", strings.NewReader("x"), 0o644, func() error { return stop }); !errors.Is(err, stop) {
		t.Errorf("check error: %v", err)
	}
	d.Abort()
	d.Abort()
	if got := dirNames(t, dir); !reflect.DeepEqual(got, []string{"out", "src.txt"}) {
		t.Errorf("left after Abort: %v", got)
	}
}

// dirNames lists a folder.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// What the path holds is checked again at Commit: a folder without a
// model, or a FIFO, that took the place of a model folder during the run
// is kept, and a name with pattern characters is read literally.
func TestDirWriterRechecksAtCommit(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "m[v2]*.qins")
	os.Mkdir(out, 0o755)
	os.WriteFile(filepath.Join(out, "model.safetensors"), nil, 0o644)
	d, err := CreateDir(out, true, nil)
	if err != nil {
		t.Fatalf("a model folder whose name holds [ and *: %v", err)
	}
	os.RemoveAll(out)
	os.Mkdir(out, 0o755)
	os.WriteFile(filepath.Join(out, "notes.txt"), []byte("precious"), 0o644)
	if err := d.Commit(); err == nil || !strings.Contains(err.Error(), "holds no safetensors model") {
		t.Errorf("commit over a folder without a model: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "notes.txt")); string(b) != "precious" {
		t.Errorf("the folder that appeared was touched: %q", b)
	}
	if got := dirNames(t, dir); !reflect.DeepEqual(got, []string{"m[v2]*.qins"}) {
		t.Errorf("left beside: %v", got)
	}
}

// A destination name as long as a name may be still gets its temporary
// folder beside it.
func TestDirWriterLongName(t *testing.T) {
	out := filepath.Join(t.TempDir(), strings.Repeat("a", 250)+".qins")
	d, err := CreateDir(out, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WriteFile("x", strings.NewReader("x"), 0o644, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Commit(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "x")); err != nil || string(b) != "x" {
		t.Errorf("%q, %v", b, err)
	}
}
