package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/qins-dev/qins/format/outfile"

	"github.com/qins-dev/qins/format"
)

// sideFile is a file of a model folder other than its weights: config,
// tokenizer, chat template, licence, code.
type sideFile struct {
	rel  string      // slash-separated, relative to the folder
	path string      // the file to read, symlinks resolved
	info os.FileInfo // when listed: the copy and the commit check it again
}

// Side-file limits: what a folder output copies beside its weights. Real
// model folders hold at most tens of megabytes of them (Gemma 3's
// tokenizer.json, 33 MB, is among the largest); the limits stop a hostile
// or mistaken folder from filling the disk.
const (
	// DefaultMaxSideFile bounds one side file, in bytes.
	DefaultMaxSideFile = 1 << 30
	// DefaultMaxSideTotal bounds the side files of a folder together.
	DefaultMaxSideTotal = 4 << 30
	// maxSideCount bounds how many side files a folder may have.
	maxSideCount = 1 << 16
)

// ErrOutsideLink is the error, inside a *format.Error naming the link, of
// a side file or folder that is a symbolic link leading outside the model
// folder (and outside the Hugging Face cache repository it belongs to).
// WriteOptions.SkipOutsideLinks skips such files instead.
var ErrOutsideLink = errors.New("leads outside the model folder")

// ErrSideTooLarge is the error of a side file, or of the side files
// together, above WriteOptions.MaxSideFile or MaxSideTotal.
var ErrSideTooLarge = errors.New("above the limit for files copied beside the weights")

// linkScope is where the links of a model folder may lead: inside the
// folder, or, for a snapshot of the Hugging Face cache
// (models--ORG--NAME/snapshots/REV, whose files are links to
// ../../blobs/HASH), to a file of that repository's blobs.
type linkScope struct {
	root  string // the folder, absolute, symlinks resolved
	blobs string // the cache repository's blobs folder, or ""
}

func newLinkScope(dir string) (linkScope, error) {
	root, err := resolve(dir)
	if err != nil {
		return linkScope{}, &format.Error{Path: dir, Err: err}
	}
	s := linkScope{root: root}
	snapshots := filepath.Dir(root)
	repo := filepath.Dir(snapshots)
	if filepath.Base(snapshots) == "snapshots" && strings.HasPrefix(filepath.Base(repo), "models--") {
		s.blobs = filepath.Join(repo, "blobs")
	}
	return s, nil
}

// allows reports whether real (absolute, symlinks resolved) may be read:
// anything inside the folder, and a regular file directly inside the
// cache's blobs (never the blobs folder itself, which holds every
// revision's weights).
func (s linkScope) allows(real string, st os.FileInfo) bool {
	return within(real, s.root) || s.blobs != "" && st.Mode().IsRegular() && filepath.Dir(real) == s.blobs
}

// sideList is what sideFiles finds: the files to copy, and the links
// leading outside the folder that opts.SkipOutsideLinks skipped.
type sideList struct {
	files   []sideFile
	skipped []string
}

// sideFiles lists the files of the model folder dir that an output folder
// copies: every regular file, in subfolders too, except hidden ones (a
// name starting with "."), the checkpoint's own files, and weights in any
// format (isWeightFile). Symbolic links are followed only where
// linkScope allows; a folder is entered once per path from the top, and a
// link back to a folder above it is an error. dir "" has none.
func sideFiles(dir string, c *format.Checkpoint, opts *WriteOptions) (sideList, error) {
	var out sideList
	if dir == "" {
		return out, nil
	}
	scope, err := newLinkScope(dir)
	if err != nil {
		return out, err
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
	maxFile, maxTotal := opts.maxSide()
	var total int64
	var walk func(abs, rel string, above []os.FileInfo) error
	walk = func(abs, rel string, above []os.FileInfo) error {
		ents, err := os.ReadDir(abs)
		if err != nil {
			return &format.Error{Path: abs, Err: unwrapPath(err)}
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") || isWeightFile(name) {
				continue
			}
			p, r := filepath.Join(abs, name), path.Join(rel, name)
			real, st, err := followSide(p)
			if err != nil {
				return err
			}
			if !scope.allows(real, st) {
				if opts.SkipOutsideLinks {
					out.skipped = append(out.skipped, r)
					continue
				}
				return &format.Error{Path: p, Err: fmt.Errorf("is a symbolic link to %s, which %w; refusing to copy it", format.Printable(real), ErrOutsideLink)}
			}
			switch {
			case st.IsDir():
				for _, a := range above {
					if os.SameFile(a, st) {
						return &format.Error{Path: p, Err: errors.New("is a symbolic link to a folder above it (a loop); refusing to copy it")}
					}
				}
				if err := walk(p, r, append(above, st)); err != nil {
					return err
				}
			case !st.Mode().IsRegular():
				return &format.Error{Path: p, Err: fmt.Errorf("is %s, not a regular file; cannot copy it", format.FileKind(st.Mode()))}
			case !sameAsAny(st, inputs):
				if st.Size() > maxFile {
					return &format.Error{Path: p, Err: fmt.Errorf("is %d bytes, %w (%d bytes for one file)", st.Size(), ErrSideTooLarge, maxFile)}
				}
				if total += st.Size(); total > maxTotal {
					return &format.Error{Path: dir, Err: fmt.Errorf("holds more than %d bytes of files besides its weights, %w (all of them together)", maxTotal, ErrSideTooLarge)}
				}
				if len(out.files) == maxSideCount {
					return &format.Error{Path: dir, Err: fmt.Errorf("holds more than %d files besides its weights; refusing to copy them", maxSideCount)}
				}
				out.files = append(out.files, sideFile{rel: r, path: real, info: st})
			}
		}
		return nil
	}
	root, err := os.Stat(dir)
	if err != nil {
		return out, &format.Error{Path: dir, Err: unwrapPath(err)}
	}
	return out, walk(dir, "", []os.FileInfo{root})
}

