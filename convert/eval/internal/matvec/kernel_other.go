//go:build !amd64 || purego

package matvec

// kernels lists the kernels this CPU can run, fastest first.
func kernels() []kernel { return []kernel{goKernel} }
