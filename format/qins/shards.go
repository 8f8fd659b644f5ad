package qins

import (
	"fmt"
	"strings"

	"github.com/qins-dev/qins/format"
)

// checkShards checks that a QINS checkpoint of several shards keeps each
// encoded tensor in one shard: its codes, its signs and its "qins:NAME"
// entry together, and that every shard is QINS of the same version. The
// merged metadata Logicals reads would otherwise hide a "qins:NAME" entry
// given twice, or one left in another shard than its tensor.
func checkShards(c *format.Checkpoint) error {
	if len(c.Files) < 2 {
		return nil
	}
	holder := make(map[string]*format.File, len(c.Tensors))
	for _, t := range c.Tensors {
		holder[t.Name] = t.File
	}
	version := c.Metadata[VersionKey]
	seen := make(map[string]*format.File)
	for _, f := range c.Files {
		if v, ok := f.Metadata[VersionKey]; !ok {
			return &format.Error{Path: f.Path, Err: fmt.Errorf("is a shard of a QINS checkpoint (%s) without %q metadata", format.Printable(c.Path), VersionKey)}
		} else if v != version {
			return &format.Error{Path: f.Path, Err: fmt.Errorf("QINS version %q differs from the other shards' %q", v, version)}
		}
		for k := range f.Metadata {
			name, ok := strings.CutPrefix(k, ParamsPrefix)
			if !ok {
				continue
			}
			if other := seen[name]; other != nil {
				return &format.Error{Path: f.Path, Tensor: name, Err: fmt.Errorf("metadata %q is also in shard %s", k, format.Printable(other.Path))}
			}
			seen[name] = f
			// Only the parts this entry's layout names belong to it: a
			// tensor that merely ends in another suffix is an ordinary one.
			var e Encoding
			if m, err := ParseEncodedMeta(f.Metadata[k]); err == nil {
				e = m.Encoding
			}
			for _, p := range e.Parts() {
				if h := holder[name+e.Suffix(p)]; h != nil && h != f {
					return &format.Error{Path: f.Path, Tensor: name, Err: fmt.Errorf("metadata %q is in this shard but %s is in %s", k, format.Printable(name+e.Suffix(p)), format.Printable(h.Path))}
				}
			}
		}
	}
	return nil
}
