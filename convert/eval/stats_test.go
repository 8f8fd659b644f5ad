package eval

import (
	"math"
	"testing"
)

func TestPercentileAsNumpy(t *testing.T) {
	// numpy.median and numpy.percentile(x, 99) of these, by hand:
	// sorted positions (n-1)*q/100.
	for _, c := range []struct {
		x              []float64
		median, p99, m float64
	}{
		{[]float64{3}, 3, 3, 3},
		{[]float64{1, 2}, 1.5, 1.99, 2},
		{[]float64{4, 1, 3, 2}, 2.5, 3.97, 4},
		{[]float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100}, 0, 90, 100}, // pos 9.9: 0 + 0.9*100
	} {
		d := summarize(c.x)
		var mean float64
		for _, v := range c.x {
			mean += v / float64(len(c.x))
		}
		if math.Abs(d.Median-c.median) > 1e-12 || math.Abs(d.P99-c.p99) > 1e-12 || d.Max != c.m || math.Abs(d.Mean-mean) > 1e-12 {
			t.Errorf("%v: got %+v, want median %v p99 %v max %v mean %v", c.x, d, c.median, c.p99, c.m, mean)
		}
	}
}

func TestSoftmaxAndKL(t *testing.T) {
	x := []float32{1000, 999, -5, 0} // large logits: no overflow
	lp := make([]float64, len(x))
	logSoftmax(x, lp)
	var sum float64
	for _, v := range lp {
		sum += math.Exp(v)
	}
	if math.Abs(sum-1) > 1e-15 {
		t.Errorf("probabilities sum to %v", sum)
	}
	if got, want := lp[0]-lp[1], 1.0; got != want {
		t.Errorf("log-odds %v, want %v", got, want)
	}
	if d := kl(lp, lp); d != 0 {
		t.Errorf("KL(p||p) = %v", d)
	}
	// Two outcomes: p = (1/2, 1/2), q = (1/4, 3/4):
	// KL = 1/2 ln 2 + 1/2 ln(2/3).
	p := []float64{math.Log(0.5), math.Log(0.5)}
	q := []float64{math.Log(0.25), math.Log(0.75)}
	if got, want := kl(p, q), 0.5*math.Log(2)+0.5*math.Log(2.0/3); math.Abs(got-want) > 1e-15 {
		t.Errorf("KL = %v, want %v", got, want)
	}
	if got := argmax([]float32{1, 3, 3, 2}); got != 1 {
		t.Errorf("argmax on a tie = %d, want the first, 1", got)
	}
}

func TestCompare(t *testing.T) {
	// Two positions, vocabulary 3. Position 0: the same argmax; position 1:
	// not. The last row predicts nothing compared.
	ref := []float32{2, 0, 0, 0, 1, 0, 5, 5, 5}
	cand := []float32{2, 0, 0, 1, 0, 0, 6, 6, 6}
	ids := []int{0, 0, 1}
	var r Report
	if side, pos, _ := compare(&r, ids, liveRows{ref, 3}, cand, 3, nil); side != "" || pos != -1 {
		t.Errorf("finite logits reported not finite: %s %d", side, pos)
	}
	if r.Positions != 2 || r.Top1 != 0.5 || r.Top1Agree != 1 {
		t.Errorf("positions %d, top1 %v (%d)", r.Positions, r.Top1, r.Top1Agree)
	}
	if r.KLD.Max <= 0 || r.KLD.Median != r.KLD.Mean || r.KLD.Mean != r.KLD.Max/2 {
		t.Errorf("KLD %+v: want 0 at position 0 and the max at 1", r.KLD)
	}
	// NLL of ids[1] = 0 under row 0 and of ids[2] = 1 under row 1.
	e := math.Exp
	lse := func(a, b, c float64) float64 { return math.Log(e(a) + e(b) + e(c)) }
	nllRef := (lse(2, 0, 0) - 2) + (lse(0, 1, 0) - 1)
	nllCand := (lse(2, 0, 0) - 2) + (lse(1, 0, 0) - 0)
	if math.Abs(r.PPL.Ref-math.Exp(nllRef/2)) > 1e-12 || math.Abs(r.PPL.Cand-math.Exp(nllCand/2)) > 1e-12 || math.Abs(r.PPL.Ratio-r.PPL.Cand/r.PPL.Ref) > 1e-15 {
		t.Errorf("ppl %+v, want ref %v cand %v", r.PPL, math.Exp(nllRef/2), math.Exp(nllCand/2))
	}
}

func TestCompareNotFinite(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	ok := []float32{1, 2, 3, 1, 2, 3, 1, 2, 3}
	for _, c := range []struct {
		ref, cand []float32
		side      string
		pos       int
	}{
		{ok, []float32{1, 2, 3, 1, nan, 3, 1, 2, 3}, "CAND", 1},
		{[]float32{inf, 2, 3, 1, 2, 3, 1, 2, 3}, ok, "REF", 0},
		{ok, []float32{1, 2, 3, 1, 2, float32(math.Inf(-1)), 1, 2, 3}, "CAND", 1},
		{ok, []float32{1, 2, 3, 1, 2, 3, 1, 2, nan}, "CAND", 2},
		{[]float32{1, 2, 3, 1, 2, 3, inf, 2, 3}, ok, "REF", 2},
	} {
		var r Report
		if side, pos, _ := compare(&r, []int{0, 1, 2}, liveRows{c.ref, 3}, c.cand, 3, nil); side != c.side || pos != c.pos {
			t.Errorf("%v / %v: %q at %d, want %q at %d", c.ref, c.cand, side, pos, c.side, c.pos)
		}
	}
}

func TestFirstDivergence(t *testing.T) {
	for _, c := range []struct {
		a, b []int
		want int
	}{
		{[]int{1, 2, 3}, []int{1, 2, 3}, 0},
		{[]int{1, 2, 3}, []int{1, 5, 3}, 2},
		{[]int{7}, []int{8}, 1},
		{[]int{1, 2}, []int{1, 2, 3}, 3},
		{nil, nil, 0},
	} {
		if got := firstDivergence(c.a, c.b); got != c.want {
			t.Errorf("%v %v: %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
