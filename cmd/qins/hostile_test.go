package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// hostile returns files that every command must refuse with one line naming
// the file: a name and the bytes of each.
func hostile() map[string][]byte {
	raw := func(h string, data int) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
		return append(append(b, h...), make([]byte, data)...)
	}
	return map[string][]byte{
		"empty":            {},
		"short":            {1, 2, 3, 4, 5},
		"lfs-pointer":      []byte("version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 4972489328\n"),
		"header-2p62":      binary.LittleEndian.AppendUint64(nil, 1<<62),
		"header-too-big":   binary.LittleEndian.AppendUint64(nil, 100_000_001),
		"header-past-end":  raw(`{}`, 0)[:9],
		"not-json":         raw(`{"a":`, 0),
		"json-array":       raw(`[]`, 0),
		"metadata-number":  raw(`{"__metadata__":{"format":1}}`, 0),
		"duplicate":        raw(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2),
		"empty-name":       raw(`{"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1),
		"unknown-dtype":    raw(`{"a":{"dtype":"F4","shape":[1],"data_offsets":[0,1]}}`, 1),
		"negative-dim":     raw(`{"a":{"dtype":"U8","shape":[-2],"data_offsets":[0,1]}}`, 1),
		"overflow":         raw(`{"a":{"dtype":"F32","shape":[9223372036854775807,4],"data_offsets":[0,1]}}`, 1),
		"reversed":         raw(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[2,1]}}`, 2),
		"overlap":          raw(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, 3),
		"gap":              raw(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}}`, 3),
		"not-from-zero":    raw(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2),
		"short-of-end":     raw(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 2),
		"truncated":        raw(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}`, 10),
		"bytes-vs-shape":   raw(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8),
		"qins-no-sign":     raw(`{"__metadata__":{"qins":"1","qins:w":"{\"log_min\":-3,\"log_max\":0,\"dtype\":\"F32\"}"},"w.qins":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}`, 2),
		"qins-bad-version": raw(`{"__metadata__":{"qins":"9"}}`, 0),
		"qins-bad-range":   raw(`{"__metadata__":{"qins":"1","qins:w":"{\"log_min\":1,\"log_max\":0,\"dtype\":\"F32\"}"},"w.qins":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"w.sign":{"dtype":"I8","shape":[2],"data_offsets":[2,4]}}`, 4),
	}
}

// qinsWithData returns a valid QINS header over two elements whose codes
// and signs are given.
func qinsWithData(codes, signs [2]byte) []byte {
	h := `{"__metadata__":{"qins":"1","qins:w":"{\"log_min\":-3,\"log_max\":0,\"dtype\":\"F32\"}"},"w.qins":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"w.sign":{"dtype":"I8","shape":[2],"data_offsets":[2,4]}}`
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(h)))
	b = append(b, h...)
	return append(b, codes[0], codes[1], signs[0], signs[1])
}

func TestHostileInputs(t *testing.T) {
	cases := hostile()
	// Data errors only the decoder sees.
	cases["qins-code-0"] = qinsWithData([2]byte{5, 0}, [2]byte{1, 1})
	cases["qins-sign-5"] = qinsWithData([2]byte{5, 6}, [2]byte{1, 5})
	dataOnly := map[string]bool{"qins-code-0": true, "qins-sign-5": true}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, name+".safetensors")
			if err := os.WriteFile(in, content, 0o444); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out.safetensors")
			cmds := [][]string{
				{"convert", in, "-o", out},
				{"restore", in, "-o", out},
				{"inspect", in},
				{"diff", in, in},
				{"diff", tiny, in},
			}
			for _, args := range cmds {
				want := 1
				if args[0] == "diff" {
					want = 2 // diff: 1 means "differs", 2 "cannot read"
				}
				if dataOnly[name] && (args[0] == "inspect" || args[0] == "convert" || args[1] == tiny) {
					// inspect reads no data, convert refuses a QINS input
					// anyway, and the tiny checkpoint has no tensor "w".
					continue
				}
				code, _, errs := runQINS(t, args...)
				lines := strings.Split(strings.TrimRight(errs, "\n"), "\n")
				if code != want || !strings.HasPrefix(lines[0], "qins: error: ") || !strings.Contains(lines[0], in) || len(lines) > 2 {
					t.Errorf("%s: exit %d (want %d), stderr %q: want one line naming %s", strings.Join(args[:1], " "), code, want, errs, in)
				}
				if dataOnly[name] && !strings.Contains(lines[0], `tensor "w"`) {
					t.Errorf("%s: %q does not name the tensor", args[0], lines[0])
				}
				if got := files(t, dir); len(got) != 1 {
					t.Errorf("%s left %v behind", args[0], got)
				}
			}
			if after, _ := os.ReadFile(in); string(after) != string(content) {
				t.Error("input modified")
			}
		})
	}
}
