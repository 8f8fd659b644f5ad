package format_test

import (
	"fmt"
	"log"

	"github.com/qins-dev/qins/format"
)

// OpenCheckpoint reads a model however it is stored: one file, an index
// and its shards, or a folder holding either.
func ExampleOpenCheckpoint() {
	c, err := format.OpenCheckpoint("../testdata/phi-3.5-mini-tiny")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Printf("%d files, %d tensors, %d bytes\n", len(c.Files), len(c.Tensors), c.Size())
	for _, t := range c.Tensors[:2] {
		fmt.Println(t.Name, t.DType, t.Shape, t.Elements())
	}
	// Output:
	// 2 files, 195 tensors, 194352 bytes
	// model.embed_tokens.weight BF16 [128 16] 2048
	// model.layers.0.input_layernorm.weight BF16 [16] 16
}
