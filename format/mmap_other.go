//go:build !((linux || darwin || freebsd) && (amd64 || arm64))

package format

import "os"

// mapFile maps nothing here: the readers read sections.
func mapFile(f *os.File, size int64) []byte { return nil }

func unmap(b []byte) {}

func release(b []byte) {}