// followSide returns the file p names, symlinks resolved, and its
// FileInfo.
func followSide(p string) (string, os.FileInfo, error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		if lst, lerr := os.Lstat(p); lerr == nil && lst.Mode()&os.ModeSymlink != 0 {
			return "", nil, &format.Error{Path: p, Err: fmt.Errorf("is a symbolic link that cannot be followed: %v", unwrapPath(err))}
		}
		return "", nil, &format.Error{Path: p, Err: fmt.Errorf("cannot be copied: %v", unwrapPath(err))}
	}
	if real, err = filepath.Abs(real); err != nil {
		return "", nil, &format.Error{Path: p, Err: err}
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", nil, &format.Error{Path: p, Err: fmt.Errorf("cannot be copied: %v", unwrapPath(err))}
	}
	return real, st, nil
}

// unwrapPath returns the reason of a *fs.PathError without its path,
// which the caller names (quoted where it must be).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
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
			return &format.Error{Path: dst, Err: fmt.Errorf("is inside the input folder %s; write the output elsewhere", format.Printable(dir))}
		}
		inputs = append(inputs, dir)
	}
	for _, p := range inputs {
		if p == "" {
			continue
		}
		in, err := resolve(p)
		if err == nil && within(in, out) {
			return &format.Error{Path: dst, Err: fmt.Errorf("is or holds %s, an input of this command; refusing to write there", format.Printable(p))}
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

// copySideFiles copies the side files into dw, each with its mode (as cp
// does: the umask applies); when dtype is not empty, config.json gets it
// as its torch_dtype (see setTorchDType).
func copySideFiles(ctx context.Context, dw *outfile.DirWriter, side []sideFile, dtype string) error {
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
		if err := s.copy(ctx, dw, dtype); err != nil {
			return err
		}
	}
	return nil
}

// copy copies s into dw, exactly the bytes its size said when it was
// listed, or with config.json's dtype set.
func (s sideFile) copy(ctx context.Context, dw *outfile.DirWriter, dtype string) error {
	f, err := os.Open(s.path)
	if err != nil {
		return &format.Error{Path: s.path, Err: unwrapPath(err)}
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !sameVersion(st, s.info) {
		return s.changed()
	}
	var n int64
	var r io.Reader = countingReader{io.LimitReader(f, s.info.Size()), &n}
	if dtype != "" && s.rel == "config.json" {
		if s.info.Size() > maxConfigSize {
			return &format.Error{Path: s.path, Err: fmt.Errorf("is larger than %d bytes", maxConfigSize)}
		}
		js, err := io.ReadAll(r)
		if err != nil {
			return &format.Error{Path: s.path, Err: err}
		}
		if int64(len(js)) != s.info.Size() {
			return s.changed()
		}
		if js, err = setTorchDType(js, dtype); err != nil {
			return &format.Error{Path: s.path, Err: err}
		}
		r = bytes.NewReader(js)
	}
	if err := dw.WriteFile(s.rel, r, s.info.Mode().Perm(), ctx.Err); err != nil {
		return err
	}
	// A file that gives fewer bytes than its size, or more (a growing file,
	// or a /proc file that says it has none), is not the file listed.
	var one [1]byte
	if m, _ := f.Read(one[:]); n != s.info.Size() || m != 0 {
		return s.changed()
	}
	return nil
}

// unchanged returns an error when s is not the file listed any more: its
// path names another file, or its size or modification time changed. A
// folder output checks every side file again before it is committed, as
// it does its weights.
func (s sideFile) unchanged() error {
	if st, err := os.Stat(s.path); err != nil || !sameVersion(st, s.info) {
		return s.changed()
	}
	return nil
}

func (s sideFile) changed() error {
	return &format.Error{Path: s.path, Err: errors.New("changed while it was being copied (size, modification time or the file itself); run again on a stable copy")}
}

// sameVersion reports whether a and b are the same file with the same
// size and modification time.
func sameVersion(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n *int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	return n, err
}
