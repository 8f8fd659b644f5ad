package outfile

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

// openDirect opens the file at path for direct writes of a file of size
// bytes, or returns nil where the file system refuses them: some refuse
// O_DIRECT when opening, others only when writing, so one block is
// written to find out.
func openDirect(path string, size int64) *directWriter {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	if _, err := f.WriteAt(alignedBuffer(blockSize), 0); err != nil {
		f.Close()
		return nil
	}
	return newDirectWriter(f, size)
}
