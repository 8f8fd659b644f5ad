package convert_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/qins-dev/qins/convert"
	"github.com/qins-dev/qins/format/qins"
)

// The small checkpoint of the golden tests: every float dtype and the
// codec's special tensors.
const (
	small     = "../testdata/fuzz/small.safetensors"
	smallQINS = "../testdata/fuzz/small.qins.safetensors"
)

func ExampleConvert() {
	dir, err := os.MkdirTemp("", "qins-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	out := filepath.Join(dir, "small.qins.safetensors")
	s, err := convert.Convert(context.Background(), small, out, convert.Options{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d tensors encoded, %d copied; %d bytes in, %d out\n", s.Encoded, s.Copied, s.BytesIn, s.BytesOut)
	// Output: 5 tensors encoded, 2 copied; 664 bytes in, 1666 out
}

// The zero Options are the formula's encoding; the typed fields choose
// another, and WriteOptions say how the output is written.
func ExampleConvert_options() {
	dir, err := os.MkdirTemp("", "qins-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	opts := convert.Options{
		Layout:       qins.LayoutPacked,   // sign bits: 1.125 bytes a weight
		Range:        qins.RangeMSE,       // log_min for the least squared error
		Granularity:  qins.GranularityRow, // one range per row
		WriteOptions: convert.WriteOptions{Force: true},
	}
	out := filepath.Join(dir, "small.qins.safetensors")
	s, err := convert.Convert(context.Background(), small, out, opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d tensors encoded: %d weights in %d bytes\n", s.Encoded, s.EncodedElems, s.EncodedBytes)
	// Output: 5 tensors encoded: 49 weights in 161 bytes
}

func ExampleRestore() {
	dir, err := os.MkdirTemp("", "qins-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The default options decode to F32; RestoreOptions.DType chooses.
	out := filepath.Join(dir, "small.restored.safetensors")
	s, err := convert.Restore(context.Background(), smallQINS, out, convert.RestoreOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d tensors decoded, %d copied; %d bytes out\n", s.Encoded, s.Copied, s.BytesOut)
	// Output: 5 tensors decoded, 2 copied; 724 bytes out
}

func ExampleInspect() {
	r, err := convert.Inspect(context.Background(), smallQINS)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range r.Tensors {
		fmt.Println(t.Name, t.DType, t.Shape, t.Encoded)
	}
	fmt.Printf("QINS version %s: %d bytes of tensors\n", r.Version, r.Total.Bytes)
	// Output:
	// model.steps I64 [1] false
	// model.norm F32 [4] false
	// model.w BF16 [4 8] true
	// model.f16 F16 [2 3] true
	// model.f64 F64 [2 2] true
	// model.const F32 [3 1] true
	// model.zero F32 [2 2] true
	// QINS version 1: 122 bytes of tensors
}
