package convert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/qins-dev/qins/format/outfile"

	"github.com/qins-dev/qins/convert/diff"
	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/format/qins"
)

const storiesDir = "../../shared/fixtures/llm/stories260K"

// copyDir copies the files of src (one level) into a new folder dst, as
// writable files.
func copyDir(t *testing.T, src, dst string) string {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// names lists a folder.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// checkWeights checks the weight files of an output folder: named as
// ShardNames says for prefix, the index (when sharded) agreeing with the
// shards and its total_size right, every shard within max bytes of data
// unless it holds a single tensor. It returns the number of shards.
func checkWeights(t *testing.T, dir, prefix string, max int64) int {
	t.Helper()
	var shards []string
	for _, n := range names(t, dir) {
		if strings.HasSuffix(n, ".safetensors") {
			shards = append(shards, n)
		}
	}
	want, index := format.ShardNames(prefix, len(shards))
	if !equalStrings(shards, want) {
		t.Fatalf("%s: weights %v, want %v", dir, shards, want)
	}
	_, err := os.Stat(filepath.Join(dir, index))
	if (len(shards) > 1) != (err == nil) {
		t.Errorf("%s: %d shards, index present: %v", dir, len(shards), err == nil)
	}
	var total uint64
	for _, s := range shards {
		f, err := format.Open(filepath.Join(dir, s))
		if err != nil {
			t.Fatal(err)
		}
		if d := f.DataSize(); int64(d) > max && len(f.Tensors) > 2 {
			t.Errorf("%s: %d bytes of data, above %d", s, d, max)
		}
		total += f.DataSize()
		f.Close()
	}
	if len(shards) > 1 {
		var idx struct {
			Metadata struct {
				TotalSize uint64 `json:"total_size"`
			} `json:"metadata"`
			WeightMap map[string]string `json:"weight_map"`
		}
		b, _ := os.ReadFile(filepath.Join(dir, index))
		if err := json.Unmarshal(b, &idx); err != nil {
			t.Fatal(err)
		}
		if idx.Metadata.TotalSize != total {
			t.Errorf("%s: total_size %d, the shards hold %d", index, idx.Metadata.TotalSize, total)
		}
		// Every entry in its shard and every shard tensor listed: the
		// checkpoint reader checks both ways.
		if _, err := format.OpenCheckpoint(filepath.Join(dir, index)); err != nil {
			t.Error(err)
		}
	}
	return len(shards)
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00")
}

// checkSideFiles checks that every file of src but its weights is in out,
// byte for byte, but config.json's dtype when dtype is set, and that out
// holds nothing else but weights.
func checkSideFiles(t *testing.T, src, out, dtype string) {
	t.Helper()
	want := map[string]bool{}
	for _, n := range names(t, src) {
		if isWeightFile(n) {
			continue
		}
		want[n] = true
		a, _ := os.ReadFile(filepath.Join(src, n))
		b, err := os.ReadFile(filepath.Join(out, n))
		if err != nil {
			t.Errorf("%s missing: %v", n, err)
			continue
		}
		if n == "config.json" && dtype != "" {
			a, _ = setTorchDType(a, dtype)
			if !bytes.Contains(b, []byte(`"torch_dtype": "`+dtype+`"`)) {
				t.Errorf("config.json: torch_dtype not %s:\n%s", dtype, b)
			}
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from the source", n)
		}
	}
	for _, n := range names(t, out) {
		if !want[n] && !isWeightFile(n) {
			t.Errorf("%s: unexpected file %s", out, n)
		}
	}
}

func TestFolderRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name, src       string
		convMax, resMax int64 // 0: the default, one shard
	}{
		{"tiny", tinyDir, 0, 0},
		{"tiny sharded", tinyDir, 50_000, 100_000},
		{"tiny one tensor per shard", tinyDir, 1, 1},
		{"stories260K", storiesDir, 0, 0},
		{"stories260K sharded", storiesDir, 100_000, 300_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(tc.src); err != nil {
				t.Skipf("%s is not here", tc.src)
			}
			ctx := context.Background()
			dir := t.TempDir()
			q, r := filepath.Join(dir, "m.qins"), filepath.Join(dir, "m.restored")
			s, err := convertTo(ctx, tc.src, q, Options{WriteOptions: WriteOptions{MaxShardBytes: tc.convMax, ChunkBytes: 4096}})
			if err != nil {
				t.Fatal(err)
			}
			src := open(t, tc.src)
			if s.Encoded == 0 || s.Encoded+s.Copied != len(src.Tensors) {
				t.Errorf("summary: %d encoded + %d copied, source has %d", s.Encoded, s.Copied, len(src.Tensors))
			}
			max := tc.convMax
			if max == 0 {
				max = DefaultMaxShardBytes
			}
			n := checkWeights(t, q, qinsPrefix, max)
			if (tc.convMax == 0) != (n == 1) || s.Shards != n {
				t.Errorf("%d shards (summary %d) with --max-shard-size %d", n, s.Shards, tc.convMax)
			}
			if tc.convMax == 1 && n != s.Encoded+s.Copied {
				t.Errorf("%d shards for %d tensors of more than 1 byte each", n, s.Encoded+s.Copied)
			}
			checkSideFiles(t, tc.src, q, "")

			// The folder holds the same codes as the single file.
			single := filepath.Join(dir, "single.qins.safetensors")
			if _, err := convertTo(ctx, tc.src, single, Options{}); err != nil {
				t.Fatal(err)
			}
			same(t, single, q)

			rep, err := Inspect(context.Background(), q)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.QINS || rep.Total.Tensors != len(src.Tensors) || rep.Total.Encoded != s.Encoded || len(rep.Files) != n {
				t.Errorf("inspect: qins %v, %d tensors, %d encoded, %d files", rep.QINS, rep.Total.Tensors, rep.Total.Encoded, len(rep.Files))
			}

			rs, err := restoreTo(ctx, q, r, RestoreOptions{WriteOptions: WriteOptions{MaxShardBytes: tc.resMax, ChunkBytes: 999}, DType: dtype.BF16})
			if err != nil {
				t.Fatal(err)
			}
			if rs.Encoded != s.Encoded {
				t.Errorf("restore decoded %d, convert encoded %d", rs.Encoded, s.Encoded)
			}
			max = tc.resMax
			if max == 0 {
				max = DefaultMaxShardBytes
			}
			checkWeights(t, r, restoredPrefix, max)
			checkSideFiles(t, tc.src, r, "bfloat16")
			rc := open(t, r)
			if rc.Metadata["format"] != "pt" || qins.IsQINS(rc.Metadata) {
				t.Errorf("restored metadata %v", rc.Metadata)
			}

			// Within the README's figures, both from the QINS folder and
			// from the restored one.
			lo, cos, rel := 30.0, 0.999, 0.05
			opts := diff.Options{MinSNRdB: &lo, MinCosine: &cos, MaxRelRMSE: &rel}
			for _, b := range []string{q, r} {
				d, err := diff.Diff(ctx, tc.src, b, opts)
				if err != nil {
					t.Fatal(err)
				}
				if !d.OK() || d.Total.Tensors != len(src.Tensors) {
					t.Errorf("diff %s: ok %v, %d tensors, %d failing, missing %v %v", b, d.OK(), d.Total.Tensors, d.Total.Failing, d.MissingInA, d.MissingInB)
				}
			}
		})
	}
}

