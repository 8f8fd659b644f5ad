package convert

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/qins"
)

// DefaultMaxShardBytes bounds the tensor data of a shard of a folder
// output by default: 5 GB, as Hugging Face's save_pretrained.
const DefaultMaxShardBytes = 5_000_000_000

// The weights of the folders Convert and Restore write are named after
// these prefixes, as ShardNames says: model.qins.safetensors, or
// model.qins-00001-of-00002.safetensors and so on with
// model.qins.safetensors.index.json; model.safetensors, or
// model-00001-of-00002.safetensors and so on with
// model.safetensors.index.json.
const (
	qinsPrefix     = "model.qins"
	restoredPrefix = "model"
)

// OutputIsFolder reports whether Convert or Restore of src writes a model
// folder at dst rather than one file: when dst is an existing folder, ends
// in a path separator, ends in .qins or .restored, or, for a src that is a
// folder or an index, does not end in .safetensors.
func OutputIsFolder(src, dst string) bool {
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		return true
	}
	if strings.HasSuffix(dst, "/") || strings.HasSuffix(dst, string(filepath.Separator)) {
		return true
	}
	base := filepath.Base(filepath.Clean(dst))
	switch {
	case strings.HasSuffix(base, ".qins"), strings.HasSuffix(base, ".restored"):
		return true
	case strings.HasSuffix(base, ".safetensors"):
		return false
	}
	_, isFolder := modelFolder(src)
	return isFolder
}

// modelFolder returns the folder of a model given as a folder or as an
// index inside one.
func modelFolder(src string) (string, bool) {
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		return filepath.Clean(src), true
	}
	if strings.HasSuffix(src, ".json") {
		return filepath.Dir(filepath.Clean(src)), true
	}
	return "", false
}

// besideFolder returns the folder dir renamed with suffix, beside it; a
// trailing .qins is replaced rather than kept.
func besideFolder(dir, suffix string) string {
	if abs, err := filepath.Abs(dir); err == nil && (dir == "." || dir == ".." || strings.HasSuffix(dir, "/..")) {
		dir = abs
	}
	base := filepath.Base(dir)
	if suffix != ".qins" {
		base = strings.TrimSuffix(base, ".qins")
	}
	return filepath.Join(filepath.Dir(dir), base+suffix)
}

// DefaultRestoreOutput returns where Restore writes when no output is
// given: for a QINS folder X.qins (or an index inside it), the folder
// X.restored beside it. A single file has no default.
func DefaultRestoreOutput(in string) (string, error) {
	if dir, ok := modelFolder(in); ok {
		return besideFolder(dir, ".restored"), nil
	}
	return "", ErrNoDefaultOutput
}

// ParseSize reads a size in bytes: a number, optionally followed by B, kB,
// MB, GB or TB (powers of 1000) or KiB, MiB, GiB or TiB (powers of 1024),
// in any case, as Hugging Face's max_shard_size.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRight(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ")
	units := map[string]float64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
	unit, ok := units[strings.ToLower(strings.TrimSpace(t[len(num):]))]
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !ok {
		return 0, fmt.Errorf("size %q: want a number of bytes, or one with a unit such as 500MB or 5GB", s)
	}
	n := v * unit
	if !(n >= 1) || n > 1<<62 {
		return 0, fmt.Errorf("size %q: out of range", s)
	}
	return int64(n), nil
}

// span is a run of consecutive tensors [from, to) stored in one shard.
type span struct{ from, to int }

// shardSpans splits tensors of the given sizes, in order, into shards of
// at most max bytes, as save_pretrained does: a tensor that does not fit
// starts a new shard, and one larger than max gets a shard of its own.
// There is always at least one shard.
func shardSpans(sizes []uint64, max int64) []span {
	if max <= 0 {
		max = DefaultMaxShardBytes
	}
	spans := []span{{}}
	var used uint64
	for i, n := range sizes {
		cur := &spans[len(spans)-1]
		if cur.to > cur.from && used+n > uint64(max) {
			spans = append(spans, span{from: i, to: i})
			cur, used = &spans[len(spans)-1], 0
		}
		cur.to = i + 1
		used += n
	}
	return spans
}

// writeShards writes n shards named after prefix into dw with write, adds
// their summaries to s, and writes the index that lists them when there
// are several.
func writeShards(dw *format.DirWriter, prefix string, n int, s *Summary, write func(i int, path string) (*Summary, error)) error {
	names, index := format.ShardNames(prefix, n)
	weightMap := make(map[string]string)
	var total uint64
	for i, name := range names {
		ss, err := write(i, dw.Path(name))
		if err != nil {
			return dw.Final(err)
		}
		s.add(ss)
		// The header just written says what the shard holds.
		f, err := format.Open(dw.Path(name))
		if err != nil {
			return err
		}
		for _, t := range f.Tensors {
			weightMap[t.Name] = name
			total += t.Bytes()
		}
		f.Close()
	}
	s.Shards = n
	if n == 1 {
		return nil
	}
	return dw.WriteFile(index, bytes.NewReader(format.MarshalIndex(total, weightMap)), 0o644, nil)
}

// stored returns the stored tensors of ls.
func stored(ls []qins.Logical) []format.Tensor {
	var ts []format.Tensor
	for _, l := range ls {
		if l.Encoded() {
			ts = append(ts, *l.Codes, *l.Signs)
			if l.Ranges != nil {
				ts = append(ts, *l.Ranges)
			}
		} else {
			ts = append(ts, *l.Plain)
		}
	}
	return ts
}
