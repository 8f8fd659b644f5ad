package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/qins-dev/qins/convert"
)

// The command line's choices of output: whether an output is a folder,
// and where an output goes when -o is not given.

// outputIsFolder reports whether a convert or restore of src writes a model
// folder at dst rather than one file: when dst is an existing folder, ends
// in a path separator, ends in .qins or .restored, or, for a src that is a
// folder or an index, does not end in .safetensors.
func outputIsFolder(src, dst string) bool {
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		return true
	}
	if strings.HasSuffix(dst, "/") || strings.HasSuffix(dst, string(filepath.Separator)) {
		return true
	}
	base := filepath.Base(filepath.Clean(dst))
	switch {
	case strings.HasSuffix(base, ".qins"), strings.HasSuffix(base, ".restored"):
		return true
	case strings.HasSuffix(base, ".safetensors"):
		return false
	}
	_, isFolder := convert.ModelFolder(src)
	return isFolder
}

// defaultOutput returns where convert writes when no output is given: for
// a folder, or an index inside one, the folder <folder>.qins beside it, or,
// for a snapshot of the Hugging Face cache
// (.../models--ORG--NAME/snapshots/REV), NAME.qins in the current folder;
// for a file, <SRC name>.qins.safetensors beside it.
func defaultOutput(src string) string {
	if dir, ok := convert.ModelFolder(src); ok {
		if name, ok := cacheModelName(dir); ok {
			return name + ".qins"
		}
		return besideFolder(dir, ".qins")
	}
	src = filepath.Clean(src)
	base := strings.TrimSuffix(filepath.Base(src), ".safetensors")
	return filepath.Join(filepath.Dir(src), base+".qins.safetensors")
}

// cacheModelName returns NAME for a snapshot folder of the Hugging Face
// cache, .../models--ORG--NAME/snapshots/REV, whose own name is only a
// revision, and which is no place to write into.
func cacheModelName(dir string) (string, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	snapshots, repo := filepath.Dir(abs), filepath.Dir(filepath.Dir(abs))
	parts := strings.Split(filepath.Base(repo), "--")
	if filepath.Base(snapshots) != "snapshots" || len(parts) < 2 || parts[0] != "models" || parts[len(parts)-1] == "" {
		return "", false
	}
	return parts[len(parts)-1], true
}

// defaultRestoreOutput returns where restore writes when no output is
// given: for a QINS folder X.qins (or an index inside it), the folder
// X.restored beside it. A single file has none.
func defaultRestoreOutput(in string) (string, bool) {
	if dir, ok := convert.ModelFolder(in); ok {
		return besideFolder(dir, ".restored"), true
	}
	return "", false
}

// besideFolder returns the folder dir renamed with suffix, beside it; a
// trailing .qins is replaced rather than kept.
func besideFolder(dir, suffix string) string {
	if abs, err := filepath.Abs(dir); err == nil && (dir == "." || dir == ".." || strings.HasSuffix(dir, "/..")) {
		dir = abs
	}
	base := filepath.Base(dir)
	if suffix != ".qins" {
		base = strings.TrimSuffix(base, ".qins")
	}
	return filepath.Join(filepath.Dir(dir), base+suffix)
}

// parseSize reads a size in bytes: a number, optionally followed by B, kB,
// MB, GB or TB (powers of 1000) or KiB, MiB, GiB or TiB (powers of 1024),
// in any case, as Hugging Face's max_shard_size.
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRight(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ")
	units := map[string]float64{"": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
	unit, ok := units[strings.ToLower(strings.TrimSpace(t[len(num):]))]
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !ok {
		return 0, fmt.Errorf("size %q: want a number of bytes, or one with a unit such as 500MB or 5GB", s)
	}
	n := v * unit
	if !(n >= 1) || n > 1<<62 {
		return 0, fmt.Errorf("size %q: out of range: want 1 byte to 4 EiB", s)
	}
	return int64(n), nil
}
