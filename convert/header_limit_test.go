package convert

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/qins-dev/qins/convert/diff"
	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/qins"
)

// TestHeaderLimit checks that convert refuses, before writing anything,
// an output whose header would be above the limit, and that its early
// bound never exceeds the exact length.
func TestHeaderLimit(t *testing.T) {
	for _, src := range []string{tinyDir, smallSrc} {
		for _, e := range []qins.Encoding{{}, {Layout: qins.LayoutPacked}, {Granularity: qins.GranularityRow}, {Layout: qins.LayoutPacked, Range: qins.RangeMSE, Granularity: qins.GranularityRow}} {
			c, err := format.OpenCheckpoint(src)
			if err != nil {
				t.Fatal(err)
			}
			opts := Options{Layout: e.Layout, Range: e.Range, Granularity: e.Granularity}
			sel, err := checkConvert(c, &opts)
			if err != nil {
				t.Fatal(err)
			}
			p, err := (&convertFile{c: c, opts: &opts, sel: sel, limit: format.MaxHeaderSize, version: fileVersion(c, &opts, sel)}).plan()
			if err != nil {
				t.Fatal(err)
			}
			jobs, _ := newJobs(c, sel)
			exact, _ := format.CreatedHeaderLen(p.meta, p.tensors, p.reserve)
			least := leastHeaderLen(c, jobs, opts.encoding())
			c.Close()
			if least > exact || least < exact*9/10 {
				t.Errorf("%s, %s: early bound %d, exact %d", src, e, least, exact)
			}
			for _, tc := range []struct {
				limit int
				want  string
			}{
				{least - 1, "would take at least "},              // refused by the early bound
				{exact - 1, "would take " + strconv.Itoa(exact)}, // by the exact length
				{exact, ""}, // at the limit: written
			} {
				dir := t.TempDir()
				dst := filepath.Join(dir, "out.qins.safetensors")
				_, err := convertWith(context.Background(), src, dst, opts, convertHooks{maxHeader: tc.limit})
				ents, _ := os.ReadDir(dir)
				if tc.want == "" {
					if err != nil {
						t.Errorf("%s, %s, limit %d: %v", src, e, tc.limit, err)
					}
					continue
				}
				if !errors.Is(err, ErrHeaderTooLarge) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "above the safetensors limit") || len(ents) != 0 {
					t.Errorf("%s, %s, limit %d: got %v and %d files, want %q", src, e, tc.limit, err, len(ents), tc.want)
				}
			}
		}
	}
}

// TestCanceledBeforeTheTensors: the loops over a header's tensors look at
// the context before any tensor, and then every few thousand.
func TestCanceledBeforeTheTensors(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Inspect(ctx, smallSrc); err != context.Canceled {
		t.Errorf("inspect: %v", err)
	}
	if _, err := diff.Diff(ctx, smallSrc, smallQINS, diff.Options{}); err != context.Canceled {
		t.Errorf("diff: %v", err)
	}
	dir := t.TempDir()
	if _, err := Convert(ctx, smallSrc, filepath.Join(dir, "out.qins.safetensors"), Options{}); err != context.Canceled {
		t.Errorf("convert: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("convert left %d files", len(ents))
	}
}
