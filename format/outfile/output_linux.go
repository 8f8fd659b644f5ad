package outfile

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// openUnnamed opens a new file without a name in dir (O_TMPFILE), or
// returns nil where the file system or the kernel cannot, or where /proc,
// through which the file is later named and reopened, is missing.
func openUnnamed(dir string) *os.File {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o666)
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), dir)
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil
	}
	if pst, err := os.Stat(fdPath(f)); err != nil || !os.SameFile(st, pst) {
		f.Close()
		return nil
	}
	return f
}

// fdPath names the open file f through /proc.
func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

// linkNoReplace gives the file at src (a /proc/self/fd link) the name
// dst, failing with ErrExists when dst exists.
func linkNoReplace(src, dst string) error {
	err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.AT_SYMLINK_FOLLOW)
	if errors.Is(err, unix.EEXIST) {
		return ErrExists
	}
	if err != nil {
		return &os.LinkError{Op: "link", Old: src, New: dst, Err: err}
	}
	return nil
}

// renameNoReplace renames src to dst, failing with ErrExists when dst
// exists: renameat2(RENAME_NOREPLACE), or where the file system lacks it
// a hard link then an unlink. A file system with neither gets a check
// then a rename, which a file appearing in between can beat.
func renameNoReplace(src, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return ErrExists
	case !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EOPNOTSUPP):
		return &os.LinkError{Op: "rename", Old: src, New: dst, Err: err}
	}
	err = unix.Link(src, dst)
	switch {
	case err == nil:
		os.Remove(src)
		return nil
	case errors.Is(err, unix.EEXIST):
		return ErrExists
	}
	return renameChecked(src, dst)
}
