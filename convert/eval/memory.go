package eval

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// FallbackMemory is DefaultMemory where the available memory cannot be
// read: within what the streaming path itself takes at Phi-3.5-mini's size
// (1.7 GB), so that no machine is pushed into swap.
const FallbackMemory = 2 << 30

// DefaultMemory returns the default Options.Memory: half the memory
// available now (MemAvailable in /proc/meminfo, on Linux), or
// FallbackMemory when that cannot be read.
func DefaultMemory() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return FallbackMemory
	}
	defer f.Close()
	if n, ok := memAvailable(bufio.NewScanner(f)); ok {
		return max(n/2, 1)
	}
	return FallbackMemory
}

// memAvailable finds "MemAvailable: N kB" among the lines of s.
func memAvailable(s *bufio.Scanner) (int64, bool) {
	for s.Scan() {
		rest, ok := strings.CutPrefix(s.Text(), "MemAvailable:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb <= 0 || kb > 1<<40 {
			return 0, false
		}
		return kb << 10, true
	}
	return 0, false
}
