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

// release drops the pages of b, which starts on a page of a mapping, from
// the process's resident memory: for a shared file mapping the data stays
// in the page cache, and a later read faults it in again.
func release(b []byte) { _ = syscall.Madvise(b, syscall.MADV_DONTNEED) }
