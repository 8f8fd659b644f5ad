//go:build !unix

package tokenizer

import "time"

// cpuTime is not measured here; benchmarks then skip their CPU metric.
func cpuTime() time.Duration { return 0 }
