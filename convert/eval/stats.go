package eval

import (
	"math"
	"sort"
)

// logSoftmax writes the natural-log probabilities of the logits x to dst,
// in float64.
func logSoftmax(x []float32, dst []float64) {
	mx := math.Inf(-1)
	for _, v := range x {
		mx = max(mx, float64(v))
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp(float64(v) - mx)
	}
	// (x - max) - log(sum) keeps the digits that x - logsumexp(x) loses
	// when the logits are large.
	ls := math.Log(sum)
	for i, v := range x {
		dst[i] = (float64(v) - mx) - ls
	}
}

// argmax returns the index of the largest value, the first one on a tie
// (as numpy.argmax).
func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// kl returns KL(P || Q) = sum p (log p - log q) from log-probabilities.
func kl(logp, logq []float64) float64 {
	var s float64
	for i, lp := range logp {
		if p := math.Exp(lp); p > 0 {
			s += p * (lp - logq[i])
		}
	}
	return s
}

// refRows gives REF's side of the teacher-forced pass, position by
// position: from its logits (liveRows) or from a saved REF.
type refRows interface {
	// row writes REF's log-probabilities at position t to lp and returns
	// its most likely token there; finite is false, and lp untouched,
	// when REF's logits there are not all finite.
	row(t int, lp []float64) (top int, finite bool, err error)
	// lastFinite reports whether REF's logits after the last compared
	// position (which predict nothing compared) are all finite.
	lastFinite() bool
}

// liveRows are REF's logits, T×vocab, row-major.
type liveRows struct {
	logits []float32
	vocab  int
}

func (l liveRows) row(t int, lp []float64) (int, bool, error) {
	x := l.logits[t*l.vocab : (t+1)*l.vocab]
	top := argmax(x)
	if !finiteRow(x) {
		return top, false, nil
	}
	logSoftmax(x, lp)
	return top, true, nil
}

func (l liveRows) lastFinite() bool { return finiteRow(l.logits[len(l.logits)-l.vocab:]) }

// compare fills the teacher-forced figures of r from REF's rows and
// CAND's logits over ids (T×vocab, row-major): position t predicts
// ids[t+1], and r.candArgmax[t] is CAND's most likely token there. When
// save is not nil, it receives REF's rows. It returns the side ("REF" or
// "CAND") and position of the first logits that are not all finite, the
// last row (which predicts nothing compared) included, or "" and -1.
func compare(r *Report, ids []int, ref refRows, cand []float32, vocab int, save *savedRows) (string, int, error) {
	positions := len(ids) - 1
	lp, lq := make([]float64, vocab), make([]float64, vocab)
	klds := make([]float64, positions)
	var agree int
	var nllRef, nllCand float64
	r.candArgmax = make([]int, positions)
	for t := range positions {
		y := cand[t*vocab : (t+1)*vocab]
		r.candArgmax[t] = argmax(y)
		top, finite, err := ref.row(t, lp)
		if err != nil {
			return "", -1, err
		}
		if top == r.candArgmax[t] {
			agree++
		}
		if !finite {
			return "REF", t, nil
		}
		if !finiteRow(y) {
			return "CAND", t, nil
		}
		logSoftmax(y, lq)
		klds[t] = kl(lp, lq)
		nllRef -= lp[ids[t+1]]
		nllCand -= lq[ids[t+1]]
		if save != nil {
			save.add(lp, top, lp[ids[t+1]])
		}
	}
	last := positions * vocab
	if !ref.lastFinite() {
		return "REF", positions, nil
	}
	if !finiteRow(cand[last : last+vocab]) {
		return "CAND", positions, nil
	}
	r.Positions = positions
	r.Top1 = float64(agree) / float64(positions)
	r.Top1Agree = agree
	r.KLD = summarize(klds)
	r.PPL.Ref = math.Exp(nllRef / float64(positions))
	r.PPL.Cand = math.Exp(nllCand / float64(positions))
	r.PPL.Ratio = r.PPL.Cand / r.PPL.Ref
	return "", -1, nil
}

// refAlone fills REF's figures of r (positions, perplexity) from its
// logits over ids, with save receiving its rows: REF running alone to
// save its side. It returns the first position whose logits are not all
// finite, or -1.
func refAlone(r *Report, ids []int, ref liveRows, save *savedRows) int {
	positions := len(ids) - 1
	lp := make([]float64, ref.vocab)
	var nll float64
	for t := range positions {
		top, finite, _ := ref.row(t, lp)
		if !finite {
			return t
		}
		nll -= lp[ids[t+1]]
		save.add(lp, top, lp[ids[t+1]])
	}
	if !ref.lastFinite() {
		return positions
	}
	r.Positions = positions
	r.PPL.Ref = math.Exp(nll / float64(positions))
	r.PPL.Cand, r.PPL.Ratio = math.NaN(), math.NaN()
	r.KLD = Dist{Mean: math.NaN(), Median: math.NaN(), P99: math.NaN(), Max: math.NaN()}
	return -1
}

// finiteRow reports whether every value of x is finite.
func finiteRow(x []float32) bool {
	var s float32
	for _, v := range x {
		s += v - v // NaN for a NaN or an infinity
	}
	return s == 0
}

// summarize returns the mean, median, 99th percentile and maximum of x,
// the percentiles as numpy.percentile computes them (linear).
func summarize(x []float64) Dist {
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	var sum float64
	for _, v := range s {
		sum += v
	}
	return Dist{Mean: sum / float64(len(s)), Median: percentile(s, 50), P99: percentile(s, 99), Max: s[len(s)-1]}
}

// percentile returns the q-th percentile of sorted s by linear
// interpolation between the closest ranks.
func percentile(s []float64, q float64) float64 {
	pos := q / 100 * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	frac := pos - float64(lo)
	return s[lo] + (s[hi]-s[lo])*frac
}

// firstDivergence returns the 1-based index of the first element where a
// and b differ, counting a shorter side as differing where it ends, or 0
// when they are equal.
func firstDivergence(a, b []int) int {
	for i := range max(len(a), len(b)) {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			return i + 1
		}
	}
	return 0
}
