package convert

import (
	"reflect"
	"strings"
	"testing"
)

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
		// A value that is not a string is replaced in place, whatever it is:
		// never a second key (issue 23).
		{"number", `{"torch_dtype": 5}`, `{"torch_dtype": "float32"}`},
		{"number, compact, then a key", `{"torch_dtype":-1.5e3,"a":1}`, `{"torch_dtype":"float32","a":1}`},
		{"number, spaces", "{\"a\": 1, \"torch_dtype\" : 16 \n}", "{\"a\": 1, \"torch_dtype\" : \"float32\" \n}"},
		{"true", `{"torch_dtype": true, "b": false}`, `{"torch_dtype": "float32", "b": false}`},
		{"false", `{"torch_dtype":false}`, `{"torch_dtype":"float32"}`},
		{"object", `{"torch_dtype": {"a": [1, {"b": null}], "torch_dtype": "x"}, "c": 2}`, `{"torch_dtype": "float32", "c": 2}`},
		{"empty object", `{"torch_dtype": {}}`, `{"torch_dtype": "float32"}`},
		{"array", `{"torch_dtype": ["bfloat16", {"torch_dtype": 1}], "c": [3]}`, `{"torch_dtype": "float32", "c": [3]}`},
		{"empty array", "{\n  \"torch_dtype\": [],\n  \"c\": 3\n}\n", "{\n  \"torch_dtype\": \"float32\",\n  \"c\": 3\n}\n"},
		{"top-level dtype, number", `{"dtype": 7, "a": "b"}`, `{"dtype": "float32", "a": "b"}`},
		{"top-level dtype, object", `{"a": 0, "dtype": {"x": 1}}`, `{"a": 0, "dtype": "float32"}`},
		{"nested dtype is not the model's", `{"sub": {"dtype": 3}}`, `{"sub": {"dtype": 3}, "torch_dtype": "float32"}`},
		{"nested, not strings", `{"text_config": {"torch_dtype": 5}, "vision_config": {"torch_dtype": null, "x": [1]}, "torch_dtype": [1]}`,
			`{"text_config": {"torch_dtype": "float32"}, "vision_config": {"torch_dtype": "float32", "x": [1]}, "torch_dtype": "float32"}`},
		{"nested only, a number", `{"text_config": {"torch_dtype": 2}}`, `{"text_config": {"torch_dtype": "float32"}, "torch_dtype": "float32"}`},
		{"in an array of objects", `{"l": [{"torch_dtype": 1}, {"torch_dtype": {}}], "torch_dtype": 0}`, `{"l": [{"torch_dtype": "float32"}, {"torch_dtype": "float32"}], "torch_dtype": "float32"}`},
		{"unicode around", `{"é": "ü", "torch_dtype": 1, "z": "\u00e9"}`, `{"é": "ü", "torch_dtype": "float32", "z": "\u00e9"}`},
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
