package diff

import "math"

// Accumulator accumulates the sums behind Stats, in float64. Feed it
// with Add, in any order of chunks, and Merge the chunks in order.
type Accumulator struct {
	n, identical, nonFinite uint64
	maxErr                  float64
	maxIdx                  int64
	sumAbs, sse             float64
	sa2, sb2, sab           float64
}

// NewAccumulator returns an empty Accumulator.
func NewAccumulator() *Accumulator { return &Accumulator{maxIdx: -1} }

// Add compares x and y, whose first element has flat index first.
func (s *Accumulator) Add(x, y []float64, first int64) {
	if !s.addFinite(x, y[:len(x)], first) {
		s.addCareful(x, y[:len(x)], first)
	}
}

// addFinite is Add for chunks without NaN or infinity, the common case; it
// changes nothing and returns false when it meets one. The sums are locals,
// which the compiler keeps in registers, in two lanes to halve the chains
// of dependent additions.
func (s *Accumulator) addFinite(x, y []float64, first int64) bool {
	var sumAbs, sse, sa2, sb2, sab [2]float64
	maxErr, maxIdx := s.maxErr, s.maxIdx
	var identical uint64
	n := len(x) &^ 1
	for i := 0; i < n; i += 2 {
		a0, b0, a1, b1 := x[i], y[i], x[i+1], y[i+1]
		d0, d1 := a0-b0, a1-b1
		ad0, ad1 := math.Abs(d0), math.Abs(d1)
		if ad0 > maxErr || ad1 > maxErr {
			if ad0 >= ad1 {
				maxErr, maxIdx = ad0, first+int64(i)
			} else {
				maxErr, maxIdx = ad1, first+int64(i+1)
			}
		}
		if d0 == 0 {
			identical++
		}
		if d1 == 0 {
			identical++
		}
		sumAbs[0] += ad0
		sumAbs[1] += ad1
		sse[0] += d0 * d0
		sse[1] += d1 * d1
		sa2[0] += a0 * a0
		sa2[1] += a1 * a1
		sb2[0] += b0 * b0
		sb2[1] += b1 * b1
		sab[0] += a0 * b0
		sab[1] += a1 * b1
	}
	if n < len(x) {
		a, b := x[n], y[n]
		d := a - b
		ad := math.Abs(d)
		if ad > maxErr {
			maxErr, maxIdx = ad, first+int64(n)
		}
		if d == 0 {
			identical++
		}
		sumAbs[0] += ad
		sse[0] += d * d
		sa2[0] += a * a
		sb2[0] += b * b
		sab[0] += a * b
	}
	// A NaN or an infinity anywhere makes these sums NaN or infinite.
	if !finite(sumAbs[0]+sumAbs[1]) || !finite(sa2[0]+sa2[1]+sb2[0]+sb2[1]) || !finite(sse[0]+sse[1]) {
		return false
	}
	s.sumAbs += sumAbs[0] + sumAbs[1]
	s.sse += sse[0] + sse[1]
	s.sa2 += sa2[0] + sa2[1]
	s.sb2 += sb2[0] + sb2[1]
	s.sab += sab[0] + sab[1]
	s.identical += identical
	s.maxErr, s.maxIdx = maxErr, maxIdx
	s.n += uint64(len(x))
	return true
}

func finite(f float64) bool { return f-f == 0 }

// addCareful is Add element by element, setting aside pairs where a NaN or
// an infinity on one side is not matched on the other.
func (s *Accumulator) addCareful(x, y []float64, first int64) {
	for i, a := range x {
		b := y[i]
		d := a - b
		ad := math.Abs(d)
		if !(ad <= math.MaxFloat64) { // NaN or infinity somewhere
			if a == b || (a != a && b != b) {
				s.identical++
			} else {
				s.nonFinite++
			}
			continue
		}
		if d == 0 {
			s.identical++
		}
		if ad > s.maxErr {
			s.maxErr, s.maxIdx = ad, first+int64(i)
		}
		s.sumAbs += ad
		s.sse += d * d
		s.sa2 += a * a
		s.sb2 += b * b
		s.sab += a * b
	}
	s.n += uint64(len(x))
}

// Merge adds t, which covers elements after those of s.
func (s *Accumulator) Merge(t *Accumulator) {
	if t.maxErr > s.maxErr || (s.maxIdx < 0 && t.maxIdx >= 0) {
		s.maxErr, s.maxIdx = t.maxErr, t.maxIdx
	}
	s.n += t.n
	s.identical += t.identical
	s.nonFinite += t.nonFinite
	s.sumAbs += t.sumAbs
	s.sse += t.sse
	s.sa2 += t.sa2
	s.sb2 += t.sb2
	s.sab += t.sab
}

// Stats returns the measures of what was added.
func (s *Accumulator) Stats() Stats {
	st := Stats{Elements: s.n, MaxAbsErr: Num(s.maxErr), MaxAbsErrIndex: max(s.maxIdx, 0), Identical: s.identical, NonFinite: s.nonFinite}
	m := float64(s.n - s.nonFinite)
	if m > 0 {
		st.MeanAbsErr = Num(s.sumAbs / m)
		st.RMSE = Num(math.Sqrt(s.sse / m))
	}
	st.Exact = s.identical == s.n
	switch {
	case s.sse == 0:
		st.RelRMSE = 0
	case s.sa2 == 0:
		st.RelRMSE = Num(math.Inf(1))
	default:
		st.RelRMSE = Num(math.Sqrt(s.sse / s.sa2))
	}
	switch {
	case s.sa2 == 0 && s.sb2 == 0:
		st.Cosine = 1
	case s.sa2 == 0 || s.sb2 == 0:
		st.Cosine = 0
	default:
		st.Cosine = Num(s.sab / math.Sqrt(s.sa2*s.sb2))
	}
	if s.sse == 0 {
		st.SNRdB = Num(math.Inf(1)) // written as null; Exact says why
	} else {
		st.SNRdB = Num(10 * math.Log10(s.sa2/s.sse))
	}
	return st
}
