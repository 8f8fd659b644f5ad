package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{"5GB", 5_000_000_000, false},
		{"500MB", 500_000_000, false},
		{"2GiB", 2 << 30, false},
		{"10 kB", 10_000, false},
		{"1.5gb", 1_500_000_000, false},
		{"123456", 123456, false},
		{"100B", 100, false},
		{"", 0, true},
		{"GB", 0, true},
		{"5XB", 0, true},
		{"-1MB", 0, true},
		{"0", 0, true},
		{"1e30", 0, true},
		{"5 5MB", 0, true},
		{"5.5.5MB", 0, true},
		{"0x10", 0, true},
		{"NaN", 0, true},
	} {
		got, err := parseSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestOutputIsFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "m.safetensors")
	os.WriteFile(file, nil, 0o644)
	existing := filepath.Join(dir, "out")
	os.Mkdir(existing, 0o755)
	for _, tc := range []struct {
		src, dst string
		want     bool
	}{
		{dir, "x.safetensors", false},
		{dir, "x.qins", true},
		{dir, "x.restored", true},
		{dir, "x/", true},
		{dir, "x", true}, // a folder in, no .safetensors: a folder out
		{filepath.Join(dir, "model.safetensors.index.json"), "x", true},
		{file, "x", false},
		{file, "x.qins", true},
		{file, existing, true},
		{file, "x.qins.safetensors", false},
	} {
		if got := outputIsFolder(tc.src, tc.dst); got != tc.want {
			t.Errorf("outputIsFolder(%q, %q) = %v", tc.src, tc.dst, got)
		}
	}
}

func TestDefaultOutputs(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(dir, "phi")
	os.Mkdir(m, 0o755)
	q := filepath.Join(dir, "phi.qins")
	os.Mkdir(q, 0o755)
	for _, tc := range []struct{ in, want string }{
		{m, q},
		{m + "/", q},
		{filepath.Join(m, "model.safetensors.index.json"), q},
		{filepath.Join(dir, "a.safetensors"), filepath.Join(dir, "a.qins.safetensors")},
	} {
		if got := defaultOutput(tc.in); got != tc.want {
			t.Errorf("defaultOutput(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got, ok := defaultRestoreOutput(q); !ok || got != filepath.Join(dir, "phi.restored") {
		t.Errorf("defaultRestoreOutput(%q) = %q, %v", q, got, ok)
	}
	if got, ok := defaultRestoreOutput(m); !ok || got != filepath.Join(dir, "phi.restored") {
		t.Errorf("defaultRestoreOutput(%q) = %q, %v", m, got, ok)
	}
	if _, ok := defaultRestoreOutput(filepath.Join(dir, "a.qins.safetensors")); ok {
		t.Error("a file has a default restore output")
	}
	// A snapshot of the Hugging Face cache converts to NAME.qins in the
	// current folder, not to REV.qins inside the cache.
	snap := filepath.Join(dir, "hub", "models--microsoft--Phi-3.5-mini-instruct", "snapshots", "3145e03a9fd4cdd7cd953c34d9bbf7ad606122ca")
	os.MkdirAll(snap, 0o755)
	for _, in := range []string{snap, snap + "/", filepath.Join(snap, "model.safetensors.index.json")} {
		if got := defaultOutput(in); got != "Phi-3.5-mini-instruct.qins" {
			t.Errorf("defaultOutput(%q) = %q, want Phi-3.5-mini-instruct.qins", in, got)
		}
	}
	notCache := filepath.Join(dir, "models--x", "other", "rev")
	os.MkdirAll(notCache, 0o755)
	if got := defaultOutput(notCache); got != notCache+".qins" {
		t.Errorf("defaultOutput(%q) = %q", notCache, got)
	}
}
