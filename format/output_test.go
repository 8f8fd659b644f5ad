package format

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
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
			o, err := CreateOutput(out, OutputOptions{named: k.named})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := o.Write([]byte("new")); err != nil {
				t.Fatal(err)
			}
			if k.named != (len(listDir(t, dir)) == 1) {
				t.Errorf("folder holds %v while writing", listDir(t, dir))
			}
			os.WriteFile(out, []byte("appeared"), 0o644)
			if err := o.Commit(); !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), out) {
				t.Errorf("Commit over a file that appeared: %v, want ErrExists naming it", err)
			}
			if b, _ := os.ReadFile(out); string(b) != "appeared" {
				t.Errorf("the file that appeared holds %q", b)
			}
			if names := listDir(t, dir); len(names) != 1 {
				t.Errorf("folder holds %v", names)
			}
			// With Force, it is replaced.
			o, err = CreateOutput(out, OutputOptions{Force: true, named: k.named})
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
			if names := listDir(t, dir); len(names) != 1 {
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
			o, err := CreateOutput(filepath.Join(dir, "out"), OutputOptions{Pending: p, named: k.named})
			if err != nil {
				t.Fatal(err)
			}
			o.Write([]byte("half"))
			p.Close() // a signal handler, while the output is written
			if names := listDir(t, dir); len(names) != 0 {
				t.Errorf("after Close the folder holds %v", names)
			}
			if err := o.Commit(); !errors.Is(err, ErrInterrupted) {
				t.Errorf("Commit after Close: %v, want ErrInterrupted", err)
			}
			if _, err := CreateOutput(filepath.Join(dir, "other"), OutputOptions{Pending: p, named: k.named}); !errors.Is(err, ErrInterrupted) {
				t.Errorf("CreateOutput after Close: %v", err)
			}
			if names := listDir(t, dir); len(names) != 0 {
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
	o, err := CreateOutput(out, OutputOptions{named: true})
	if err != nil {
		t.Fatal(err)
	}
	o.Write([]byte("z"))
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
}

func TestWriterBothOutputKinds(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	for _, k := range outputKinds {
		for _, buffered := range []bool{false, true} {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.safetensors")
			ts := []TensorInfo{{Name: "a", DType: dtype.U8, Shape: []uint64{5000}}}
			w, err := Create(out, nil, ts, CreateOptions{named: k.named, Buffered: buffered})
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, 5000)
			for i := range data {
				data[i] = byte(i)
			}
			w.TensorWriter(0).Write(data)
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			f, err := Open(out)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 5000)
			f.Section(f.Tensors[0]).ReadAt(got, 0)
			f.Close()
			if string(got) != string(data) {
				t.Errorf("%s, buffered %v: data differs", k.name, buffered)
			}
			if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600 under umask 077", k.name, st.Mode().Perm())
			}
		}
	}
}
