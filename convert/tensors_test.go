package convert

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/qins-dev/qins/format/qins"
)

// Tensors reads every tensor of a plain checkpoint exactly, and of a QINS
// file (both layouts) bit for bit as its F32 restore stores it, whatever
// the offset and length of the read.
func TestTensorsReadAsRestoreWrites(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, layout := range []qins.Layout{qins.LayoutU8I8, qins.LayoutPacked} {
		q := filepath.Join(dir, layout.String()+".qins.safetensors")
		rf := filepath.Join(dir, layout.String()+".restored.safetensors")
		if _, err := Convert(ctx, tinyDir, q, Options{Layout: layout}); err != nil {
			t.Fatal(err)
		}
		if _, err := Restore(ctx, q, rf, RestoreOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ path, want string }{{tinyDir, tinyDir}, {q, rf}} {
			ts, err := qins.Open(context.Background(), c.path)
			if err != nil {
				t.Fatal(err)
			}
			ts.Workers = 3
			want := byName(open(t, c.want))
			if len(ts.Tensors) != len(want) {
				t.Fatalf("%s: %d tensors, want %d", c.path, len(ts.Tensors), len(want))
			}
			for _, l := range ts.Tensors {
				name := l.Name
				w := values(t, want[name])
				if got, ok := ts.Tensor(name); !ok || got.Name != name || !slices.Equal(l.Shape, want[name].Shape) {
					t.Fatalf("%s %s: shape %v, want %v", c.path, name, l.Shape, want[name].Shape)
				}
				// The whole tensor, then a window that crosses chunks.
				for _, win := range [][2]int{{0, len(w)}, {len(w) / 3, min(len(w), len(w)/3+1<<16+17)}} {
					got := make([]float32, win[1]-win[0])
					if err := ts.ReadFloat32(ctx, name, int64(win[0]), got); err != nil {
						t.Fatal(err)
					}
					for i, g := range got {
						if math.Float32bits(g) != math.Float32bits(float32(w[win[0]+i])) {
							t.Fatalf("%s %s[%d] = %v, want %v", c.path, name, win[0]+i, g, w[win[0]+i])
						}
					}
				}
			}
			ts.Close()
		}
	}
}
