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
	"syscall"

	"github.com/qins-dev/qins/format/outfile"

	"github.com/qins-dev/qins/format"
)

// sideFile is a file of a model folder other than its weights: config,
// tokenizer, chat template, licence, code.
type sideFile struct {
	rel   string      // slash-separated, relative to the folder
	path  string      // the file to read, symlinks resolved
	info  os.FileInfo // when listed: the copy and the commit check it again
	scope linkScope   // where the file opened may be
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
// folder (and outside the Hugging Face cache repository it belongs to), or
// into a hidden file or folder of it. WriteOptions.SkipOutsideLinks skips
// such files instead.
var ErrOutsideLink = errors.New("leads outside the model folder")

// linkError is an ErrOutsideLink: where the link leads, and why not there.
type linkError struct {
	target, where string
	swapped       bool // found when the file was opened, not when listed
}

func (e *linkError) Error() string {
	what := "is a symbolic link to"
	if e.swapped {
		what = "was replaced by a symbolic link to"
	}
	return fmt.Sprintf("%s %s, %s; refusing to copy it", what, format.Printable(e.target), e.where)
}

func (e *linkError) Unwrap() error { return ErrOutsideLink }

// ErrSideTooLarge is the error of a side file, or of the side files
// together, above WriteOptions.MaxSideFile or MaxSideTotal.
var ErrSideTooLarge = errors.New("above the limit for files copied beside the weights")

// linkScope is where the links of a model folder may lead: inside the
// folder, but not into a hidden file or folder of it (".git/config"), or,
// for a folder inside a snapshot of the Hugging Face cache
// (models--ORG--NAME/snapshots/REV, whose files are links to
// ../../blobs/HASH), to a file of that repository's blobs.
type linkScope struct {
	root  string // the folder, absolute, symlinks resolved
	blobs string // the cache repository's blobs folder, resolved, or ""
}

func newLinkScope(dir string) (linkScope, error) {
	root, err := resolve(dir)
	if err != nil {
		return linkScope{}, &format.Error{Path: dir, Err: err}
	}
	s := linkScope{root: root}
	// The snapshot may be the folder or one above it (a diffusers
	// repository converts a subfolder).
	for d := root; filepath.Dir(d) != d; d = filepath.Dir(d) {
		snapshots := filepath.Dir(d)
		repo := filepath.Dir(snapshots)
		if filepath.Base(snapshots) == "snapshots" && strings.HasPrefix(filepath.Base(repo), "models--") {
			if b, err := filepath.EvalSymlinks(filepath.Join(repo, "blobs")); err == nil {
				s.blobs = b
			}
			break
		}
	}
	return s, nil
}

// refuse says why real (absolute, symlinks resolved) may not be read, or
// "" when it may: anything inside the folder that is not hidden there, and
// a regular file directly inside the cache's blobs (never the blobs folder
// itself, which holds every revision's weights).
func (s linkScope) refuse(real string, st os.FileInfo) string {
	if rel, err := filepath.Rel(s.root, real); err == nil && within(real, s.root) {
		for _, part := range strings.Split(filepath.ToSlash(rel), "/") {
			if strings.HasPrefix(part, ".") && part != "." {
				return "a hidden file of the model folder"
			}
		}
		return ""
	}
	if s.blobs != "" && st.Mode().IsRegular() && filepath.Dir(real) == s.blobs {
		return ""
	}
	return "which leads outside the model folder"
}

// sideList is what sideFiles finds: the files to copy, and the links
// that opts.SkipOutsideLinks skipped (leading outside the folder, or
// nowhere).
type sideList struct {
	files   []sideFile
	dirs    map[string]fs.FileMode // subfolders made, by rel, with their modes
	skipped []string
}

// sideFiles lists the files of the model folder dir that an output folder
// copies: every regular file, in subfolders too, except hidden ones (a
// name starting with "."), the checkpoint's own files, and weights in any
// format (isWeightFile). Symbolic links are followed only where
// linkScope allows; each folder is entered once, whatever the links that
// lead to it, and a second way into it is an error (a loop, or a graph of
// links that would copy it many times). dir "" has none.
func sideFiles(ctx context.Context, dir string, c *format.Checkpoint, opts *WriteOptions) (sideList, error) {
	out := sideList{dirs: map[string]fs.FileMode{}}
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
	entries := 0
	var seen []os.FileInfo // the folders entered
	skip := func(r string) { out.skipped = append(out.skipped, r) }
	var walk func(abs, rel string) error
	walk = func(abs, rel string) error {
		ents, err := os.ReadDir(abs)
		if err != nil {
			return &format.Error{Path: abs, Err: unwrapPath(err)}
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			if entries++; entries > maxSideCount {
				return &format.Error{Path: dir, Err: fmt.Errorf("holds more than %d files and folders besides its weights; refusing to copy them", maxSideCount)}
			}
			name := e.Name()
			if strings.HasPrefix(name, ".") || isWeightFile(name) {
				continue
			}
			p, r := filepath.Join(abs, name), path.Join(rel, name)
			real, st, err := followSide(p)
			if errors.Is(err, errDangling) && opts.SkipOutsideLinks {
				skip(r)
				continue
			}
			if err != nil {
				return err
			}
			if why := scope.refuse(real, st); why != "" {
				if opts.SkipOutsideLinks {
					skip(r)
					continue
				}
				return &format.Error{Path: p, Err: &linkError{target: real, where: why}}
			}
			switch {
			case st.IsDir():
				if sameAsAny(st, seen) {
					return &format.Error{Path: p, Err: errors.New("leads to a folder already copied (a loop, or a second link to it); refusing to copy it again")}
				}
				seen = append(seen, st)
				out.dirs[r] = st.Mode().Perm()
				if err := walk(p, r); err != nil {
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
				out.files = append(out.files, sideFile{rel: r, path: real, info: st, scope: scope})
			}
		}
		return nil
	}
	root, err := os.Stat(dir)
	if err != nil {
		return out, &format.Error{Path: dir, Err: unwrapPath(err)}
	}
	seen = append(seen, root)
	return out, walk(dir, "")
}

// errDangling is the error of a symbolic link that leads nowhere.
var errDangling = errors.New("is a symbolic link that cannot be followed")

// followSide returns the file p names, symlinks resolved, and its
// FileInfo.
func followSide(p string) (string, os.FileInfo, error) {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		if lst, lerr := os.Lstat(p); lerr == nil && lst.Mode()&os.ModeSymlink != 0 {
			return "", nil, &format.Error{Path: p, Err: fmt.Errorf("%w: %v", errDangling, unwrapPath(err))}
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
// does: the umask applies), in subfolders with theirs; when dtype is not
// empty, config.json gets it as its torch_dtype (see setTorchDType).
func copySideFiles(ctx context.Context, dw *outfile.DirWriter, side sideList, dtype string) error {
	made := map[string]bool{".": true}
	var mkdir func(d string) error
	mkdir = func(d string) error {
		if made[d] {
			return nil
		}
		if err := mkdir(path.Dir(d)); err != nil {
			return err
		}
		made[d] = true
		return dw.Mkdir(d, side.dirs[d])
	}
	for _, s := range side.files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := mkdir(path.Dir(s.rel)); err != nil {
			return err
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
	// Not blocking: a FIFO put in the file's place opens at once, and the
	// check below refuses it.
	f, err := os.OpenFile(s.path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return &format.Error{Path: s.path, Err: unwrapPath(err)}
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !sameVersion(st, s.info) {
		return s.changed()
	}
	// What was opened, links followed at open time, must be in the scope:
	// a link swapped in after the listing could lead anywhere.
	if real, ok := openedPath(f); ok {
		if why := s.scope.refuse(real, s.info); why != "" {
			return &format.Error{Path: s.path, Err: &linkError{target: real, where: why, swapped: true}}
		}
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
