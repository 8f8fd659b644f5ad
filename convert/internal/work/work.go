// Package work is the one scheduler of convert's commands: pieces of work
// on a fixed number of goroutines, each with an index for buffers of its
// own, the first error cancelling the rest. It holds no state between
// calls.
package work

import (
	"context"
	"runtime"
	"sync/atomic"

	"github.com/qins-dev/qins/format"
	"golang.org/x/sync/errgroup"
)

// DefaultChunkBytes is the size of the pieces tensors are read in, on
// machines with up to 8 cores.
const DefaultChunkBytes = 4 << 20

// chunkBudget bounds the default chunks of all goroutines together: with
// more goroutines than it holds at DefaultChunkBytes, the chunks shrink,
// so that memory does not grow with the number of cores.
const chunkBudget = 32 << 20

// MinChunkBytes is the smallest default chunk: below it, the calls per
// byte start to cost more than the memory saved.
const MinChunkBytes = 256 << 10

// maxWriters caps the extra goroutines of work that writes, whose memory
// grows with their number.
const maxWriters = 8

// maxWorkers caps the default number of goroutines. Each keeps buffers of
// its own, and 64 cores already encode many times faster than a disk
// writes.
const maxWorkers = 64

// Workers is the number of goroutines of a command: the one scheduler
// every pipeline runs its pieces on. Each goroutine has an index, so that
// it can keep buffers of its own across pieces.
type Workers int

// Compute returns n, or when 0 one goroutine per core, up to
// maxWorkers.
func Compute(n int) Workers {
	if n <= 0 {
		n = min(runtime.GOMAXPROCS(0), maxWorkers)
	}
	return Workers(n)
}

// ForWriting returns n, or when 0 the default for work that writes its
// output: twice as many goroutines as cores up to maxWriters, and never
// fewer than the cores (up to maxWorkers), because a direct write blocks
// its goroutine until the disk has the data, and the cores should go on
// computing meanwhile.
func ForWriting(n int) Workers {
	if n <= 0 {
		c := min(runtime.GOMAXPROCS(0), maxWorkers)
		n = max(c, min(2*c, maxWriters))
	}
	return Workers(n)
}

// Share returns budget split among n goroutines, but no less than lo and
// no more than hi: the default size of what each reads at a time.
func Share(budget, n, lo, hi int) int {
	return min(hi, max(lo, budget/max(n, 1)))
}

// ChunkSize returns the read size: the one asked for, or when 0 the
// default for that many goroutines, but no more than the largest tensor
// of c needs, so that small models take little memory. It is at least 8,
// one element of any dtype.
func (ws Workers) ChunkSize(asked int, c *format.Checkpoint) int {
	if asked <= 0 {
		asked = Share(chunkBudget, int(ws), MinChunkBytes, DefaultChunkBytes)
	}
	var largest uint64
	for _, t := range c.Tensors {
		largest = max(largest, t.Bytes())
	}
	return max(8, int(min(uint64(asked), largest)))
}

// Each calls fn(ctx, w, off, n) for the consecutive pieces [off, off+n)
// of [0, size), each step long but the last, on up to ws goroutines; w is
// the goroutine's index. The first error cancels the ctx the other pieces
// see, stops the pieces not yet begun and is returned; so is the
// context's error once it is done.
func (ws Workers) Each(ctx context.Context, size, step int64, fn func(ctx context.Context, w int, off, n int64) error) error {
	pieces := (size + step - 1) / step
	g, ctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for w := range int(min(int64(ws), max(pieces, 1))) {
		g.Go(func() error {
			for {
				k := next.Add(1) - 1
				if k >= pieces {
					return nil
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				off := k * step
				if err := fn(ctx, w, off, min(step, size-off)); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// Progress follows a command's work: Start once with the total, then Add
// as the work is done, adding up to that total. Packages convert,
// convert/diff and convert/eval name it as their own Progress.
type Progress interface {
	Start(total int64)
	Add(n int64)
}

// OrNone returns p, or a Progress that ignores everything when p is nil.
func OrNone(p Progress) Progress {
	if p == nil {
		return noProgress{}
	}
	return p
}

type noProgress struct{}

func (noProgress) Start(int64) {}
func (noProgress) Add(int64)   {}
