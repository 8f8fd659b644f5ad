package qins

import (
	"context"
	"path/filepath"
	"testing"
)

func TestReaderErrors(t *testing.T) {
	ts, err := Open(context.Background(), "../../testdata/phi-3.5-mini-tiny")
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	ctx := context.Background()
	name := "model.norm.weight"
	l, _ := ts.Tensor(name)
	shape := l.Shape
	for _, c := range []struct {
		name string
		off  int64
		n    uint64
	}{
		{"no.such.tensor", 0, 1},
		{name, -1, 1},
		{name, 0, shape[0] + 1},
		{name, int64(shape[0]), 1},
	} {
		if err := ts.ReadFloat32(ctx, c.name, c.off, make([]float32, c.n)); err == nil {
			t.Errorf("%s [%d, +%d): no error", c.name, c.off, c.n)
		}
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing checkpoint opened")
	}
}
