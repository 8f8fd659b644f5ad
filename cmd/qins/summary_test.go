package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/qins-dev/qins/convert"
)

func TestWriteSummary(t *testing.T) {
	cases := []struct {
		name string
		s    convert.Summary
		d    direction
		want string
	}{
		{"convert of 16-bit tensors to u8+i8", convert.Summary{Input: "m", Output: "m.qins.safetensors", Encoded: 3, Copied: 1, BytesIn: 2000, BytesOut: 3000, FP32Bytes: 4000, PackedBytes: 1500, Elapsed: 2 * time.Second}, converted,
			"converted m -> m.qins.safetensors\n" +
				"  tensors: 3 encoded, 1 copied\n" +
				"  size:    2.0 kB in, 3.0 kB out (1.500x the source, 0.750x of FP32 at 4.0 kB)\n" +
				"  hint:    the encoded tensors are 16-bit, so 2 bytes per weight saves nothing over them;\n" +
				"           --layout packed (1.125 bytes per weight) would give about 1.5 kB (0.750x the source)\n" +
				"  time:    2.00 s, 0 MB/s\n"},
		{"restore into a folder", convert.Summary{Input: "m.qins", Output: "m.restored", Encoded: 2, Copied: 5, BytesIn: 0, BytesOut: 10, FP32Bytes: 10, Shards: 2, SideFiles: 3}, restored,
			"restored m.qins -> m.restored\n" +
				"  tensors: 2 decoded, 5 copied\n" +
				"  size:    0 B in, 10 B out (- the source, 1.000x of FP32 at 10 B)\n" +
				"  folder:  2 weight file(s) and their index, 3 other file(s) copied\n" +
				"  time:    0.00 s, 0 MB/s\n"},
		{"a name that does not print", convert.Summary{Input: "a\nb", Output: "o", Shards: 1}, converted,
			"converted \"a\\nb\" -> o\n" +
				"  tensors: 0 encoded, 0 copied\n" +
				"  size:    0 B in, 0 B out (- the source, - of FP32 at 0 B)\n" +
				"  folder:  1 weight file(s), 0 other file(s) copied\n" +
				"  time:    0.00 s, 0 MB/s\n"},
	}
	for _, c := range cases {
		var b bytes.Buffer
		if err := writeSummary(&b, &c.s, c.d); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", c.name, b.String(), c.want)
		}
	}
}
