package diff_test

import (
	"context"
	"fmt"
	"log"

	"github.com/qins-dev/qins/convert/diff"
)

// The small checkpoint of the golden tests, and its QINS file.
const (
	small     = "../../testdata/fuzz/small.safetensors"
	smallQINS = "../../testdata/fuzz/small.qins.safetensors"
)

func Example() {
	minSNR := 50.0
	r, err := diff.Diff(context.Background(), small, smallQINS, diff.Options{MinSNRdB: &minSNR})
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range r.Worst(3) {
		fmt.Printf("%s: snr %.1f dB, cosine %.4f, failing %v\n", t.Name, float64(t.SNRdB), float64(t.Cosine), t.Fails)
	}
	fmt.Printf("%d tensors compared, within the thresholds: %v\n", r.Total.Tensors, r.OK())
	// Output:
	// model.w: snr 46.2 dB, cosine 1.0000, failing [snr_db 46.22 < 50]
	// model.f16: snr 52.3 dB, cosine 1.0000, failing []
	// model.f64: snr 67.5 dB, cosine 1.0000, failing []
	// 7 tensors compared, within the thresholds: false
}
