package format

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/qins-dev/qins/format/outfile"

	"github.com/qins-dev/qins/format/dtype"
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
		{Name: "a", DType: dtype.F32, Shape: []uint64{2}},
		{Name: "b", DType: dtype.U8, Shape: []uint64{3}},
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
	umask := syscall.Umask(0)
	syscall.Umask(umask)
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o666&^os.FileMode(umask) {
		t.Errorf("mode %v, want 0666 less the umask %03o", st.Mode().Perm(), umask)
	}
}

func TestWriterFailuresLeaveNothing(t *testing.T) {
	ts := []TensorInfo{{Name: "a", DType: dtype.U8, Shape: []uint64{4}}}
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
	ts := []TensorInfo{{Name: "a", DType: dtype.U8, Shape: []uint64{1}}}
	if _, err := Create(out, nil, ts, CreateOptions{}); !errors.Is(err, outfile.ErrExists) {
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

// TestWriterPiecesAnyOrder writes tensors of awkward sizes in pieces that
// straddle block boundaries, in random order from several goroutines, and
// checks the file byte for byte, through the page cache and with direct
// I/O.
func TestWriterPiecesAnyOrder(t *testing.T) {
	ts := []TensorInfo{
		{Name: "odd", DType: dtype.U8, Shape: []uint64{5003}},
		{Name: "one", DType: dtype.U8, Shape: []uint64{1}},
		{Name: "blocks", DType: dtype.F32, Shape: []uint64{3, 1024}},
		{Name: "big", DType: dtype.U8, Shape: []uint64{4<<20 + 3*4096 + 17}},
		{Name: "tail", DType: dtype.U8, Shape: []uint64{77}},
	}
	for _, buffered := range []bool{false, true} {
		for _, piece := range []int{1000, 4096, 3*4096 + 1, 1 << 20} {
			t.Run(fmt.Sprintf("buffered=%v/piece=%d", buffered, piece), func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "out.safetensors")
				w, err := Create(out, map[string]string{"k": "v"}, ts, CreateOptions{Buffered: buffered, Reserve: 16})
				if err != nil {
					t.Fatal(err)
				}
				type write struct {
					i   int
					off int64
					p   []byte
				}
				var writes []write
				want := make([][]byte, len(ts))
				r := rand.New(rand.NewPCG(1, uint64(piece)))
				for i, ti := range ts {
					n, _ := Elements(ti.Shape)
					want[i] = make([]byte, n*ti.DType.Size())
					for k := range want[i] {
						want[i][k] = byte(r.Uint32())
					}
					for off := 0; off < len(want[i]); off += piece {
						// A copy at an odd address, as callers' buffers are.
						p := append(make([]byte, 1, piece+1), want[i][off:min(off+piece, len(want[i]))]...)[1:]
						writes = append(writes, write{i, int64(off), p})
					}
				}
				r.Shuffle(len(writes), func(a, b int) { writes[a], writes[b] = writes[b], writes[a] })
				var wg sync.WaitGroup
				for g := 0; g < 3; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for k := g; k < len(writes); k += 3 {
							if err := w.WriteAt(writes[k].i, writes[k].p, writes[k].off); err != nil {
								t.Error(err)
							}
						}
					}()
				}
				wg.Wait()
				w.SetMetadata("late", "yes")
				if err := w.Commit(); err != nil {
					t.Fatal(err)
				}
				f, err := Open(out)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if f.Metadata["late"] != "yes" {
					t.Errorf("metadata %v", f.Metadata)
				}
				last := f.Tensors[len(f.Tensors)-1]
				if st, _ := os.Stat(out); st.Size() != f.DataStart()+int64(last.End) {
					t.Errorf("file is %d bytes, want %d", st.Size(), f.DataStart()+int64(last.End))
				}
				for i, ti := range ts {
					info, _ := f.Tensor(ti.Name)
					got := make([]byte, info.Bytes())
					if _, err := f.Section(info).ReadAt(got, 0); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want[i]) {
						t.Errorf("tensor %s differs", ti.Name)
					}
				}
			})
		}
	}
}
