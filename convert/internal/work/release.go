package work

import "sync"

// Releases follows the pieces of a region that several goroutines work
// on, each piece step long (the last one shorter), and calls release on
// each stretch all of whose pieces are done, from the start of the region
// on, once the stretch is batch long, and on the rest when the last piece
// is done: the pages of a mapped file read in small pieces leave memory
// in few calls (see format.File.Release). It is safe for concurrent use.
type Releases struct {
	mu         sync.Mutex
	n, step    int64
	batch      int64
	release    func(off, n int64)
	next, from int64          // the first piece not done; the start of what is not released
	done       map[int64]bool // pieces done past next: about one per goroutine
}

// NewReleases returns the Releases of a region of n units in pieces of
// step.
func NewReleases(n, step, batch int64, release func(off, n int64)) *Releases {
	return &Releases{n: n, step: max(step, 1), batch: batch, release: release, done: make(map[int64]bool)}
}

// Done marks the piece that starts at off as done.
func (r *Releases) Done(off int64) {
	r.mu.Lock()
	r.done[off/r.step] = true
	for r.done[r.next] {
		delete(r.done, r.next)
		r.next++
	}
	end := min(r.next*r.step, r.n)
	from := r.from
	if end-from < r.batch && (end < r.n || end == from) {
		r.mu.Unlock()
		return
	}
	r.from = end
	r.mu.Unlock()
	r.release(from, end-from)
}
