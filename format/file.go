package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/qins-dev/qins/format/internal/fileerr"
)

// Error is an error about a file, and the tensor in it when there is one.
// Its message names the file (and tensor) through Printable.
type Error = fileerr.Error

// Printable returns s as it is when it prints safely on a terminal, and
// quoted as a Go string otherwise: with a control character (a newline,
// a tab, NUL, ESC), a character that does not print, invalid UTF-8, or a
// leading quote, which would make a quoted name ambiguous. Errors and
// tables print names and paths through it, so that a file cannot write
// escape sequences to the terminal or forge rows.
func Printable(s string) string { return fileerr.Printable(s) }

// FileKind names the type of a file that is not regular, for errors: "a
// FIFO", "a socket", "a character device"...
func FileKind(m fs.FileMode) string { return fileerr.Kind(m) }

// pathError turns an *fs.PathError into an *Error, whose message reads
// "path: what is wrong" rather than "open path: what is wrong".
func pathError(err error) error { return fileerr.FromPath(err) }

// File is a safetensors file opened for reading. Tensor data is read on
// demand with ReadAt; only the header is held in memory.
type File struct {
	Path string
	Header
	f         *os.File
	dataStart int64
	size      int64
	opened    os.FileInfo // at open: see Unchanged
	mapOnce   sync.Once
	mapped    []byte // the whole file, read only, or nil: see Mapped
}

// lfsPrefix starts every Git LFS pointer file.
const lfsPrefix = "version https://git-lfs"

// OpenInput opens the file at path for reading, refusing, without
// blocking, anything but a regular file: a FIFO would block the open or
// the reads forever, a device never end. Its errors are *fs.PathError,
// as os.Open's.
func OpenInput(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("is %s, not a regular file", fileerr.Kind(st.Mode()))
	}
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return f, nil
}

// Open opens and validates the safetensors file at path.
func Open(path string) (*File, error) {
	f, err := OpenInput(path)
	if err != nil {
		return nil, pathError(err)
	}
	sf, err := newFile(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return sf, nil
}

func newFile(path string, f *os.File) (*File, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, &Error{Path: path, Err: err}
	}
	if st.IsDir() {
		return nil, &Error{Path: path, Err: errors.New("is a directory, not a safetensors file")}
	}
	h, dataStart, err := ReadHeader(f, st.Size())
	if err != nil {
		var he *headerError
		if errors.As(err, &he) {
			return nil, &Error{Path: path, Tensor: he.tensor, Err: err}
		}
		return nil, &Error{Path: path, Err: err}
	}
	return &File{Path: path, Header: *h, f: f, dataStart: dataStart, size: st.Size(), opened: st}, nil
}

// ReadHeader reads and validates the header of a safetensors file of size
// bytes, and returns it with the offset where the data starts. It reads
// only the header, and allocates nothing a corrupt length asks for.
func ReadHeader(r io.ReaderAt, size int64) (*Header, int64, error) {
	var start [64]byte
	n, err := r.ReadAt(start[:], 0)
	if err != nil && err != io.EOF {
		return nil, 0, err
	}
	if bytes.HasPrefix(start[:n], []byte(lfsPrefix)) {
		return nil, 0, errors.New("is a Git LFS pointer, not the weights: fetch the real file with `git lfs pull`")
	}
	if size < 8 {
		return nil, 0, fmt.Errorf("is %d bytes long, too short for a safetensors file (the header length alone takes 8)", size)
	}
	hlen := binary.LittleEndian.Uint64(start[:8])
	if hlen > MaxHeaderSize {
		return nil, 0, fmt.Errorf("header length %d is above the safetensors limit of %d bytes (not a safetensors file?)", hlen, MaxHeaderSize)
	}
	if hlen > uint64(size-8) {
		return nil, 0, fmt.Errorf("header length %d runs past the end of the %d-byte file (truncated, or not a safetensors file?)", hlen, size)
	}
	js := make([]byte, hlen)
	if _, err := r.ReadAt(js, 8); err != nil {
		return nil, 0, err
	}
	h, err := ParseHeader(js, uint64(size-8)-hlen)
	if err != nil {
		return nil, 0, err
	}
	return h, 8 + int64(hlen), nil
}

