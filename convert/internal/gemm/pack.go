package gemm

// packed is a packed in panels for the micro-kernel: for each block of
// kBlock columns starting at p0, panels of tileM rows, each kb×tileM with
// element (p, i) at p*tileM+i; rows past m are zero.
type packed struct {
	data   []float32
	m, mp  int // rows, rows rounded up to tileM
	panels int
}

func pack(a []float32, m, k int) *packed {
	mp := (m + tileM - 1) / tileM * tileM
	ap := &packed{data: make([]float32, mp*k), m: m, mp: mp, panels: mp / tileM}
	for p0 := 0; p0 < k; p0 += kBlock {
		kb := min(kBlock, k-p0)
		for i := 0; i < m; i++ {
			dst := ap.panel(p0, kb, i/tileM)[i%tileM:]
			src := a[i*k+p0 : i*k+p0+kb]
			for p, v := range src {
				dst[p*tileM] = v
			}
		}
	}
	return ap
}

// panel returns panel ir of the block of kb columns starting at p0.
func (ap *packed) panel(p0, kb, ir int) []float32 {
	off := ap.mp*p0 + ir*kb*tileM
	return ap.data[off : off+kb*tileM]
}
