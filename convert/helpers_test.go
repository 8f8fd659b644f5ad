package convert

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/qins-dev/qins/convert/diff"
)

// diffOf compares a and b with diff.Diff in many small chunks, merged
// across workers.
func diffOf(t *testing.T, a, b string, opts diff.Options) *diff.Report {
	t.Helper()
	opts.ChunkElems = 3
	r, err := diff.Diff(context.Background(), a, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// sumProgress adds up what a pipeline reports.
type sumProgress struct {
	total int64
	sum   atomic.Int64
}

func (p *sumProgress) Start(total int64) { p.total = total }
func (p *sumProgress) Add(n int64)       { p.sum.Add(n) }
