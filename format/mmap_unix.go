//go:build (linux || darwin || freebsd) && (amd64 || arm64)

package format

import (
	"os"
	"syscall"
)

// mapFile maps the size bytes of f read only, or returns nil.
func mapFile(f *os.File, size int64) []byte {
	if size <= 0 || size != int64(int(size)) {
		return nil
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil
	}
	return b
}

func unmap(b []byte) { _ = syscall.Munmap(b) }
