package gemm

// packed is a packed in panels for the micro-kernel: for each block of
// kBlock columns starting at p0, panels of mr rows, each kb×mr with
// element (p, i) at p*mr+i; rows past m are zero.
type packed struct {
	data   []float32
	mr, mp int // rows per panel, m rounded up to mr
	panels int
}

// pack packs a (m×k) in panels of mr rows on up to workers goroutines.
func pack(a []float32, m, k, mr, workers int) *packed {
	mp := (m + mr - 1) / mr * mr
	ap := &packed{data: make([]float32, mp*k), mr: mr, mp: mp, panels: mp / mr}
	blocks := (k + kBlock - 1) / kBlock
	parallel(workers, blocks*ap.panels, func(_, u int) {
		p0, ir := u/ap.panels*kBlock, u%ap.panels
		kb := min(kBlock, k-p0)
		dst := ap.panel(p0, kb, ir)
		i, i1 := ir*mr, min(m, (ir+1)*mr)
		// Four rows at a time: four neighbouring values per store position.
		for ; i+4 <= i1 && mr%4 == 0; i += 4 {
			r0 := a[i*k+p0 : i*k+p0+kb]
			r1 := a[(i+1)*k+p0 : (i+1)*k+p0+kb]
			r2 := a[(i+2)*k+p0 : (i+2)*k+p0+kb]
			r3 := a[(i+3)*k+p0 : (i+3)*k+p0+kb]
			d := dst[i%mr:]
			for p := range r0 {
				q := d[p*mr : p*mr+4 : p*mr+4]
				q[0], q[1], q[2], q[3] = r0[p], r1[p], r2[p], r3[p]
			}
		}
		for ; i < i1; i++ {
			d := dst[i%mr:]
			for p, v := range a[i*k+p0 : i*k+p0+kb] {
				d[p*mr] = v
			}
		}
	})
	return ap
}

// panel returns panel ir of the block of kb columns starting at p0.
func (ap *packed) panel(p0, kb, ir int) []float32 {
	off := ap.mp*p0 + ir*kb*ap.mr
	return ap.data[off : off+kb*ap.mr]
}
