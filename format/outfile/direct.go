package outfile

import (
	"fmt"
	"math"
	"os"
	"sync"
	"unsafe"
)

// blockSize is the alignment of direct I/O: file offsets, lengths and
// memory must all be multiples of it.
const blockSize = 4096

// stageSize is the largest piece a direct write copies at once. Smaller
// pieces get a buffer of their own size, so that memory follows the
// callers' chunks.
const stageSize = 4 << 20

// directWriter writes a file through a descriptor opened with O_DIRECT,
// from pieces of any size at any offset. Direct I/O skips the page cache:
// on the machines measured, copying the output into freshly allocated
// cache pages cost more CPU than encoding it, and a 7.6 GB output evicted
// as much cached data. Whole blocks are copied into aligned buffers and
// written at once; the bytes of blocks that a piece only partly covers are
// kept until the other pieces complete them. Pieces must not overlap.
type directWriter struct {
	f      *os.File // opened with O_DIRECT
	size   int64    // the file's final size
	mu     sync.Mutex
	blocks map[int64]*partialBlock // by block index
	stages sync.Pool               // of *[]byte, aligned, up to stageSize long
}

type partialBlock struct {
	data   []byte // aligned, blockSize long
	filled int
}

func newDirectWriter(f *os.File, size int64) *directWriter {
	return &directWriter{f: f, size: size, blocks: make(map[int64]*partialBlock)}
}

// alignedBuffer returns n zero bytes whose address is a multiple of
// blockSize.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+blockSize)
	skip := (blockSize - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))%blockSize)) % blockSize
	return b[skip : skip+n : skip+n]
}

// placed returns n bytes of *buf whose address is phase bytes past a
// multiple of blockSize, growing *buf when it has no such n bytes.
func placed(buf *[]byte, n, phase int) []byte {
	at := func(b []byte) int {
		return (phase - int(uintptr(unsafe.Pointer(unsafe.SliceData(b)))%blockSize) + blockSize) % blockSize
	}
	if b := *buf; cap(b) > 0 {
		if s := at(b[:cap(b)]); s+n <= cap(b) {
			return b[s : s+n : s+n]
		}
	}
	b := alignedBuffer(max(n, cap(*buf)) + blockSize)
	*buf = b
	s := at(b)
	return b[s : s+n : s+n]
}

// WriteAt writes p at offset off of the file.
func (d *directWriter) WriteAt(p []byte, off int64) error {
	end := off + int64(len(p))
	headEnd := min(roundUp(off), end)
	tailStart := max(end/blockSize*blockSize, headEnd)
	if headEnd > off {
		if err := d.merge(p[:headEnd-off], off); err != nil {
			return err
		}
	}
	if tailStart < end {
		if err := d.merge(p[tailStart-off:], tailStart); err != nil {
			return err
		}
	}
	if headEnd >= tailStart {
		return nil
	}
	mid := p[headEnd-off : tailStart-off]
	at := headEnd
	if uintptr(unsafe.Pointer(unsafe.SliceData(mid)))%blockSize == 0 {
		_, err := d.f.WriteAt(mid, at)
		return err
	}
	sp, _ := d.stages.Get().(*[]byte)
	if want := int(min(int64(len(mid)), stageSize)); sp == nil || len(*sp) < want {
		b := alignedBuffer(want) // whole blocks: mid is
		sp = &b
	}
	defer d.stages.Put(sp)
	for len(mid) > 0 {
		n := copy(*sp, mid)
		if _, err := d.f.WriteAt((*sp)[:n], at); err != nil {
			return err
		}
		mid, at = mid[n:], at+int64(n)
	}
	return nil
}

// merge adds p, which lies within one block, to that block, and writes the
// block once it is complete.
func (d *directWriter) merge(p []byte, off int64) error {
	idx := off / blockSize
	d.mu.Lock()
	b := d.blocks[idx]
	if b == nil {
		b = &partialBlock{data: alignedBuffer(blockSize)}
		d.blocks[idx] = b
	}
	copy(b.data[off-idx*blockSize:], p)
	b.filled += len(p)
	full := b.filled == blockSize || idx*blockSize+int64(b.filled) == d.size && d.onlyTail(idx)
	if full {
		delete(d.blocks, idx)
	}
	d.mu.Unlock()
	if !full {
		return nil
	}
	return d.writeBlock(b, idx)
}

// onlyTail reports whether block idx is the file's last, partial block.
func (d *directWriter) onlyTail(idx int64) bool {
	return d.size%blockSize != 0 && idx == d.size/blockSize
}

// writeBlock writes a whole block; the file's last block is written with
// zeros past the end, which Close cuts off.
func (d *directWriter) writeBlock(b *partialBlock, idx int64) error {
	_, err := d.f.WriteAt(b.data, idx*blockSize)
	return err
}

// Close checks that every block was completed and gives the file its
// final size. It does not close the descriptor.
func (d *directWriter) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.blocks) > 0 {
		idx := int64(math.MaxInt64)
		for i := range d.blocks {
			idx = min(idx, i)
		}
		return fmt.Errorf("the block at byte %d has %d of its %d bytes written", idx*blockSize, d.blocks[idx].filled, min(blockSize, d.size-idx*blockSize))
	}
	if d.size%blockSize != 0 {
		return d.f.Truncate(d.size)
	}
	return nil
}

func roundUp(off int64) int64 { return (off + blockSize - 1) / blockSize * blockSize }
