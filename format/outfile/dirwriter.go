package outfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/qins-dev/qins/format/internal/fileerr"
)

// DirWriter builds a folder under a temporary name beside its destination
// and puts it in place only on Commit; Abort, or a failed Commit, removes
// it. Files inside are written with the usual writers at the paths Path
// gives, or with WriteFile.
type DirWriter struct {
	path, tmp string
	force     bool
	pending   *Pending
	dirs      []string      // subfolders made, synced on Commit
	added     []fs.FileMode // the owner's bits each was made with beyond its mode
	done      bool
}

// CreateDir starts building a folder at path. An existing path is an
// error wrapping ErrExists unless force is set; with force it is replaced
// on Commit. pending, when not nil, tracks the temporary folder until
// Commit or Abort, so that a signal handler can remove it.
func CreateDir(path string, force bool, pending *Pending) (*DirWriter, error) {
	path = filepath.Clean(path)
	if st, err := os.Lstat(path); err == nil {
		if err := replaceable(path, st); err != nil {
			return nil, &fileerr.Error{Path: path, Err: err}
		}
		if !force {
			return nil, &fileerr.Error{Path: path, Err: ErrExists}
		}
	}
	tmp, err := mkdirTemp(path)
	if err != nil {
		return nil, &fileerr.Error{Path: path, Err: err}
	}
	d := &DirWriter{path: path, tmp: tmp, force: force, pending: pending}
	if err := pending.add(d, func() { os.RemoveAll(d.tmp) }); err != nil {
		return nil, &fileerr.Error{Path: path, Err: err}
	}
	return d, nil
}

// replaceable refuses, even with force, what a folder output may not
// replace: anything but a regular file or a folder that holds a
// safetensors model, so that a mistyped -o never removes an unrelated
// folder.
func replaceable(path string, st os.FileInfo) error {
	switch {
	case st.Mode().IsRegular():
		return nil
	case !st.IsDir():
		return fmt.Errorf("is %s, not a model folder or a regular file", fileerr.Kind(st.Mode()))
	}
	entries, _ := os.ReadDir(path)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".safetensors") || strings.HasSuffix(e.Name(), ".safetensors.index.json") {
			return nil
		}
	}
	return errors.New("is a directory that holds no safetensors model; not replacing it, even when forced")
}

// mkdirTemp makes the temporary folder of the output path beside it, its
// name cut as tempName cuts a file's so that any valid path works, and its
// mode the umask's, as a new folder's.
func mkdirTemp(path string) (string, error) {
	for range 100 {
		tmp := tempName(path)
		err := os.Mkdir(tmp, 0o777)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return tmp, err
	}
	return "", errors.New("no free temporary name beside the output")
}

// Path returns where the file rel (slash-separated, relative to the
// folder) is written before Commit.
func (d *DirWriter) Path(rel string) string { return filepath.Join(d.tmp, filepath.FromSlash(rel)) }

// Final returns err with a path inside the temporary folder named as it
// will be once the folder is in place, which is what a user knows.
func (d *DirWriter) Final(err error) error {
	var fe *fileerr.Error
	if errors.As(err, &fe) {
		if rel, e := filepath.Rel(d.tmp, fe.Path); e == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			fe.Path = filepath.Join(d.path, rel)
		}
	}
	return err
}

// Mkdir makes the subfolder rel, whose parent exists, with mode perm less
// the umask, as cp gives a new folder. Until Commit the owner may also
// write into it, so that a read-only folder can be filled.
func (d *DirWriter) Mkdir(rel string, perm fs.FileMode) error {
	p := d.Path(rel)
	perm = perm.Perm()
	if err := os.Mkdir(p, perm|0o700); err != nil {
		return &fileerr.Error{Path: filepath.Join(d.path, filepath.FromSlash(rel)), Err: err}
	}
	d.dirs = append(d.dirs, p)
	d.added = append(d.added, 0o700&^perm)
	return nil
}

