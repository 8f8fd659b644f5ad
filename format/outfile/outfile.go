// Package outfile writes outputs that appear only when complete: a file
// written aside (unnamed with O_TMPFILE on Linux) and published whole by
// Commit, optionally sized up front and written at offsets with direct
// I/O; a folder built aside and renamed into place (DirWriter); and
// Pending, the registry a signal handler uses to remove what is not yet
// committed. It knows no file format.
package outfile

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"unicode/utf8"

	"github.com/qins-dev/qins/format/internal/fileerr"
)

// ErrExists is the error, inside a *format.Error naming the path, of an
// output that exists when it may not be replaced.
var ErrExists = errors.New("output exists")

// ErrInterrupted is returned by Commit once Pending.Close has run: the
// process is being stopped and no output may appear any more.
var ErrInterrupted = errors.New("interrupted; no output written")

// Options configure Create.
type Options struct {
	// Force replaces an existing regular file at the path.
	Force bool
	// Pending, when set, tracks the output until it is committed or
	// aborted, so that a signal handler can remove it (see Pending.Close).
	Pending *Pending
	// Size, when not 0, is the file's final size: it is reserved at once
	// (a full disk shows up before any work), and WriteAt writes the file
	// with direct I/O, past the page cache, where the file system allows
	// it, unless Buffered is set.
	Size     int64
	Buffered bool

	named bool // a named temporary file even where O_TMPFILE works: for tests
}

// Output is a file written away from its path and published there, whole,
// only by Commit. Where the file system allows it (Linux, O_TMPFILE) the
// file has no name at all until then, so that nothing is left behind even
// when the process is killed; elsewhere it is a hidden temporary file in
// the destination folder. Without Force, Commit never replaces a file that
// appeared at the path in the meantime.
type Output struct {
	path    string
	f       *os.File
	tmp     string // the temporary name; empty when the file has none
	force   bool
	pending *Pending
	done    bool
	direct  *directWriter // nil when writing through the page cache
	io      sync.Mutex    // one buffered WriteAt at a time
}

// Create starts an output at path. It refuses a path that is a
// directory or any other non-regular file (a device, a FIFO), and an
// existing file unless opts.Force. The file's mode follows the umask, as
// a new file's does.
func Create(path string, opts Options) (*Output, error) {
	if err := checkTarget(path, opts.Force); err != nil {
		return nil, err
	}
	o := &Output{path: path, force: opts.Force, pending: opts.Pending}
	dir := filepath.Dir(path)
	if f := openUnnamed(dir); f != nil && !opts.named {
		o.f = f
	} else {
		if f != nil {
			f.Close()
		}
		f, tmp, err := createTemp(path)
		if err != nil {
			return nil, &fileerr.Error{Path: path, Err: err}
		}
		o.f, o.tmp = f, tmp
	}
	if err := o.pending.add(o, o.removeTemp); err != nil {
		o.Abort()
		return nil, &fileerr.Error{Path: path, Err: err}
	}
	if opts.Size == 0 {
		return o, nil
	}
	// Reserve the whole file now: data written at offsets, not in order,
	// fills holes, which costs the file system more than overwriting
	// allocated blocks.
	if err := preallocate(o.f, opts.Size); err != nil {
		o.Abort()
		return nil, &fileerr.Error{Path: path, Err: err}
	}
	if !opts.Buffered {
		o.direct = openDirect(o.reopenPath(), opts.Size)
	}
	return o, nil
}

// WriteAt writes p at offset off of a file created with a Size. It is
// safe for concurrent use; writes must not overlap.
func (o *Output) WriteAt(p []byte, off int64) error {
	if o.direct != nil {
		return o.direct.WriteAt(p, off)
	}
	// The kernel serializes buffered writes to one file anyway (the inode
	// lock); waiting here parks the goroutine instead of spinning in the
	// kernel, which leaves the core to the goroutines that are computing.
	o.io.Lock()
	defer o.io.Unlock()
	_, err := o.f.WriteAt(p, off)
	return err
}

// Buffer returns n bytes of *buf, growing it when short, placed so that
// WriteAt of them at offset off writes them straight from memory: with
// direct I/O, a piece whose address and offset are not equally far from
// a block boundary is first copied into an aligned buffer.
func (o *Output) Buffer(buf *[]byte, n int, off int64) []byte {
	phase := 0
	if o.direct != nil {
		phase = int(off % blockSize)
	}
	return placed(buf, n, phase)
}

// StartWriteback asks the kernel to start writing bytes [off, off+n) to
// disk now, without waiting: once a piece is complete there is no reason
// to let it sit in memory until the final sync, and the disk can work
// while the next pieces are computed. It is only a hint, and does
// nothing for direct writes, which skip the page cache.
func (o *Output) StartWriteback(off, n int64) {
	if o.direct == nil {
		startWriteback(o.f, off, n)
	}
}

// closeDirect completes direct writes: the last partial block, then the
// descriptor.
func (o *Output) closeDirect() error {
	if o.direct == nil {
		return nil
	}
	err := o.direct.Close()
	if cerr := o.direct.f.Close(); err == nil {
		err = cerr
	}
	o.direct = nil
	return err
}

// checkTarget refuses what an output may not replace.
func checkTarget(path string, force bool) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		// A missing folder would fail only at Create, which for eval and
		// diff comes after all the work.
		dir := filepath.Dir(path)
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return &fileerr.Error{Path: path, Err: fmt.Errorf("the folder %s does not exist", fileerr.Printable(dir))}
		}
		return nil
	}
	if err != nil {
		return &fileerr.Error{Path: path, Err: err}
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		if target, err := os.Stat(path); err == nil {
			st = target // a link to a directory or a device is refused too
		}
	}
	switch {
	case st.IsDir():
		return &fileerr.Error{Path: path, Err: errors.New("is a directory; name the output file")}
	case !st.Mode().IsRegular() && st.Mode()&fs.ModeSymlink == 0:
		return &fileerr.Error{Path: path, Err: fmt.Errorf("is %s, not a regular file; refusing to replace it", fileerr.Kind(st.Mode()))}
	case !force:
		return &fileerr.Error{Path: path, Err: ErrExists}
	}
	return nil
}

