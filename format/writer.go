package format

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/qins-dev/qins/format/outfile"
)

// CreateOptions configure Create.
type CreateOptions struct {
	// Force replaces an existing output.
	Force bool
	// Reserve is room, in bytes, kept in the header for metadata that is
	// only known once the data is written (see Writer.SetMetadata).
	Reserve int
	// Buffered writes through the page cache even where the file system
	// supports direct I/O, which is used otherwise.
	Buffered bool
	// Pending, when set, tracks the output until Commit or Abort (see
	// outfile.Pending).
	Pending *outfile.Pending
}

// Writer writes a safetensors file whose tensors are declared up front and
// whose data is then written tensor by tensor, in any order, in sequential
// pieces, or at offsets from several goroutines (WriteAt). The file is an
// Output: it appears under its real name only on Commit, and Abort, or any
// error, removes it. The
// first error is sticky: later writes return it. Where the file system
// allows it, the data goes to the disk with direct I/O, past the page
// cache (see outfile.Options).
type Writer struct {
	path      string
	out       *outfile.Output
	mu        sync.Mutex // guards written and err
	meta      map[string]string
	tensors   []TensorInfo
	headerLen int
	dataStart int64
	written   []uint64 // per tensor
	err       error
	done      bool
}

// Create starts writing a safetensors file at path with the given metadata
// and tensors, laid out in the order given. Offsets in tensors are ignored
// and recomputed.
func Create(path string, metadata map[string]string, tensors []TensorInfo, opts CreateOptions) (*Writer, error) {
	if err := outfile.Check(path, opts.Force); err != nil {
		return nil, err
	}
	w := &Writer{path: path, meta: make(map[string]string, len(metadata))}
	for k, v := range metadata {
		w.meta[k] = v
	}
	var off uint64
	w.tensors = make([]TensorInfo, 0, len(tensors))
	for _, t := range tensors {
		n, ok := Elements(t.Shape)
		size, ok2 := t.DType.Bytes(n)
		if !ok || !ok2 {
			return nil, &Error{Path: path, Tensor: t.Name, Err: fmt.Errorf("%v %v overflows or is not a whole number of bytes", t.DType, t.Shape)}
		}
		t.Begin, t.End = off, off+size
		off = t.End
		w.tensors = append(w.tensors, t)
	}
	w.written = make([]uint64, len(w.tensors))
	// The header is encoded on Commit; here only its length counts: what
	// Encode writes, padded to 8 bytes, then the room reserved.
	w.headerLen, _ = CreatedHeaderLen(w.meta, w.tensors, opts.Reserve)
	w.dataStart = 8 + int64(w.headerLen)

	out, err := outfile.Create(path, outfile.Options{Force: opts.Force, Pending: opts.Pending, Size: w.dataStart + int64(off), Buffered: opts.Buffered})
	if err != nil {
		return nil, err
	}
	w.out = out
	return w, nil
}

// fail records the first error.
func (w *Writer) fail(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		var fe *Error
		if errors.As(err, &fe) && fe.Path == w.path {
			w.err = err
		} else {
			w.err = &Error{Path: w.path, Err: err}
		}
	}
	return w.err
}

// sticky returns the first error, if any.
func (w *Writer) sticky() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// WriteAt writes p at offset off of tensor i's data. Writes must not
// overlap; together they must cover the tensor. It is safe for concurrent
// use.
func (w *Writer) WriteAt(i int, p []byte, off int64) error {
	if err := w.sticky(); err != nil {
		return err
	}
	t := w.tensors[i]
	if off < 0 || uint64(off)+uint64(len(p)) > t.Bytes() {
		return w.fail(fmt.Errorf("tensor %q: writing [%d, %d) outside its %d bytes", t.Name, off, off+int64(len(p)), t.Bytes()))
	}
	if err := w.out.WriteAt(p, w.dataStart+int64(t.Begin)+off); err != nil {
		return w.fail(err)
	}
	w.mu.Lock()
	w.written[i] += uint64(len(p))
	w.mu.Unlock()
	return nil
}

// Buffer returns n bytes of *buf, growing it when short, placed so that
// WriteAt(i, b, off) writes them without copying them first: a goroutine
// that keeps *buf across its writes computes into the returned bytes.
func (w *Writer) Buffer(buf *[]byte, n, i int, off int64) []byte {
	return w.out.Buffer(buf, n, w.dataStart+int64(w.tensors[i].Begin)+off)
}

// StartWriteback asks the kernel to start writing tensor i's data to disk
// now, without waiting: once a tensor is complete there is no reason to
// let it sit in memory until the final sync, and the disk can work while
// the next tensors are computed. It is only a hint.
func (w *Writer) StartWriteback(i int) {
	t := w.tensors[i]
	w.out.StartWriteback(w.dataStart+int64(t.Begin), int64(t.Bytes()))
}

// Tensors returns the tensors as laid out in the file.
func (w *Writer) Tensors() []TensorInfo { return w.tensors }

// SetMetadata sets a metadata entry, written to the header on Commit. The
// header must still fit in the room Create reserved.
func (w *Writer) SetMetadata(key, value string) { w.meta[key] = value }

// TensorWriter returns a writer of tensor i's data: successive writes
// append to it, and writing past its end is an error.
func (w *Writer) TensorWriter(i int) io.Writer { return &tensorWriter{w: w, i: i} }

type tensorWriter struct {
	w *Writer
	i int
}

func (tw *tensorWriter) Write(p []byte) (int, error) {
	w := tw.w
	w.mu.Lock()
	pos := w.written[tw.i]
	w.mu.Unlock()
	t := w.tensors[tw.i]
	if uint64(len(p)) > t.Bytes()-pos {
		return 0, w.fail(fmt.Errorf("tensor %q: writing %d bytes past its end", t.Name, uint64(len(p))-(t.Bytes()-pos)))
	}
	if err := w.WriteAt(tw.i, p, int64(pos)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Commit checks that every tensor was written in full, writes the final
// header, and commits the Output: without Force it fails, wrapping
// ErrExists, when a file appeared at the path during the run.
func (w *Writer) Commit() error {
	if w.done {
		return errors.New("format: Commit after Commit or Abort")
	}
	if w.err != nil {
		w.Abort()
		return w.err
	}
	for i, t := range w.tensors {
		if w.written[i] != t.Bytes() {
			w.fail(fmt.Errorf("tensor %q: %d of %d bytes written", t.Name, w.written[i], t.Bytes()))
			w.Abort()
			return w.err
		}
	}
	header := Encode(w.meta, w.tensors, w.headerLen)
	if len(header) != w.headerLen {
		w.fail(fmt.Errorf("final header needs %d bytes but %d were reserved", len(header), w.headerLen))
		w.Abort()
		return w.err
	}
	buf := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	if err := w.out.WriteAt(append(buf, header...), 0); err != nil {
		w.fail(err)
	} else if err := w.out.Commit(); err != nil {
		w.done = true // the Output removed itself
		return w.fail(err)
	}
	if w.err != nil {
		w.Abort()
		return w.err
	}
	w.done = true
	return nil
}

// Abort removes the temporary file. It is safe to call more than once, and
// after Commit, where it does nothing.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.out.Abort()
}
