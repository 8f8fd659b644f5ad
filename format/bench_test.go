package format

import (
	"encoding/binary"
	"os"
	"testing"
)

// BenchmarkParseHeader parses the header of the first shard of the tiny
// checkpoint: the names and shapes of Phi-3.5-mini, as large as the real
// model's header.
func BenchmarkParseHeader(b *testing.B) {
	raw, err := os.ReadFile("../testdata/phi-3.5-mini-tiny/model-00001-of-00002.safetensors")
	if err != nil {
		b.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	js := raw[8 : 8+n]
	data := uint64(len(raw)) - 8 - n
	b.SetBytes(int64(n))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseHeader(js, data); err != nil {
			b.Fatal(err)
		}
	}
}
