package format

import (
	"reflect"
	"testing"
)

func TestShardNames(t *testing.T) {
	for _, tc := range []struct {
		prefix string
		n      int
		shards []string
		index  string
	}{
		{"model", 1, []string{"model.safetensors"}, "model.safetensors.index.json"},
		{"model", 2, []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}, "model.safetensors.index.json"},
		{"model.qins", 3, []string{"model.qins-00001-of-00003.safetensors", "model.qins-00002-of-00003.safetensors", "model.qins-00003-of-00003.safetensors"}, "model.qins.safetensors.index.json"},
	} {
		shards, index := ShardNames(tc.prefix, tc.n)
		if !reflect.DeepEqual(shards, tc.shards) || index != tc.index {
			t.Errorf("ShardNames(%q, %d) = %v, %q", tc.prefix, tc.n, shards, index)
		}
	}
}

func TestMarshalIndex(t *testing.T) {
	got := string(MarshalIndex(12, map[string]string{"b": "s2", "a<": "s1"}))
	want := "{\n  \"metadata\": {\n    \"total_size\": 12\n  },\n  \"weight_map\": {\n    \"a\\u003c\": \"s1\",\n    \"b\": \"s2\"\n  }\n}\n"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	m, err := parseIndex([]byte(got))
	if err != nil || !reflect.DeepEqual(m, map[string]string{"a<": "s1", "b": "s2"}) {
		t.Errorf("parseIndex: %v, %v", m, err)
	}
}
