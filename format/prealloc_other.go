//go:build !linux

package format

import "os"

// preallocate does nothing where fallocate is not available.
func preallocate(*os.File, int64) error { return nil }

// startWriteback does nothing where sync_file_range is missing.
func startWriteback(*os.File, int64, int64) {}