// WriteFile writes what r reads to rel in the folder, a new file of mode
// perm (less the umask), and syncs it. check is called before each read;
// its error stops the copy.
func (d *DirWriter) WriteFile(rel string, r io.Reader, perm fs.FileMode, check func() error) error {
	dst := filepath.Join(d.path, filepath.FromSlash(rel))
	out, err := os.OpenFile(d.Path(rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm.Perm())
	if err != nil {
		return &fileerr.Error{Path: dst, Err: err}
	}
	if check != nil {
		r = checkedReader{r, check}
	}
	_, err = io.CopyBuffer(out, r, make([]byte, 1<<20))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	var fe *fileerr.Error
	if err != nil && !errors.As(err, &fe) {
		err = &fileerr.Error{Path: dst, Err: err}
	}
	return err
}

// checkedReader calls check before each read.
type checkedReader struct {
	r     io.Reader
	check func() error
}

func (c checkedReader) Read(p []byte) (int, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Commit syncs the folder and puts it at its path, replacing what is
// there when force was set: the two are swapped in one step where the
// system allows it, else the old one is renamed aside first; the old one
// is then removed.
func (d *DirWriter) Commit() error {
	if d.done {
		return errors.New("outfile: Commit after Commit or Abort")
	}
	err := d.pending.commit(d, d.commit)
	if err != nil {
		d.Abort()
		return err
	}
	d.done = true
	return nil
}

func (d *DirWriter) commit() error {
	// Innermost first: the owner's extra bits go once the folder is full.
	for i := len(d.dirs) - 1; i >= 0; i-- {
		p := d.dirs[i]
		if d.added[i] != 0 {
			if st, err := os.Stat(p); err == nil {
				if err := os.Chmod(p, st.Mode().Perm()&^d.added[i]); err != nil {
					return &fileerr.Error{Path: p, Err: err}
				}
			}
		}
		syncDir(p)
	}
	syncDir(d.tmp)
	parent := filepath.Dir(d.path)
	st, err := os.Lstat(d.path)
	if err == nil && d.force {
		// What appeared or changed at the path during the run is checked
		// again: only a file or a model folder is ever replaced.
		if err := replaceable(d.path, st); err != nil {
			return &fileerr.Error{Path: d.path, Err: err}
		}
	}
	if err != nil || !d.force {
		// Nothing to replace, or nothing that may be replaced: a folder
		// or file that appeared meanwhile stays.
		if err := renameNoReplace(d.tmp, d.path); err != nil {
			return &fileerr.Error{Path: d.path, Err: err}
		}
		syncDir(parent)
		return nil
	}
	if exchange(d.tmp, d.path) == nil {
		// d.tmp now holds the old folder.
		syncDir(parent)
		os.RemoveAll(d.tmp)
		return nil
	}
	aside, err := asideName(d.path)
	if err != nil {
		return &fileerr.Error{Path: d.path, Err: err}
	}
	if err := os.Rename(d.path, aside); err != nil {
		return &fileerr.Error{Path: d.path, Err: fmt.Errorf("moving the old one aside: %v", err)}
	}
	if err := os.Rename(d.tmp, d.path); err != nil {
		os.Rename(aside, d.path) // put the old one back
		return &fileerr.Error{Path: d.path, Err: err}
	}
	syncDir(parent)
	os.RemoveAll(aside)
	return nil
}

// asideName returns an unused name beside path to move it to.
func asideName(path string) (string, error) {
	for range 100 {
		var b [6]byte
		rand.Read(b[:])
		p := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".old-"+hex.EncodeToString(b[:]))
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			return p, nil
		}
	}
	return "", errors.New("no free name to move the old output aside")
}

// Abort removes the temporary folder. It is safe to call more than once,
// and after Commit, where it does nothing.
func (d *DirWriter) Abort() {
	if d.done {
		return
	}
	d.done = true
	os.RemoveAll(d.tmp)
	d.pending.forget(d)
}
