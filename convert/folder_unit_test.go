package convert

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
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
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestShardSpans(t *testing.T) {
	for _, tc := range []struct {
		sizes []uint64
		max   int64
		want  []span
	}{
		{nil, 10, []span{{0, 0}}},
		{[]uint64{3, 3, 3}, 10, []span{{0, 3}}},
		{[]uint64{4, 4, 4}, 10, []span{{0, 2}, {2, 3}}},
		{[]uint64{4, 6, 1}, 10, []span{{0, 2}, {2, 3}}},
		{[]uint64{20, 1, 20}, 10, []span{{0, 1}, {1, 2}, {2, 3}}}, // too large: alone
		{[]uint64{1, 20}, 10, []span{{0, 1}, {1, 2}}},
		{[]uint64{0, 0, 5}, 5, []span{{0, 3}}},
	} {
		if got := shardSpans(tc.sizes, tc.max); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("shardSpans(%v, %d) = %v, want %v", tc.sizes, tc.max, got, tc.want)
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
		if got := OutputIsFolder(tc.src, tc.dst); got != tc.want {
			t.Errorf("OutputIsFolder(%q, %q) = %v", tc.src, tc.dst, got)
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
		if got := DefaultOutput(tc.in); got != tc.want {
			t.Errorf("DefaultOutput(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got, err := DefaultRestoreOutput(q); err != nil || got != filepath.Join(dir, "phi.restored") {
		t.Errorf("DefaultRestoreOutput(%q) = %q, %v", q, got, err)
	}
	if got, err := DefaultRestoreOutput(m); err != nil || got != filepath.Join(dir, "phi.restored") {
		t.Errorf("DefaultRestoreOutput(%q) = %q, %v", m, got, err)
	}
	if _, err := DefaultRestoreOutput(filepath.Join(dir, "a.qins.safetensors")); err == nil {
		t.Error("a file has a default restore output")
	}
}

func TestSetTorchDType(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"indented", "{\n  \"a\": 1,\n  \"torch_dtype\": \"bfloat16\",\n  \"z\": [1, 2]\n}\n",
			"{\n  \"a\": 1,\n  \"torch_dtype\": \"float32\",\n  \"z\": [1, 2]\n}\n"},
		{"compact", `{"torch_dtype":"float16","b":{"c":"d"}}`, `{"torch_dtype":"float32","b":{"c":"d"}}`},
		{"null", `{"torch_dtype": null}`, `{"torch_dtype": "float32"}`},
		{"nested configs", `{"text_config": {"torch_dtype": "bfloat16", "dtype": "x"}, "torch_dtype": "bfloat16"}`,
			`{"text_config": {"torch_dtype": "float32", "dtype": "x"}, "torch_dtype": "float32"}`},
		{"new name", `{"dtype": "bfloat16", "v": "torch_dtype"}`, `{"dtype": "float32", "v": "torch_dtype"}`},
		{"value named like the key", `{"name": "torch_dtype", "list": ["torch_dtype", {"torch_dtype": "f"}]}`,
			`{"name": "torch_dtype", "list": ["torch_dtype", {"torch_dtype": "float32"}], "torch_dtype": "float32"}`},
		{"absent, indented", "{\n    \"a\": 1,\n    \"b\": {\"c\": 2}\n}\n", "{\n    \"a\": 1,\n    \"b\": {\"c\": 2},\n    \"torch_dtype\": \"float32\"\n}\n"},
		{"absent, compact", `{"a":1}`, `{"a":1, "torch_dtype": "float32"}`},
		{"empty", "{}\n", "{\"torch_dtype\": \"float32\"}\n"},
		{"escaped strings", `{"s": "a\"}", "torch_dtype"  :  "x"}`, `{"s": "a\"}", "torch_dtype"  :  "float32"}`},
	} {
		got, err := setTorchDType([]byte(tc.in), "float32")
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: got %q, %v\nwant %q", tc.name, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "[1]", `{"a":`, `"s"`, "{} {}"} {
		if _, err := setTorchDType([]byte(bad), "float32"); err == nil || !strings.Contains(err.Error(), "JSON") {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}
