package eval

import (
	"fmt"
	"math"

	"github.com/qins-dev/qins/convert/eval/internal/model"
)

// nonFiniteErr is the error of logits that hold a NaN or an infinity:
// which model (side, "REF" or "CAND"), at which position of the stream,
// in which pass, and the likely cause: a value of the config the model ran
// with that is outside its sane range, else its weights.
func (s *session) nonFiniteErr(side string, pos int, pass string) error {
	w, cfg, path := s.rw, s.cfg, s.cfgPath
	if side == "CAND" {
		w = s.cw
		if s.ccfgPath != "" {
			cfg, path = s.ccfg, s.ccfgPath
		}
	}
	what := fmt.Sprintf("%s's logits at position %d are not finite (%s)", side, pos, pass)
	if c := configCause(cfg); c != "" {
		return &InputError{Path: path, Err: fmt.Errorf("%s: likely cause: %s", what, c)}
	}
	return &InputError{Path: w.Path(), Err: fmt.Errorf("%s: likely cause: a NaN or an infinity in its weights, or weights so large that float32 overflows", what)}
}

// configCause names the first value of c outside the range where the
// forward pass computes finite numbers, "" when there is none: an epsilon
// that is 0 to float32 (a zero row is then 0/0), a RoPE base or scaling
// factor that makes a frequency infinite, an attention factor that
// overflows the rotated queries and keys.
func configCause(c *model.Config) string {
	const tiny = 1e-30 // far above float32's smallest, so products stay finite
	type check struct {
		name   string
		v      float64
		lo, hi float64
	}
	checks := []check{
		{"rms_norm_eps", c.NormEps, tiny, math.Inf(1)},
		{"rope_theta", c.RopeTheta, 1, math.Inf(1)},
	}
	r := c.Rope
	switch r.Type {
	case "linear", "llama3":
		checks = append(checks, check{"rope_scaling factor", r.Factor, tiny, math.Inf(1)})
	case "longrope":
		for i, f := range r.ShortFactor {
			checks = append(checks, check{fmt.Sprintf("rope_scaling short_factor[%d]", i), f, tiny, math.Inf(1)})
		}
		for i, f := range r.LongFactor {
			checks = append(checks, check{fmt.Sprintf("rope_scaling long_factor[%d]", i), f, tiny, math.Inf(1)})
		}
		checks = append(checks, check{"rope_scaling attention_factor", r.AttentionFactor, tiny, 100})
	}
	for _, k := range checks {
		if !(k.v >= k.lo && k.v <= k.hi) {
			want := fmt.Sprintf(">= %g", k.lo)
			if !math.IsInf(k.hi, 1) {
				want = fmt.Sprintf("from %g to %g", k.lo, k.hi)
			}
			return fmt.Sprintf("%s is %g, outside its sane range (%s)", k.name, k.v, want)
		}
	}
	return ""
}
