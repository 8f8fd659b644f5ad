package eval_test

import (
	"context"
	"fmt"
	"log"

	"github.com/qins-dev/qins/convert/eval"
)

// Eval compares two checkpoints as language models. Here a model against
// itself, on a given token stream: every prediction agrees.
func ExampleEval() {
	const model = "../../testdata/stories260K" // config.json and a tokenizer beside the weights
	opts := eval.Options{Tokens: []int{1, 403, 407, 261, 378}, Generate: -1}
	r, err := eval.Eval(context.Background(), model, model, opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d positions, top-1 agreement %.2f, mean KLD %.3g, within the thresholds: %v\n",
		r.Architecture, r.Positions, r.Top1, r.KLD.Mean, r.OK())
	// Output: LlamaForCausalLM: 4 positions, top-1 agreement 1.00, mean KLD 0, within the thresholds: true
}
