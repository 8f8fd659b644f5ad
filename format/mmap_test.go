//go:build linux && (amd64 || arm64)

package format

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// rssFile returns the process's resident file-backed memory, in KiB.
func rssFile(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "RssFile:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}

// Mapped bytes read count as the process's memory until Release gives
// them back; what was released still reads the same.
func TestRelease(t *testing.T) {
	const n = 32 << 20
	data := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, n/7+1)[:n]
	p := writeTemp(t, "big.safetensors", rawFile(fmt.Sprintf(`{"w":{"dtype":"U8","shape":[%d],"data_offsets":[0,%d]}}`, n, n), data))
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := f.Mapped(f.Tensors[0])
	if m == nil {
		t.Skip("not mapped here")
	}
	before := rssFile(t)
	var sum int
	for i := 0; i < len(m); i += 512 {
		sum += int(m[i])
	}
	read := rssFile(t)
	if sum == 0 {
		t.Fatal("read nothing")
	}
	if read-before < n/1024/2 {
		t.Skipf("reading %d MiB mapped grew RssFile by %d KiB only: not measurable here", n>>20, read-before)
	}
	// Released in pieces not aligned to pages, as readers release theirs.
	for off := 0; off < n; off += 3<<20 + 5 {
		f.Release(m[off:min(off+3<<20+5, n)])
	}
	if after := rssFile(t); after-before > n/1024/8 {
		t.Errorf("RssFile %d KiB before reading, %d after reading %d MiB, %d after Release: not given back", before, read, n>>20, after)
	}
	if !bytes.Equal(m, data) {
		t.Error("released bytes read otherwise than the file")
	}
	f.Release(nil)
	f.Release(data[:10]) // not the mapping's: nothing happens
}