// Size returns the size of the file in bytes.
func (f *File) Size() int64 { return f.size }

// DataStart returns the offset of the data section in the file.
func (f *File) DataStart() int64 { return f.dataStart }

// Section returns a reader of t's data.
func (f *File) Section(t TensorInfo) *io.SectionReader {
	return io.NewSectionReader(f.f, f.dataStart+int64(t.Begin), int64(t.Bytes()))
}

// Stat returns the FileInfo of the open file.
func (f *File) Stat() (os.FileInfo, error) { return f.f.Stat() }

// Unchanged returns an error when the file has changed since it was
// opened: its size or modification time (written in place), or the file
// its path names (replaced). A pipeline calls it before it commits, so
// that a source rewritten during the run does not give a mixed output.
func (f *File) Unchanged() error {
	now, err := f.f.Stat()
	if err == nil && (now.Size() != f.opened.Size() || !now.ModTime().Equal(f.opened.ModTime())) {
		err = errors.New("changed while it was being read (size or modification time); run again on a stable copy")
	}
	if err == nil {
		if at, serr := os.Stat(f.Path); serr != nil || !os.SameFile(at, f.opened) {
			err = errors.New("was replaced while it was being read; run again on a stable copy")
		}
	}
	if err != nil {
		return &Error{Path: f.Path, Err: err}
	}
	return nil
}

// Close closes the file.
func (f *File) Close() error {
	if f.mapped != nil {
		unmap(f.mapped)
		f.mapped = nil
	}
	return f.f.Close()
}

// Mapped returns the data of tensor t mapped from the file, read only and
// without a copy, or nil where the file cannot be mapped (some systems,
// an empty file): the caller then reads Section. Reading mapped bytes
// after the file shrinks is a fault, which a goroutine that set
// debug.SetPanicOnFault recovers from; the bytes are valid until Close.
func (f *File) Mapped(t TensorInfo) []byte {
	f.mapOnce.Do(func() { f.mapped = mapFile(f.f, f.size) })
	b, e := f.dataStart+int64(t.Begin), f.dataStart+int64(t.End)
	if f.mapped == nil || t.Begin > t.End || e > int64(len(f.mapped)) {
		return nil
	}
	return f.mapped[b:e:e]
}

// ErrMappingFault is the error of a reader that recovered from a fault
// reading mapped bytes (see Mapped): the file was cut short meanwhile.
var ErrMappingFault = errors.New("changed while it was read (a fault reading its mapping: cut short?)")

// Release tells the system that b, bytes Mapped returned, will not be
// read again soon: their pages leave the process's resident memory (the
// page cache keeps them), so that reading a file through its mapping does
// not make the whole file count as the process's memory. Reading b after
// is still valid, at the cost of faulting its pages in again. The pages
// within releaseMargin of b are released too, those of its neighbours:
// the system maps pages around the one a read faults on (fault-around),
// so a reader of b may have mapped pages that a reader of the neighbour
// already released, and those would stay.
func (f *File) Release(b []byte) {
	f.mapOnce.Do(func() { f.mapped = mapFile(f.f, f.size) })
	if len(b) == 0 || len(f.mapped) == 0 {
		return
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(f.mapped)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	if p < base || p-base+uintptr(len(b)) > uintptr(len(f.mapped)) {
		return // not the mapping's
	}
	page := uintptr(os.Getpagesize())
	start := (p - base) &^ (page - 1) // the mapping starts on a page
	start -= min(start, releaseMargin)
	end := min(p-base+uintptr(len(b))+releaseMargin, uintptr(len(f.mapped)))
	release(f.mapped[start:end])
}

// releaseMargin is how far around the bytes Release is given it releases:
// more than the system maps around a fault (64 KiB by default on Linux,
// up to a large folio of the page cache on newer kernels).
const releaseMargin = 2 << 20
