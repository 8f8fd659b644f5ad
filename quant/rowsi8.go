package quant

// The per-row granularity of the i8 form: each row's range is found as
// the 8-bit code's (RowCoder.Range, stored in float32 by StoredRange), or
// for mse with MSEParamsLevels(Levels7) on the row alone, and the row's
// i8 codes are the formula's with that stored range. A plain loop over
// the row's values: no kernels.

// EncodeI8 writes the i8 codes of one row, whose first element has flat
// index first, and returns the stored range it used: the row's min/max
// range, or with mse the range MSEParamsLevels(Levels7) chooses for the
// row, rounded as StoredRange rounds it. codes must hold one entry per
// element of the row.
func (rc *RowCoder) EncodeI8(row []byte, first int64, mse bool, codes []int8) (Params, error) {
	n := len(row) / rc.size
	codes = codes[:n]
	row = row[:n*rc.size]
	p, err := rc.Range(row, first)
	if err != nil {
		return Params{}, err
	}
	if mse && p.LogMin != p.LogMax {
		if rc.scan == nil {
			if rc.scan, err = NewScanner(rc.dt); err != nil {
				return Params{}, err
			}
		}
		rc.scan.Reset()
		rc.scan.Scan(row, first)
		q, err := rc.scan.MSEParamsLevels(Levels7)
		if err != nil {
			return Params{}, err
		}
		p = StoredRange(q)
	}
	if rc.toF32 != nil {
		for i := range codes {
			m := uint16(row[2*i]) | uint16(row[2*i+1])<<8
			codes[i] = p.CodeI8(float64(rc.toF32(m)))
		}
		return p, nil
	}
	for i, x := range rc.values(row) {
		codes[i] = p.CodeI8(x)
	}
	return p, nil
}
