package work

import (
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// Every unit is released once, only after its piece is done, in
// stretches of at least the batch but the last, whatever the order the
// pieces end in.
func TestReleases(t *testing.T) {
	for _, c := range []struct{ n, step, batch int64 }{
		{0, 4, 8}, {1, 4, 8}, {100, 7, 20}, {100, 10, 10}, {100, 10, 1000}, {64, 64, 1}, {1000, 3, 1},
	} {
		for seed := range uint64(20) {
			pieces := (c.n + c.step - 1) / c.step
			order := make([]int64, pieces)
			for i := range order {
				order[i] = int64(i)
			}
			r := rand.New(rand.NewPCG(seed, 1))
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			var mu sync.Mutex
			done := make([]bool, pieces)
			released := make([]int, c.n)
			var stretches []int64
			rel := NewReleases(c.n, c.step, c.batch, func(off, n int64) {
				mu.Lock()
				defer mu.Unlock()
				stretches = append(stretches, n)
				for u := off; u < off+n; u++ {
					released[u]++
					if !done[u/c.step] {
						t.Errorf("%+v: unit %d released before its piece is done", c, u)
					}
				}
			})
			for _, p := range order {
				mu.Lock()
				done[p] = true
				mu.Unlock()
				rel.Done(p * c.step)
			}
			for u, k := range released {
				if k != 1 {
					t.Fatalf("%+v seed %d: unit %d released %d times", c, seed, u, k)
				}
			}
			if len(stretches) > 1 && slices.Min(stretches[:len(stretches)-1]) < c.batch {
				t.Errorf("%+v: stretches %v, some below the batch before the last", c, stretches)
			}
		}
	}
}
