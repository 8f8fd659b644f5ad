package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/qins-dev/qins/convert"
	"github.com/qins-dev/qins/format/qins"
)

func TestWriteSummary(t *testing.T) {
	byDefault := summaryOf{converted, choice{by: "the default"}}
	cases := []struct {
		name string
		s    convert.Summary
		how  summaryOf
		want string
	}{
		{"convert of 16-bit tensors to u8+i8", convert.Summary{Input: "m", Output: "m.qins.safetensors", Encoded: 3, Copied: 1, BytesIn: 2000, BytesOut: 3000, FP32Bytes: 4000, PackedBytes: 1500, EncodedElems: 1000, EncodedBytes: 2000, Elapsed: 2 * time.Second}, summaryOf{converted, choice{by: "--reference"}},
			"converted m -> m.qins.safetensors\n" +
				"  tensors:  3 encoded, 1 copied\n" +
				"  size:     2.0 kB in, 3.0 kB out (1.500x the source, 0.750x of FP32 at 4.0 kB)\n" +
				"  encoding: log codec, u8+i8 layout, a minmax range per tensor (--reference): 16.000 bits per encoded weight\n" +
				"  hint:     the encoded tensors are 16-bit, so 2 bytes per weight saves nothing over them;\n" +
				"            the packed layout (1.125 bytes per weight, the same values) would give about 1.5 kB (0.750x the source)\n" +
				"  time:     2.00 s, 0 MB/s\n"},
		{"the default, long rows", convert.Summary{Input: "m", Output: "q", Encoded: 1, BytesIn: 2 * 4096 * 4096, BytesOut: 9*2048*1024 + 8*4096 + 200, EncodedElems: 4096 * 4096, EncodedBytes: 9*2048*1024 + 8*4096, RangeBytes: 8 * 4096,
			Encoding: qins.Encoding{Layout: qins.LayoutPacked, Range: qins.RangeMSE, Granularity: qins.GranularityRow}}, byDefault,
			"converted m -> q\n" +
				"  tensors:  1 encoded, 0 copied\n" +
				"  size:     33.6 MB in, 18.9 MB out (0.563x the source, - of FP32 at 0 B)\n" +
				"  encoding: log codec, packed layout, an mse range per row (the default): 9.016 bits per encoded weight\n" +
				"  time:     0.00 s, 0 MB/s\n"},
		{"the default, short rows", convert.Summary{Input: "m", Output: "q", Encoded: 1, BytesIn: 2 * 16 * 16, BytesOut: 9*2*16 + 100, EncodedElems: 16 * 16, EncodedBytes: 9 * 2 * 16, ShortRows: 4,
			Encoding: qins.Encoding{Layout: qins.LayoutPacked, Range: qins.RangeMSE, Granularity: qins.GranularityTensor}}, byDefault,
			"converted m -> q\n" +
				"  tensors:  1 encoded, 0 copied\n" +
				"  size:     512 B in, 388 B out (0.758x the source, - of FP32 at 0 B)\n" +
				"  encoding: log codec, packed layout, an mse range per tensor (the default; the rows are short: their ranges would take 4.000 bits per weight): 9.000 bits per encoded weight\n" +
				"  time:     0.00 s, 0 MB/s\n"},
		{"short rows asked for", convert.Summary{Input: "m", Output: "q", Encoded: 1, BytesIn: 2 * 16 * 16, BytesOut: 9*2*16 + 8*16 + 100, EncodedElems: 16 * 16, EncodedBytes: 9*2*16 + 8*16, RangeBytes: 8 * 16,
			Encoding: qins.Encoding{Layout: qins.LayoutPacked, Range: qins.RangeMSE, Granularity: qins.GranularityRow}}, summaryOf{converted, choice{by: "--granularity row, the rest by default"}},
			"converted m -> q\n" +
				"  tensors:  1 encoded, 0 copied\n" +
				"  size:     512 B in, 516 B out (1.008x the source, - of FP32 at 0 B)\n" +
				"  encoding: log codec, packed layout, an mse range per row (--granularity row, the rest by default): 13.000 bits per encoded weight\n" +
				"  time:     0.00 s, 0 MB/s\n"},
		{"restore into a folder", convert.Summary{Input: "m.qins", Output: "m.restored", Encoded: 2, Copied: 5, BytesIn: 0, BytesOut: 10, FP32Bytes: 10, Shards: 2, SideFiles: 3}, summaryOf{d: restored},
			"restored m.qins -> m.restored\n" +
				"  tensors:  2 decoded, 5 copied\n" +
				"  size:     0 B in, 10 B out (- the source, 1.000x of FP32 at 10 B)\n" +
				"  folder:   2 weight file(s) and their index, 3 other file(s) copied\n" +
				"  time:     0.00 s, 0 MB/s\n"},
		{"a name that does not print", convert.Summary{Input: "a\nb", Output: "o", Shards: 1}, byDefault,
			"converted \"a\\nb\" -> o\n" +
				"  tensors:  0 encoded, 0 copied\n" +
				"  size:     0 B in, 0 B out (- the source, - of FP32 at 0 B)\n" +
				"  folder:   1 weight file(s), 0 other file(s) copied\n" +
				"  time:     0.00 s, 0 MB/s\n"},
	}
	for _, c := range cases {
		var b bytes.Buffer
		if err := writeSummary(&b, &c.s, c.how); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", c.name, b.String(), c.want)
		}
	}
}
