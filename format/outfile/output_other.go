//go:build !linux

package outfile

import (
	"errors"
	"os"
)

// openUnnamed returns nil: unnamed files are only used on Linux.
func openUnnamed(string) *os.File { return nil }

// fdPath is not used where openUnnamed returns nil.
func fdPath(*os.File) string { return "" }

// linkNoReplace is not used where openUnnamed returns nil.
func linkNoReplace(string, string) error { return errors.ErrUnsupported }

// renameNoReplace renames src to dst unless dst exists: a hard link then
// an unlink, or where links are refused a check then a rename.
func renameNoReplace(src, dst string) error {
	err := os.Link(src, dst)
	switch {
	case err == nil:
		os.Remove(src)
		return nil
	case errors.Is(err, os.ErrExist):
		return ErrExists
	}
	return renameChecked(src, dst)
}
