package format

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// seedFiles adds the committed small files to a fuzz corpus.
func seedFiles(f *testing.F, paths ...string) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzReadHeader checks that any file either fails to parse or yields a
// header whose tensors tile the data exactly and survive a round trip.
func FuzzReadHeader(f *testing.F) {
	seedFiles(f, "../testdata/fuzz/small.safetensors", "../testdata/fuzz/small.qins.safetensors")
	f.Add(rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1}))
	f.Add([]byte("version https://git-lfs.github.com/spec/v1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, start, err := ReadHeader(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		size := uint64(int64(len(b)) - start)
		pos := uint64(0)
		for _, ti := range h.Tensors {
			if ti.Name == "" || ti.Begin != pos || ti.End < ti.Begin {
				t.Fatalf("tensor %+v at %d", ti, pos)
			}
			if n, ok := Elements(ti.Shape); !ok || n*ti.DType.Size() != ti.Bytes() {
				t.Fatalf("tensor %+v: size does not match its shape", ti)
			}
			pos = ti.End
		}
		if pos != size {
			t.Fatalf("tensors end at %d, data holds %d", pos, size)
		}
		again, err := ParseHeader(Encode(h.Metadata, h.Tensors, 0), size)
		if err != nil {
			t.Fatalf("re-encoded header does not parse: %v", err)
		}
		if len(again.Tensors) != len(h.Tensors) || len(again.Metadata) != len(h.Metadata) {
			t.Fatalf("round trip changed the header")
		}
	})
}

// FuzzParseIndex checks that an accepted index only names shards inside
// its folder.
func FuzzParseIndex(f *testing.F) {
	seedFiles(f, "../testdata/phi-3.5-mini-tiny/"+IndexName)
	f.Add([]byte(`{"weight_map":{"a":"../x.safetensors"}}`))
	f.Add([]byte(`{"weight_map":{"a":"/abs.safetensors","b":"ok.safetensors"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseIndex(b)
		if err != nil {
			return
		}
		for name, shard := range m {
			if name == "" || !filepath.IsLocal(filepath.FromSlash(shard)) {
				t.Fatalf("accepted %q -> %q", name, shard)
			}
		}
	})
}
