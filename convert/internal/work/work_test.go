package work

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// TestEachPieces: every piece of [0, size) is handed out once, with its
// offset and length, whatever the number of goroutines.
func TestEachPieces(t *testing.T) {
	for _, tc := range []struct {
		n          Workers
		size, step int64
	}{{1, 1000, 64}, {3, 1000, 64}, {8, 64, 64}, {4, 0, 8}, {2, 7, 100}} {
		var mu sync.Mutex
		seen := map[int64]int64{}
		var bad atomic.Bool
		err := tc.n.Each(context.Background(), tc.size, tc.step, func(_ context.Context, w int, off, n int64) error {
			if w < 0 || w >= int(tc.n) {
				bad.Store(true)
			}
			mu.Lock()
			seen[off] += n
			mu.Unlock()
			return nil
		})
		if err != nil || bad.Load() {
			t.Fatalf("%+v: err %v, goroutine index out of range %v", tc, err, bad.Load())
		}
		var total int64
		for off := int64(0); off < tc.size; off += tc.step {
			if want := min(tc.step, tc.size-off); seen[off] != want {
				t.Errorf("%+v: piece at %d has %d, want %d", tc, off, seen[off], want)
			}
			total += seen[off]
		}
		if total != tc.size || len(seen) != int((tc.size+tc.step-1)/tc.step) {
			t.Errorf("%+v: %d pieces, %d bytes", tc, len(seen), total)
		}
	}
}

// TestEachFirstError: the first error is returned, not the cancellation
// the other pieces then see, and the pieces not yet begun do not run.
func TestEachFirstError(t *testing.T) {
	boom := errors.New("boom")
	var ran atomic.Int64
	err := Workers(4).Each(context.Background(), 1000, 1, func(ctx context.Context, _ int, off, _ int64) error {
		ran.Add(1)
		if off == 10 {
			return boom
		}
		if off > 10 {
			<-ctx.Done() // a piece waiting on another, as an encode step does
			return ctx.Err()
		}
		return nil
	})
	if err != boom {
		t.Errorf("got %v, want %v", err, boom)
	}
	if n := ran.Load(); n > 20 {
		t.Errorf("%d pieces ran after the error", n)
	}
}

// TestEachCanceled: a canceled context stops the work with its error.
func TestEachCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var ran atomic.Int64
	err := Workers(2).Each(ctx, 100, 1, func(context.Context, int, int64, int64) error {
		ran.Add(1)
		return nil
	})
	if !errors.Is(err, context.Canceled) || ran.Load() != 0 {
		t.Errorf("got %v after %d pieces", err, ran.Load())
	}
}
