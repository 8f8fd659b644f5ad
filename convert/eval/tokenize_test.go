package eval

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A checkpoint without a tokenizer beside it is an error naming its
// folder, even when that folder is "." (a path that other words contain).
func TestLoadTokenizerNone(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.safetensors"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, c := range []struct{ arg, want string }{
		{"m.safetensors", ".: no tokenizer.json or tokenizer.model"},
		{".", ".: no tokenizer.json or tokenizer.model"},
		{dir, dir + ": no tokenizer.json or tokenizer.model"},
	} {
		_, err := LoadTokenizer(c.arg)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("LoadTokenizer(%q): error %v, want one starting %q", c.arg, err, c.want)
		}
	}
}
