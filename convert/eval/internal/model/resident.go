package model

import (
	"context"
	"fmt"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/qins-dev/qins/convert/eval/internal/gemm"
)

// Matrix is a 2-D weight [rows, cols] kept in memory, in whatever form it
// is stored.
type Matrix interface {
	// MulVec sets dst[r] = Σ_j W[r,j]·x[j] for every row r.
	MulVec(dst, x []float32)
	// DecodeRows sets dst to rows [r0, r1) as float32.
	DecodeRows(r0, r1 int, dst []float32)
	// Bytes returns the memory the matrix holds.
	Bytes() int64
}

// Resident is implemented by Weights that can keep a 2-D tensor in memory
// in its stored form, for Generate.
type Resident interface {
	// StoredBytes returns the memory LoadMatrix takes for the named 2-D
	// tensor.
	StoredBytes(name string) int64
	// LoadMatrix reads the named 2-D tensor into memory.
	LoadMatrix(ctx context.Context, name string) (Matrix, error)
}

// matrices returns the 2-D tensors the forward pass reads: the embedding,
// the head when it is not the embedding, and each layer's Linear weights.
func (m *Model) matrices() []string {
	var names []string
	m.eachTensor(func(name string, shape ...int) error {
		if len(shape) == 2 {
			names = append(names, name)
		}
		return nil
	})
	return names
}

// ResidentBytes returns the memory that keeping every matrix the forward
// pass reads in its stored form takes, and whether the model's Weights can
// keep them (implement Resident). Generate keeps them when they fit
// m.Memory.
func (m *Model) ResidentBytes() (int64, bool) {
	res, ok := m.w.(Resident)
	if !ok {
		return 0, false
	}
	var n int64
	for _, name := range m.matrices() {
		n += res.StoredBytes(name)
	}
	return n, true
}

// Resident reports whether Generate keeps the weights in memory: they can
// be kept and fit m.Memory.
func (m *Model) Resident() bool {
	n, ok := m.ResidentBytes()
	return ok && m.Memory > 0 && n <= m.Memory
}

// loadMatrices reads every matrix of the forward pass into rd, as many
// at a time as there are CPUs and at least two (checking codes and
// building tables is CPU work).
func (rd *reader) loadMatrices(ctx context.Context) error {
	res := rd.m.w.(Resident)
	names := rd.m.matrices()
	mats := make([]Matrix, len(names))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(max(2, runtime.GOMAXPROCS(0)))
	for i, name := range names {
		g.Go(func() error {
			mat, err := res.LoadMatrix(ctx, name)
			if err != nil {
				return fmt.Errorf("model: loading %s: %w", name, err)
			}
			mats[i] = mat
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	rd.mats = make(map[string]Matrix, len(names))
	for i, name := range names {
		rd.mats[name] = mats[i]
	}
	return nil
}

// mul sets y ([n, out]) = x ([n, in]) · Wᵀ for the 2-D weight name [out,
// in]: the one place where a weight matrix multiplies activations. A
// matrix kept in memory multiplies in place, one pass over its stored
// bytes per token; any other is read (or taken from the reader's decoded
// ones) and goes to gemm.
func (m *Model) mul(ctx context.Context, rd *reader, name string, y, x []float32, n, out, in int) error {
	if mat, ok := rd.mats[name]; ok {
		mulResident(mat, y, x, n, out, in)
		return nil
	}
	w, err := rd.tensor(ctx, name, out*in)
	if err != nil {
		return err
	}
	gemm.MulT(y, x, w, n, out, in)
	return nil
}

// residentBlock is how many weights mulResident decodes at a time for
// many positions: 4 MiB of float32.
const residentBlock = 1 << 20

// residentVecMax is the most positions mulResident multiplies one by one
// (a prompt): each is a pass over the stored bytes, about as long as
// decoding them all to float32 once at full size.
const residentVecMax = 16

// mulResident is mul for a matrix kept in memory: a product by each of
// few positions, else blocks of rows decoded for gemm.
func mulResident(mat Matrix, y, x []float32, n, out, in int) {
	if n <= residentVecMax {
		for t := range n {
			mat.MulVec(y[t*out:(t+1)*out], x[t*in:(t+1)*in])
		}
		return
	}
	rows := min(out, max(1, residentBlock/max(in, 1)))
	w := make([]float32, rows*in)
	tmp := make([]float32, n*rows)
	for r0 := 0; r0 < out; r0 += rows {
		r1 := min(r0+rows, out)
		mat.DecodeRows(r0, r1, w[:(r1-r0)*in])
		gemm.MulT(tmp, x, w, n, r1-r0, in)
		for t := range n {
			copy(y[t*out+r0:t*out+r1], tmp[t*(r1-r0):(t+1)*(r1-r0)])
		}
	}
}
