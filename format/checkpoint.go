package format

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// IndexName is the name Hugging Face gives the index of a sharded checkpoint.
const IndexName = "model.safetensors.index.json"

// Tensor is a tensor of a checkpoint and the file that holds it.
type Tensor struct {
	TensorInfo
	File *File
}

// Section returns a reader of the tensor's data.
func (t Tensor) Section() *io.SectionReader { return t.File.Section(t.TensorInfo) }

// Mapped returns the tensor's data mapped from its file, or nil (see
// File.Mapped).
func (t Tensor) Mapped() []byte { return t.File.Mapped(t.TensorInfo) }

// Err returns err naming the tensor and its file, unless err is nil, a
// cancellation, or already names a file. The end of the file within a
// tensor's data, which Open checked was there, says the file shrank.
func (t Tensor) Err(err error) error {
	var fe *Error
	if err == nil || errors.Is(err, context.Canceled) || errors.As(err, &fe) {
		return err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = errShrank
	}
	return &Error{Path: t.File.Path, Tensor: t.Name, Err: err}
}

// errShrank is a read that met the end of a file before the data its
// header gives.
var errShrank = errors.New("changed while it was being read (it ended before its data); run again on a stable copy")

// Checkpoint is a model stored as one safetensors file, or as shards listed
// by an index.json.
type Checkpoint struct {
	// Path is the file, folder or index the checkpoint was opened from.
	Path string
	// Index is the index.json read, or empty for a single file.
	Index string
	// Files are the safetensors files, in shard order.
	Files []*File
	// Tensors are in shard order, then in the order of their data.
	Tensors []Tensor
	// Metadata merges the files' __metadata__; the first shard wins a
	// conflict.
	Metadata map[string]string
	ownMeta  bool // Metadata is not the first file's map
}

// OpenCheckpoint opens a safetensors file, a *.safetensors.index.json, or a
// folder holding either, and checks that an index and its shards agree.
func OpenCheckpoint(path string) (*Checkpoint, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, pathError(err)
	}
	if st.IsDir() {
		if path, err = pickInFolder(path); err != nil {
			return nil, err
		}
	}
	c := &Checkpoint{Path: path}
	if strings.HasSuffix(path, ".json") {
		c.Index = path
		err = c.openIndex(path)
	} else {
		var f *File
		if f, err = Open(path); err == nil {
			c.add(f)
		}
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Unchanged returns an error naming the first file of c that has changed
// since it was opened (see File.Unchanged).
func (c *Checkpoint) Unchanged() error {
	for _, f := range c.Files {
		if err := f.Unchanged(); err != nil {
			return err
		}
	}
	return nil
}

// IsInput reports whether path names one of c's files or its index: an
// output that must not be written there.
func (c *Checkpoint) IsInput(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	if c.Index != "" {
		if ist, err := os.Stat(c.Index); err == nil && os.SameFile(st, ist) {
			return true
		}
	}
	for _, f := range c.Files {
		if fst, err := f.Stat(); err == nil && os.SameFile(st, fst) {
			return true
		}
	}
	return false
}

// DataBytes returns the bytes of tensor data of c.
func (c *Checkpoint) DataBytes() int64 {
	var n int64
	for _, t := range c.Tensors {
		n += int64(t.Bytes())
	}
	return n
}

// pickInFolder finds what to open in a checkpoint folder.
func pickInFolder(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, IndexName)); err == nil {
		return filepath.Join(dir, IndexName), nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", pathError(err)
	}
	var indexes, files []string
	for _, e := range ents {
		switch name := e.Name(); {
		case strings.HasSuffix(name, ".safetensors.index.json"):
			indexes = append(indexes, name)
		case strings.HasSuffix(name, ".safetensors") && !strings.HasPrefix(name, "."):
			files = append(files, name)
		}
	}
	switch {
	case len(indexes) == 1:
		return filepath.Join(dir, indexes[0]), nil
	case len(indexes) > 1:
		shown := make([]string, len(indexes))
		for i, n := range indexes {
			shown[i] = Printable(n)
		}
		return "", &Error{Path: dir, Err: fmt.Errorf("holds several index files (%s): name the one to use", strings.Join(shown, ", "))}
	case len(files) == 1:
		return filepath.Join(dir, files[0]), nil
	case len(files) == 0:
		return "", &Error{Path: dir, Err: errors.New("holds no .safetensors file and no index.json")}
	}
	return "", &Error{Path: dir, Err: fmt.Errorf("holds %d .safetensors files and no index.json: name one file, or add the index", len(files))}
}