// same checks that two QINS checkpoints hold the same tensors, stored
// byte for byte alike, with the same parameters.
func same(t *testing.T, a, b string) {
	t.Helper()
	ca, la, err := openModel(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, lb, err := openModel(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	if len(la) != len(lb) {
		t.Fatalf("%d tensors against %d", len(la), len(lb))
	}
	inB := map[string]qins.Logical{}
	for _, l := range lb {
		inB[l.Name] = l
	}
	for _, x := range la {
		y, ok := inB[x.Name]
		if !ok || x.Params != y.Params || x.Encoded() != y.Encoded() || x.DType != y.DType {
			t.Fatalf("%s: differs", x.Name)
		}
		if x.Encoded() {
			if !bytes.Equal(readAll(t, *x.Codes), readAll(t, *y.Codes)) || !bytes.Equal(readAll(t, *x.Signs), readAll(t, *y.Signs)) {
				t.Fatalf("%s: codes or signs differ", x.Name)
			}
		} else if !bytes.Equal(readAll(t, *x.Plain), readAll(t, *y.Plain)) {
			t.Fatalf("%s: data differs", x.Name)
		}
	}
}

// cancelAfter cancels a context once n bytes of progress were reported,
// and counts the files matching glob at that moment.
type cancelAfter struct {
	n      int64
	done   atomic.Int64
	cancel context.CancelFunc
	glob   string
	seen   atomic.Int64
}

func (p *cancelAfter) Start(int64) {}
func (p *cancelAfter) Add(n int64) {
	if d := p.done.Add(n); d >= p.n && d-n < p.n {
		m, _ := filepath.Glob(p.glob)
		p.seen.Store(int64(len(m)))
		p.cancel()
	}
}

func TestFolderRefusals(t *testing.T) {
	dir := t.TempDir()
	src := copyDir(t, tinyDir, filepath.Join(dir, "phi"))
	before := snapshot(t, src)
	q := filepath.Join(dir, "phi.qins")
	if _, err := convertTo(context.Background(), src, q, Options{WriteOptions: WriteOptions{MaxShardBytes: 60_000}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		run     func() error
		want    string
		wantErr error
	}{
		{"output inside the input", func() error {
			_, err := convertTo(context.Background(), src, filepath.Join(src, "out.qins"), Options{WriteOptions: WriteOptions{Force: true}})
			return err
		}, "inside the input folder", nil},
		{"output is the input", func() error {
			_, err := convertTo(context.Background(), src, src+"/", Options{WriteOptions: WriteOptions{Force: true}})
			return err
		}, "input", nil},
		{"output holds the input", func() error {
			_, err := convertTo(context.Background(), src, dir, Options{WriteOptions: WriteOptions{Force: true}})
			return err
		}, "an input of this command", nil},
		{"restore into the QINS folder", func() error {
			_, err := restoreTo(context.Background(), q, filepath.Join(q, "r.restored"), RestoreOptions{WriteOptions: WriteOptions{Force: true}})
			return err
		}, "inside the input folder", nil},
		{"existing output", func() error {
			_, err := convertTo(context.Background(), src, q, Options{})
			return err
		}, "output exists", outfile.ErrExists},
		{"existing restore output", func() error {
			if err := os.Mkdir(filepath.Join(dir, "r.restored"), 0o755); err != nil {
				return err
			}
			os.WriteFile(filepath.Join(dir, "r.restored", "model.safetensors"), nil, 0o644)
			_, err := restoreTo(context.Background(), q, filepath.Join(dir, "r.restored"), RestoreOptions{})
			os.RemoveAll(filepath.Join(dir, "r.restored"))
			return err
		}, "output exists", outfile.ErrExists},
		{"shard size for a file", func() error {
			_, err := convertTo(context.Background(), src, filepath.Join(dir, "x.safetensors"), Options{WriteOptions: WriteOptions{MaxShardBytes: 1}})
			return err
		}, "folder output", nil},
		{"convert cancelled before", func() error {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := convertTo(ctx, src, filepath.Join(dir, "c.qins"), Options{})
			return err
		}, "", context.Canceled},
		{"convert cancelled in the second shard", func() error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p := &cancelAfter{n: 100_000, cancel: cancel, glob: filepath.Join(dir, ".c.qins.tmp-*", "model.qins-00001-of-*.safetensors")}
			_, err := convertTo(ctx, src, filepath.Join(dir, "c.qins"), Options{WriteOptions: WriteOptions{MaxShardBytes: 60_000, ChunkBytes: 512, Progress: p}})
			if p.seen.Load() != 1 {
				t.Errorf("cancelled with %d first shards written", p.seen.Load())
			}
			return err
		}, "", context.Canceled},
		{"restore cancelled in the second shard", func() error {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p := &cancelAfter{n: 120_000, cancel: cancel, glob: filepath.Join(dir, ".c.restored.tmp-*", "model-00001-of-*.safetensors")}
			_, err := restoreTo(ctx, q, filepath.Join(dir, "c.restored"), RestoreOptions{WriteOptions: WriteOptions{MaxShardBytes: 100_000, ChunkBytes: 512, Progress: p}})
			if p.seen.Load() != 1 {
				t.Errorf("cancelled with %d first shards written", p.seen.Load())
			}
			return err
		}, "", context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			top := snapshot(t, dir)
			qb := snapshot(t, q)
			err := tc.run()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) || (tc.wantErr != nil && !errors.Is(err, tc.wantErr)) {
				t.Errorf("error %q, want %q (%v)", err, tc.want, tc.wantErr)
			}
			if after := snapshot(t, dir); after != top {
				t.Errorf("the folder changed:\n%s\nnow:\n%s", top, after)
			}
			if snapshot(t, q) != qb || snapshot(t, src) != before {
				t.Error("an input or the existing output changed")
			}
		})
	}
}

