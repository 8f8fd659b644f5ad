package format

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"
)

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestWriterCommit(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.safetensors")
	ts := []TensorInfo{
		{Name: "a", DType: safetensors.F32, Shape: []uint64{2}},
		{Name: "b", DType: safetensors.U8, Shape: []uint64{3}},
	}
	w, err := Create(out, map[string]string{"k": "v"}, ts, CreateOptions{Reserve: 40})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("output visible before Commit")
	}
	// Tensors in any order, in pieces.
	w.TensorWriter(1).Write([]byte{7})
	w.TensorWriter(0).Write([]byte{1, 2, 3, 4, 5, 6, 7, 8})
	w.TensorWriter(1).Write([]byte{8, 9})
	w.SetMetadata("late", strings.Repeat("x", 30))
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if names := listDir(t, dir); len(names) != 1 {
		t.Fatalf("folder holds %v, want only the output", names)
	}
	f, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Metadata["late"] != strings.Repeat("x", 30) || f.Metadata["k"] != "v" {
		t.Errorf("metadata %v", f.Metadata)
	}
	b, _ := f.Tensor("b")
	got := make([]byte, 3)
	f.Section(b).ReadAt(got, 0)
	if string(got) != "\x07\x08\x09" {
		t.Errorf("b = %v", got)
	}
	if f.DataStart()%8 != 0 {
		t.Errorf("data starts at %d, not aligned to 8", f.DataStart())
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

func TestWriterFailuresLeaveNothing(t *testing.T) {
	ts := []TensorInfo{{Name: "a", DType: safetensors.U8, Shape: []uint64{4}}}
	cases := []struct {
		name string
		do   func(w *Writer) error
		want string
	}{
		{"incomplete", func(w *Writer) error {
			w.TensorWriter(0).Write([]byte{1, 2})
			return w.Commit()
		}, "2 of 4 bytes"},
		{"past the end, then sticky", func(w *Writer) error {
			if _, err := w.TensorWriter(0).Write(make([]byte, 5)); err == nil {
				t.Error("write past the end accepted")
			}
			if _, err := w.TensorWriter(0).Write(make([]byte, 1)); err == nil {
				t.Error("write after an error accepted")
			}
			return w.Commit()
		}, "past its end"},
		{"header outgrows its room", func(w *Writer) error {
			w.TensorWriter(0).Write(make([]byte, 4))
			w.SetMetadata("big", strings.Repeat("y", 100))
			return w.Commit()
		}, "reserved"},
		{"abort", func(w *Writer) error {
			w.TensorWriter(0).Write(make([]byte, 4))
			w.Abort()
			return errors.New("aborted")
		}, "aborted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.safetensors")
			w, err := Create(out, nil, ts, CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			err = c.do(w)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error containing %q", err, c.want)
			}
			if names := listDir(t, dir); len(names) != 0 {
				t.Errorf("left behind %v", names)
			}
		})
	}
}

func TestWriterRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.safetensors")
	os.WriteFile(out, []byte("keep me"), 0o644)
	ts := []TensorInfo{{Name: "a", DType: safetensors.U8, Shape: []uint64{1}}}
	if _, err := Create(out, nil, ts, CreateOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("got %v, want ErrExists", err)
	}
	w, err := Create(out, nil, ts, CreateOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "keep me" {
		t.Error("existing output touched before Commit")
	}
	w.TensorWriter(0).Write([]byte{1})
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(out); err != nil {
		t.Errorf("replaced output does not open: %v", err)
	}
}
