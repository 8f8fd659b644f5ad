package outfile

import (
	"testing"
	"unsafe"
)

// TestPlaced checks that placed gives n bytes at the asked distance from a
// block boundary, from the caller's buffer while it has room.
func TestPlaced(t *testing.T) {
	var buf []byte
	for _, n := range []int{1, 100, 4096, 5000, 1 << 20, 300} {
		for _, phase := range []int{0, 1, 511, 4095, 2048} {
			b := placed(&buf, n, phase)
			if len(b) != n || cap(b) != n {
				t.Fatalf("n %d phase %d: len %d cap %d", n, phase, len(b), cap(b))
			}
			if got := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) % blockSize); got != phase {
				t.Fatalf("n %d: phase %d, want %d", n, got, phase)
			}
			backing := unsafe.SliceData(buf)
			if again := placed(&buf, n, phase); unsafe.SliceData(again) != unsafe.SliceData(b) || unsafe.SliceData(buf) != backing {
				t.Fatalf("n %d phase %d: a second call reallocated", n, phase)
			}
		}
	}
	if cap(buf) < 1<<20 {
		t.Errorf("buffer shrank to %d bytes", cap(buf))
	}
}
