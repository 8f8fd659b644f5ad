//go:build !linux

package convert

import "os"

// openedPath cannot tell the path of an open file here: the path checks
// made when the file was listed stand alone.
func openedPath(*os.File) (string, bool) { return "", false }