// add adds f's tensors and metadata to c. The checkpoint takes the
// tensors over: f.Tensors is then nil, so that a header's tensors are held
// once, whatever their number.
func (c *Checkpoint) add(f *File) {
	c.Files = append(c.Files, f)
	c.Tensors = slices.Grow(c.Tensors, len(f.Tensors))
	for _, t := range f.Tensors {
		c.Tensors = append(c.Tensors, Tensor{TensorInfo: t, File: f})
	}
	f.Tensors = nil
	switch {
	case len(c.Files) == 1:
		c.Metadata = f.Metadata // shared: neither is changed
	case len(f.Metadata) > 0:
		if !c.ownMeta { // stop sharing the first file's map
			c.Metadata, c.ownMeta = maps.Clone(c.Metadata), true
			if c.Metadata == nil {
				c.Metadata = make(map[string]string)
			}
		}
		for k, v := range f.Metadata {
			if _, ok := c.Metadata[k]; !ok {
				c.Metadata[k] = v
			}
		}
	}
}

// maxIndexSize bounds the index.json read into memory; real ones are tens of
// kilobytes.
const maxIndexSize = 64 << 20

func (c *Checkpoint) openIndex(path string) error {
	weightMap, err := readIndex(path)
	if err != nil {
		return err
	}
	byShard := make(map[string]map[string]bool)
	for name, shard := range weightMap {
		if byShard[shard] == nil {
			byShard[shard] = make(map[string]bool)
		}
		byShard[shard][name] = true
	}
	shards := make([]string, 0, len(byShard))
	for s := range byShard {
		shards = append(shards, s)
	}
	sort.Strings(shards)
	dir := filepath.Dir(path)
	for _, shard := range shards {
		sp := filepath.Join(dir, filepath.FromSlash(shard))
		if _, err := os.Stat(sp); errors.Is(err, os.ErrNotExist) {
			return &Error{Path: path, Err: fmt.Errorf("lists shard %q (for tensor %q and %d more), which does not exist", shard, anyKey(byShard[shard]), len(byShard[shard])-1)}
		}
		f, err := Open(sp)
		if err != nil {
			return err
		}
		first := len(c.Tensors)
		c.add(f)
		listed := byShard[shard]
		for _, t := range c.Tensors[first:] {
			if !listed[t.Name] {
				if other, ok := weightMap[t.Name]; ok {
					return &Error{Path: path, Tensor: t.Name, Err: fmt.Errorf("listed in shard %q, but shard %q holds it too", other, shard)}
				}
				return &Error{Path: path, Tensor: t.Name, Err: fmt.Errorf("is in shard %q but not listed in the index", shard)}
			}
			delete(listed, t.Name)
		}
		if len(listed) > 0 {
			return &Error{Path: path, Tensor: anyKey(listed), Err: fmt.Errorf("listed in the index, but shard %q does not hold it (and %d more)", shard, len(listed)-1)}
		}
	}
	return nil
}

func anyKey(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

// readIndex reads the weight_map of an index.json, refusing duplicate names
// and shard paths that leave the index's folder.
func readIndex(path string) (map[string]string, error) {
	f, err := OpenInput(path)
	if err != nil {
		return nil, pathError(err)
	}
	defer f.Close()
	js, err := io.ReadAll(io.LimitReader(f, maxIndexSize+1))
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	if len(js) > maxIndexSize {
		return nil, &Error{Path: path, Err: fmt.Errorf("is larger than %d bytes; not an index.json?", maxIndexSize)}
	}
	m, err := parseIndex(js)
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	return m, nil
}

// parseIndex parses the JSON of an index.json into its weight_map.
func parseIndex(js []byte) (map[string]string, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil || top == nil {
		return nil, errors.New("is not a JSON object (not an index.json?)")
	}
	raw, ok := top["weight_map"]
	if !ok {
		return nil, errors.New(`has no "weight_map"`)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New(`"weight_map" is not a JSON object`)
	}
	m := make(map[string]string)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf(`"weight_map" is not valid JSON: %v`, err)
		}
		name := tok.(string)
		v, err := dec.Token()
		shard, ok := v.(string)
		if err != nil || !ok {
			return nil, fmt.Errorf("weight_map: tensor %q: shard is not a string", name)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("weight_map: tensor %q is listed twice", name)
		}
		if name == "" {
			return nil, errors.New("weight_map lists a tensor with an empty name")
		}
		if !filepath.IsLocal(filepath.FromSlash(shard)) || strings.Contains(shard, `\`) {
			return nil, fmt.Errorf("weight_map: tensor %q: shard path %q leaves the checkpoint folder", name, shard)
		}
		m[name] = shard
	}
	if len(m) == 0 {
		return nil, errors.New(`"weight_map" lists no tensors`)
	}
	return m, nil
}

// Size returns the total size of the checkpoint's files.
func (c *Checkpoint) Size() int64 {
	var n int64
	for _, f := range c.Files {
		n += f.Size()
	}
	return n
}

// Close closes every file of the checkpoint.
func (c *Checkpoint) Close() error {
	var first error
	for _, f := range c.Files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.Files = nil
	return first
}
