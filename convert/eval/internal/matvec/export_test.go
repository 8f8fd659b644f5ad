package matvec

// testKernels are the kernels this CPU runs; tests check each, so the Go
// fallback is covered on machines with an assembly kernel too.
var testKernels = kernels()
