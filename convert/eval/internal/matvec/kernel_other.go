//go:build !amd64 || purego

package matvec

// kernels lists the kernels this CPU can run, fastest first.
func kernels() []kernel { return []kernel{goKernel} }

// sumBlocks sums nothing here: sumWords does it all in Go.
func sumBlocks(b []byte) (uint64, int) { return 0, 0 }

// prefetchTable does nothing here.
func prefetchTable(*byte) {}
