package convert

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// pool runs the pieces of a job on several goroutines. Each goroutine has
// an index, so that it can keep buffers of its own across jobs.
type pool struct {
	ctx     context.Context
	workers int
}

// maxWriters caps the extra goroutines of a pool that writes, whose memory
// grows with their number.
const maxWriters = 8

// maxWorkers caps the default number of goroutines of a pool. Each keeps
// buffers of its own, and 64 cores already encode many times faster than
// a disk writes.
const maxWorkers = 64

// share returns budget split among workers goroutines, but no less than
// lo and no more than hi: the default size of what each reads at a time.
func share(budget, workers, lo, hi int) int {
	return min(hi, max(lo, budget/max(workers, 1)))
}

// newPool returns a pool of the given number of goroutines; 0 means one
// per core, up to maxWorkers.
func newPool(ctx context.Context, workers int) *pool {
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), maxWorkers)
	}
	return &pool{ctx: ctx, workers: workers}
}

// newWriterPool returns a pool for work that writes its output: by default
// twice as many goroutines as cores up to maxWriters, and never fewer than
// the cores (up to maxWorkers), because a direct write blocks its
// goroutine until the disk has the data, and the cores should go on
// computing meanwhile.
func newWriterPool(ctx context.Context, workers int) *pool {
	if workers <= 0 {
		n := min(runtime.GOMAXPROCS(0), maxWorkers)
		workers = max(n, min(2*n, maxWriters))
	}
	return newPool(ctx, workers)
}

// each calls fn(w, off, n) for the consecutive pieces [off, off+n) of
// [0, size), each step long but the last, on the pool's goroutines; w is the
// goroutine's index. The first error stops the pieces not yet begun and is
// returned; so is the context's error once it is done.
func (p *pool) each(size, step int64, fn func(w int, off, n int64) error) error {
	pieces := (size + step - 1) / step
	workers := int(min(int64(p.workers), max(pieces, 1)))
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := next.Add(1) - 1
				if k >= pieces {
					return
				}
				err := p.ctx.Err()
				if err == nil {
					off := k * step
					err = fn(w, off, min(step, size-off))
				}
				if err != nil {
					once.Do(func() { first = err })
					next.Store(pieces)
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