// snapshot describes a folder: names, sizes and contents of its files, one
// level deep.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	for _, n := range names(t, dir) {
		p := filepath.Join(dir, n)
		st, _ := os.Stat(p)
		line := n
		if !st.IsDir() {
			b, _ := os.ReadFile(p)
			line += " " + string(rune(len(b))) + string(b)
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestFolderForceReplaces(t *testing.T) {
	dir := t.TempDir()
	q := filepath.Join(dir, "m.qins")
	if err := os.MkdirAll(filepath.Join(q, "old"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(q, "stale.safetensors"), []byte("stale"), 0o644)
	if _, err := convertTo(context.Background(), tinyDir, q, Options{WriteOptions: WriteOptions{Force: true}}); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); !equalStrings(got, []string{"m.qins"}) {
		t.Errorf("left beside the output: %v", got)
	}
	if got := names(t, q); !equalStrings(got, []string{"config.json", "model.qins.safetensors"}) {
		t.Errorf("output holds %v", got)
	}
	// A file in the way is replaced too.
	r := filepath.Join(dir, "m.restored")
	os.WriteFile(r, []byte("a file"), 0o644)
	if _, err := restoreTo(context.Background(), q, r, RestoreOptions{WriteOptions: WriteOptions{Force: true}}); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(r); err != nil || !st.IsDir() {
		t.Errorf("%s not replaced by a folder: %v", r, err)
	}
	if got := names(t, dir); len(got) != 2 {
		t.Errorf("left beside the outputs: %v", got)
	}
}

// TestProgressAddsUp: convert and restore report exactly the total they
// start with, in every layout and granularity, to a file and to a folder.
func TestProgressAddsUp(t *testing.T) {
	ctx := context.Background()
	for _, e := range []qins.Encoding{{}, {Layout: qins.LayoutPacked}, {Granularity: qins.GranularityRow}, {Layout: qins.LayoutPacked, Range: qins.RangeMSE, Granularity: qins.GranularityRow}} {
		for _, out := range []string{"q.safetensors", "q.qins"} {
			dir := t.TempDir()
			q := filepath.Join(dir, out)
			var cp sumProgress
			opts := Options{WriteOptions: WriteOptions{ChunkBytes: 999, MaxShardBytes: 0, Progress: &cp}, Layout: e.Layout, Range: e.Range, Granularity: e.Granularity}
			if strings.HasSuffix(out, ".qins") {
				opts.MaxShardBytes = 100_000
			}
			if _, err := convertTo(ctx, tinyDir, q, opts); err != nil {
				t.Fatal(err)
			}
			var rp sumProgress
			r := filepath.Join(dir, strings.Replace(out, "q.", "r.", 1))
			if strings.HasSuffix(out, ".qins") {
				r = filepath.Join(dir, "r.restored")
			}
			if _, err := restoreTo(ctx, q, r, RestoreOptions{WriteOptions: WriteOptions{ChunkBytes: 777, Progress: &rp}}); err != nil {
				t.Fatal(err)
			}
			for what, p := range map[string]*sumProgress{"convert": &cp, "restore": &rp} {
				if p.total == 0 || p.sum.Load() != p.total {
					t.Errorf("%v, %s: %s progress adds up to %d of %d", e, out, what, p.sum.Load(), p.total)
				}
			}
		}
	}
}
