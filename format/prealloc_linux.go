package format

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// preallocate allocates size bytes for f. Filesystems that cannot do it
// are left to allocate as the data comes.
func preallocate(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return nil
	}
	return err
}

// startWriteback starts writing a range of f to disk without waiting.
func startWriteback(f *os.File, off, n int64) {
	if n > 0 {
		unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
	}
}
