package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// ShardNames returns the file names of a checkpoint stored under prefix in
// n shards, as Hugging Face names them: prefix.safetensors for one,
// prefix-00001-of-0000n.safetensors and so on for more, and the name of
// the index that lists them (written only for more than one).
func ShardNames(prefix string, n int) (shards []string, index string) {
	if n == 1 {
		return []string{prefix + ".safetensors"}, prefix + ".safetensors.index.json"
	}
	for i := 1; i <= n; i++ {
		shards = append(shards, fmt.Sprintf("%s-%05d-of-%05d.safetensors", prefix, i, n))
	}
	return shards, prefix + ".safetensors.index.json"
}

// MarshalIndex renders a Hugging Face index.json: the total size of the
// tensor data and the shard of each tensor, keys sorted and indented by
// two spaces as save_pretrained writes it.
func MarshalIndex(totalSize uint64, weightMap map[string]string) []byte {
	names := make([]string, 0, len(weightMap))
	for n := range weightMap {
		names = append(names, n)
	}
	sort.Strings(names)
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n  \"metadata\": {\n    \"total_size\": %d\n  },\n  \"weight_map\": {", totalSize)
	for i, n := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(n)
		v, _ := json.Marshal(weightMap[n])
		fmt.Fprintf(&b, "\n    %s: %s", k, v)
	}
	b.WriteString("\n  }\n}\n")
	return b.Bytes()
}
