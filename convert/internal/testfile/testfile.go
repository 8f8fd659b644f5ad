// Package testfile writes small safetensors files for the tests of convert
// and its subpackages. It is not for production code.
package testfile

import (
	"testing"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
)

// Spec is one tensor of a test file: its values are stored in its dtype
// (F16, BF16, F32, F64 or I64).
type Spec struct {
	Name  string
	DType dtype.DType
	Shape []uint64
	Vals  []float64
}

// Write writes the tensors, in the given order, to a safetensors file at
// path, replacing it, and returns path.
func Write(t testing.TB, path string, specs ...Spec) string {
	t.Helper()
	var ts []format.TensorInfo
	for _, s := range specs {
		ts = append(ts, format.TensorInfo{Name: s.Name, DType: s.DType, Shape: s.Shape})
	}
	w, err := format.Create(path, map[string]string{"format": "pt"}, ts, format.CreateOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range specs {
		b := make([]byte, len(s.Vals)*int(s.DType.Size()))
		for j, v := range s.Vals {
			switch s.DType {
			case dtype.I64:
				for k := 0; k < 8; k++ {
					b[8*j+k] = byte(uint64(int64(v)) >> (8 * k))
				}
			default:
				put, err := dtype.Putter(s.DType)
				if err != nil {
					t.Fatal(err)
				}
				put(b, j, v)
			}
		}
		w.TensorWriter(i).Write(b)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return path
}

// T returns the Spec of a tensor.
func T(name string, dt dtype.DType, shape []uint64, vals []float64) Spec {
	return Spec{Name: name, DType: dt, Shape: shape, Vals: vals}
}
