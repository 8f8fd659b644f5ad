//go:build !linux

package outfile

import "errors"

// exchange is only available on Linux; elsewhere the old output is renamed
// aside first.
func exchange(a, b string) error { return errors.New("no atomic exchange") }
