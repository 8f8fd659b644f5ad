package convert

import (
	"context"
	"strings"
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

// convertTo is Convert with a folder output exactly when dst does not end
// in .safetensors, as the tests name their outputs.
func convertTo(ctx context.Context, src, dst string, opts Options) (*Summary, error) {
	opts.Folder = !strings.HasSuffix(dst, ".safetensors")
	return Convert(ctx, src, dst, opts)
}

// restoreTo is Restore with a folder output exactly when out does not end
// in .safetensors.
func restoreTo(ctx context.Context, in, out string, opts RestoreOptions) (*Summary, error) {
	opts.Folder = !strings.HasSuffix(out, ".safetensors")
	return Restore(ctx, in, out, opts)
}
