package convert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/qins-dev/qins/format"
)

// sideFile is a file of a model folder other than its weights: config,
// tokenizer, chat template, licence, code.
type sideFile struct {
	rel  string // slash-separated, relative to the folder
	path string // the file to read, symlinks resolved
}

// maxFolderDepth bounds how deep sideFiles looks into subfolders, which
// also stops symlink loops.
const maxFolderDepth = 8

// sideFiles lists the files of the model folder dir that an output folder
// copies: every regular file, in subfolders too, symlinks followed, except
// hidden ones (a name starting with "."), the checkpoint's own files, and
// weights in any format (isWeightFile). dir "" has none.
func sideFiles(dir string, c *format.Checkpoint) ([]sideFile, error) {
	if dir == "" {
		return nil, nil
	}
	var inputs []os.FileInfo
	for _, f := range c.Files {
		if st, err := f.Stat(); err == nil {
			inputs = append(inputs, st)
		}
	}
	if c.Index != "" {
		if st, err := os.Stat(c.Index); err == nil {
			inputs = append(inputs, st)
		}
	}
	var out []sideFile
	var walk func(abs, rel string, depth int) error
	walk = func(abs, rel string, depth int) error {
		ents, err := os.ReadDir(abs)
		if err != nil {
			return &format.Error{Path: abs, Err: err}
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") || isWeightFile(name) {
				continue
			}
			p, r := filepath.Join(abs, name), path.Join(rel, name)
			st, err := os.Stat(p) // follows symlinks
			if err != nil {
				return &format.Error{Path: p, Err: fmt.Errorf("cannot be copied: %v", err)}
			}
			switch {
			case st.IsDir():
				if depth >= maxFolderDepth {
					return &format.Error{Path: p, Err: fmt.Errorf("is more than %d folders deep (a symbolic link loop?)", maxFolderDepth)}
				}
				if err := walk(p, r, depth+1); err != nil {
					return err
				}
			case !st.Mode().IsRegular():
				return &format.Error{Path: p, Err: errors.New("is not a regular file; cannot copy it")}
			case !sameAsAny(st, inputs):
				real, err := filepath.EvalSymlinks(p)
				if err != nil {
					return &format.Error{Path: p, Err: err}
				}
				out = append(out, sideFile{rel: r, path: real})
			}
		}
		return nil
	}
	if err := walk(dir, "", 0); err != nil {
		return nil, err
	}
	return out, nil
}

func sameAsAny(st os.FileInfo, list []os.FileInfo) bool {
	for _, o := range list {
		if os.SameFile(st, o) {
			return true
		}
	}
	return false
}

// isWeightFile reports whether a file name is one of a checkpoint's
// weights or their index, in safetensors or in another format: an output
// folder holds its own weights and does not carry the source's.
func isWeightFile(name string) bool {
	lower := strings.ToLower(name)
	for _, suf := range []string{".safetensors", ".safetensors.index.json", ".pth", ".pt", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx", ".onnx_data", ".tflite", ".ot"} {
		if strings.HasSuffix(lower, suf) {
			return true
		}
	}
	return strings.HasPrefix(lower, "pytorch_model") && (strings.HasSuffix(lower, ".bin") || strings.HasSuffix(lower, ".bin.index.json"))
}

// checkFolderOutput refuses an output folder that would write into an
// input or replace one: dst inside the input folder dir, or dst being, or
// holding, any file read.
func checkFolderOutput(dst, dir string, c *format.Checkpoint, side []sideFile) error {
	out, err := resolve(dst)
	if err != nil {
		return &format.Error{Path: dst, Err: err}
	}
	inputs := []string{c.Index}
	for _, f := range c.Files {
		inputs = append(inputs, f.Path)
	}
	for _, s := range side {
		inputs = append(inputs, s.path)
	}
	if dir != "" {
		in, err := resolve(dir)
		if err != nil {
			return &format.Error{Path: dir, Err: err}
		}
		if within(out, in) {
			return &format.Error{Path: dst, Err: fmt.Errorf("is inside the input folder %s; write the output elsewhere", dir)}
		}
		inputs = append(inputs, dir)
	}
	for _, p := range inputs {
		if p == "" {
			continue
		}
		in, err := resolve(p)
		if err == nil && within(in, out) {
			return &format.Error{Path: dst, Err: fmt.Errorf("is or holds %s, an input of this command; refusing to write there", p)}
		}
	}
	return nil
}

// resolve returns the absolute path of p with symlinks resolved, for p or,
// when p does not exist yet, for its parent.
func resolve(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		return r, nil
	}
	parent, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	return filepath.Join(parent, filepath.Base(abs)), nil
}

// within reports whether path p is dir or inside it; both are absolute and
// clean.
func within(p, dir string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// maxConfigSize bounds the config.json read into memory to set its dtype.
const maxConfigSize = 16 << 20

// copySideFiles copies the side files into dw; when dtype is not empty,
// config.json gets it as its torch_dtype (see setTorchDType).
func copySideFiles(ctx context.Context, dw *format.DirWriter, side []sideFile, dtype string) error {
	made := map[string]bool{".": true}
	for _, s := range side {
		if err := ctx.Err(); err != nil {
			return err
		}
		if d := path.Dir(s.rel); !made[d] {
			if err := dw.Mkdir(d); err != nil {
				return err
			}
			made[d] = true
		}
		if dtype == "" || s.rel != "config.json" {
			if err := dw.CopyFile(s.rel, s.path, ctx.Err); err != nil {
				return err
			}
			continue
		}
		js, err := readSmall(s.path, maxConfigSize)
		if err != nil {
			return err
		}
		if js, err = setTorchDType(js, dtype); err != nil {
			return &format.Error{Path: s.path, Err: err}
		}
		if err := dw.WriteFile(s.rel, strings.NewReader(string(js)), nil); err != nil {
			return err
		}
	}
	return nil
}

// readSmall reads a file of at most limit bytes.
func readSmall(p string, limit int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, &format.Error{Path: p, Err: err}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &format.Error{Path: p, Err: err}
	}
	if int64(len(b)) > limit {
		return nil, &format.Error{Path: p, Err: fmt.Errorf("is larger than %d bytes", limit)}
	}
	return b, nil
}
