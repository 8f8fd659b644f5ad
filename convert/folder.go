package convert

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"

	"github.com/qins-dev/qins/format/outfile"

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

// ModelFolder returns the folder of a model given as a folder or as an
// index inside one, and whether src is one of those; a file's is "".
func ModelFolder(src string) (string, bool) {
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		return filepath.Clean(src), true
	}
	if strings.HasSuffix(src, ".json") {
		return filepath.Dir(filepath.Clean(src)), true
	}
	return "", false
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
func writeShards(dw *outfile.DirWriter, prefix string, n int, s *Summary, write func(i int, path string) (*Summary, error)) error {
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
			ts = append(ts, *l.Codes)
			if l.Signs != nil {
				ts = append(ts, *l.Signs)
			}
			if l.Ranges != nil {
				ts = append(ts, *l.Ranges)
			}
		} else {
			ts = append(ts, *l.Plain)
		}
	}
	return ts
}
