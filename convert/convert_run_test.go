package convert

import "testing"

// TestInterleave checks that the merged scan and encode steps of two
// tensors cover each exactly once, in order, each within a step of its
// share of the way at every point.
func TestInterleave(t *testing.T) {
	for _, c := range []struct{ sb, si, pb, sp int64 }{
		{4, 16, 4, 16}, {4, 17, 8, 3}, {1, 1, 5, 100}, {10, 1000, 3, 7}, {8, 8, 8, 0}, {6, 0, 2, 9},
	} {
		steps := interleave(nil, 1, c.sb, c.si, 0, c.pb, c.sp)
		n, m := (c.si+c.sb-1)/c.sb, (c.sp+c.pb-1)/c.pb
		if int64(len(steps)) != n+m {
			t.Fatalf("%+v: %d steps, want %d", c, len(steps), n+m)
		}
		var next [2]int64 // bytes covered, of the encode and the scan
		var a, b int64
		for _, s := range steps {
			k, size := s.job, [2]int64{c.sp, c.si}[s.job]
			if want := [2]int{passEncode, passScan}[k]; s.pass != want || s.off != next[k] || s.n <= 0 || s.off+s.n > size {
				t.Fatalf("%+v: step %+v out of place (next byte %d)", c, s, next[k])
			}
			next[k] += s.n
			if k == 1 {
				a++
			} else {
				b++
			}
			// a/n and b/m stay within one step of each other.
			if n > 0 && m > 0 && (a-1)*m > b*n+n || (b-1)*n > a*m+m {
				t.Fatalf("%+v: %d of %d scans beside %d of %d encodes", c, a, n, b, m)
			}
		}
		if next[0] != c.sp || next[1] != c.si {
			t.Fatalf("%+v: covered %v", c, next)
		}
	}
}