// tempName returns a hidden name beside path, short enough for any valid
// path: the base is cut so that the whole name stays within 255 bytes.
func tempName(path string) string {
	base := filepath.Base(path)
	const keep = 200
	if len(base) > keep {
		n := keep
		for n > 0 && !utf8.RuneStart(base[n]) {
			n--
		}
		base = base[:n]
	}
	return filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.tmp-%d", base, rand.Uint32()))
}

// createTemp creates a new, named temporary file beside path.
func createTemp(path string) (*os.File, string, error) {
	for range 100 {
		name := tempName(path)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		return f, name, nil
	}
	return nil, "", errors.New("cannot find a free temporary name")
}

// File returns the open file, to write the data to.
func (o *Output) File() *os.File { return o.f }

// Write appends p to the file.
func (o *Output) Write(p []byte) (int, error) { return o.f.Write(p) }

// reopenPath is a path that opens the file again (for direct I/O).
func (o *Output) reopenPath() string {
	if o.tmp == "" {
		return fdPath(o.f)
	}
	return o.tmp
}

// Commit syncs the file and publishes it at its path. On failure the
// file is removed, and without Force an existing file is an error
// wrapping ErrExists.
func (o *Output) Commit() error {
	if o.done {
		return errors.New("outfile: Commit after Commit or Abort")
	}
	err := o.closeDirect()
	if err == nil {
		err = o.f.Sync()
	}
	if err == nil && o.force {
		// Re-checked: something not to replace may have appeared since.
		err = checkTarget(o.path, true)
	}
	if err == nil {
		err = o.pending.commit(o, o.publish)
	}
	if err != nil {
		o.Abort()
		var fe *fileerr.Error
		if errors.As(err, &fe) {
			return err
		}
		return &fileerr.Error{Path: o.path, Err: err}
	}
	o.done = true
	o.f.Close()
	syncDir(filepath.Dir(o.path))
	return nil
}

// publish gives the file its name: a rename that replaces with Force,
// and otherwise a link or rename that fails when the path exists.
func (o *Output) publish() error {
	if o.tmp == "" {
		if !o.force {
			return linkNoReplace(fdPath(o.f), o.path)
		}
		// A rename is the only atomic replacement: name the file first.
		for range 100 {
			tmp := tempName(o.path)
			err := linkNoReplace(fdPath(o.f), tmp)
			if errors.Is(err, ErrExists) {
				continue
			}
			if err != nil {
				return err
			}
			if err := os.Rename(tmp, o.path); err != nil {
				os.Remove(tmp)
				return err
			}
			return nil
		}
		return errors.New("cannot find a free temporary name")
	}
	if o.force {
		if err := os.Rename(o.tmp, o.path); err != nil {
			return err
		}
	} else if err := renameNoReplace(o.tmp, o.path); err != nil {
		return err
	}
	o.tmp = ""
	return nil
}

// Abort closes and removes the file. It is safe to call more than once,
// and after Commit, where it does nothing.
func (o *Output) Abort() {
	if o.done {
		return
	}
	o.done = true
	if o.direct != nil {
		o.direct.f.Close()
	}
	o.f.Close()
	o.pending.forget(o)
	o.removeTemp()
}

// Pending tracks the outputs of a process that are not yet committed, so
// that a signal handler can remove them before it exits. The zero value
// is ready; a nil *Pending tracks nothing.
type Pending struct {
	mu     sync.Mutex
	clean  map[any]func() // per output not yet committed, what removes it
	closed bool
}

// add tracks the output key, which clean removes, or runs clean and fails
// when Close has run.
func (p *Pending) add(key any, clean func()) error {
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		clean()
		return ErrInterrupted
	}
	if p.clean == nil {
		p.clean = make(map[any]func())
	}
	p.clean[key] = clean
	return nil
}

// forget stops tracking key.
func (p *Pending) forget(key any) {
	if p != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		delete(p.clean, key)
	}
}

// commit runs publish for the output key unless Close has run, holding
// the lock so that Close waits for a publish under way.
func (p *Pending) commit(key any, publish func() error) error {
	if p == nil {
		return publish()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrInterrupted
	}
	delete(p.clean, key)
	return publish()
}

// Close removes the temporary files and folders of every output not yet
// committed and makes later commits fail with ErrInterrupted. It is called
// from a signal handler, while the outputs may still be being written.
func (p *Pending) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, clean := range p.clean {
		clean()
	}
	p.clean = nil
}

// removeTemp removes o's temporary name, if it has one.
func (o *Output) removeTemp() {
	if o.tmp != "" {
		os.Remove(o.tmp)
	}
}

// renameChecked renames src to dst unless dst exists, for file systems
// that can neither rename without replacing nor link: a file that appears
// between the check and the rename is replaced.
func renameChecked(src, dst string) error {
	if _, err := os.Lstat(dst); err == nil {
		return ErrExists
	}
	return os.Rename(src, dst)
}

// Check refuses, with an error naming path, what an output may not
// replace: a directory or any other file that is not regular, and an
// existing file unless force.
func Check(path string, force bool) error { return checkTarget(path, force) }

// syncDir makes a rename durable; failure only costs durability, so it is
// not reported.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
