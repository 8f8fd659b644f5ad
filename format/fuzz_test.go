package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
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

// bytesFit reports whether n elements of d take exactly size bytes.
func bytesFit(d dtype.DType, n, size uint64) bool {
	b, ok := d.Bytes(n)
	return ok && b == size
}

// FuzzReadHeader checks that any file either fails to parse or yields a
// header whose tensors tile the data exactly and survive a round trip.
func FuzzReadHeader(f *testing.F) {
	seedFiles(f, "../testdata/fuzz/small.safetensors", "../testdata/fuzz/small.qins.safetensors")
	f.Add(rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1}))
	f.Add([]byte("version https://git-lfs.github.com/spec/v1\n"))
	f.Add(rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"dtype":"I8"}}`, []byte{1}))
	f.Add(rawFile(`{"a":{"DTYPE":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1}))
	f.Add(rawFile(`{"__metadata__":{"k":"1","k":"2"},"a\u0000\ud83d\ude00<&>":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, []byte{1}))
	// One tensor of each dtype, and sub-byte ones of sizes that do and do
	// not fill whole bytes.
	for _, d := range dtype.All() {
		size, _ := d.Bytes(4)
		f.Add(rawFile(fmt.Sprintf(`{"a":{"dtype":"%v","shape":[2,2],"data_offsets":[0,%d]}}`, d, size), make([]byte, size)))
	}
	f.Add(rawFile(`{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}`, make([]byte, 2)))
	f.Add(rawFile(`{"a":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[0,3]},"b":{"dtype":"F6_E3M2","shape":[1,2],"data_offsets":[3,5]}}`, make([]byte, 5)))
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
			if n, ok := Elements(ti.Shape); !ok || !bytesFit(ti.DType, n, ti.Bytes()) {
				t.Fatalf("tensor %+v: size does not match its shape", ti)
			}
			pos = ti.End
		}
		if pos != size {
			t.Fatalf("tensors end at %d, data holds %d", pos, size)
		}
		enc := Encode(h.Metadata, h.Tensors, 0)
		if n, ok := headerLen(h.Metadata, h.Tensors); !ok || n != len(bytes.TrimRight(enc, " ")) {
			t.Fatalf("HeaderLen %d, Encode wrote %d bytes before its padding", n, len(bytes.TrimRight(enc, " ")))
		}
		for _, ti := range h.Tensors {
			if js, _ := json.Marshal(ti.Name); string(js) != string(appendJSONString(nil, ti.Name)) {
				t.Fatalf("name %q escaped as %s, encoding/json writes %s", ti.Name, appendJSONString(nil, ti.Name), js)
			}
		}
		again, err := ParseHeader(enc, size)
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
