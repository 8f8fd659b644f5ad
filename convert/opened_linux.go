package convert

import (
	"os"
	"strconv"
)

// openedPath returns the path of the file f has open, as the kernel knows
// it (symlinks resolved when it was opened), and whether it could tell.
func openedPath(f *os.File) (string, bool) {
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	return p, err == nil && len(p) > 0 && p[0] == '/'
}
