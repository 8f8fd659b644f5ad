//go:build !linux

package outfile

import "os"

// preallocate does nothing where fallocate is not available.
func preallocate(*os.File, int64) error { return nil }

// startWriteback does nothing where sync_file_range is missing.
func startWriteback(*os.File, int64, int64) {}

// openDirect returns nil: direct I/O is only used on Linux.
func openDirect(string, int64) *directWriter { return nil }
