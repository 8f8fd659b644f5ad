package eval

import (
	"errors"
	"io/fs"
	"os"
	"testing"
)

func TestInputErrorNamesPath(t *testing.T) {
	for _, c := range []struct {
		path string
		err  error
		want string
	}{
		{"", errors.New("bad"), "bad"},
		{"m.safetensors", errors.New("bad"), "m.safetensors: bad"},
		{".", errors.New("no tokenizer.json"), ".: no tokenizer.json"},
		{"a/config.json", errors.New("vocab_size 5, but b/a/config.json has 7"), "a/config.json: vocab_size 5, but b/a/config.json has 7"},
		{"x.bin", errors.New("x.bin: bad"), "x.bin: bad"},
		{"x.bin", &os.PathError{Op: "stat", Path: "x.bin", Err: fs.ErrPermission}, "stat x.bin: permission denied"},
	} {
		if got := (&InputError{Path: c.path, Err: c.err}).Error(); got != c.want {
			t.Errorf("InputError{%q, %q}: %q, want %q", c.path, c.err, got, c.want)
		}
	}
}
