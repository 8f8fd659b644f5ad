package eval

import (
	"fmt"
)

// nonFiniteErr is the error of logits that hold a NaN or an infinity:
// which model (side, "REF" or "CAND"), at which position of the stream,
// in which pass, and the likely cause: a value of the config the model ran
// with that is outside the range of released models (model.Config.Unusual),
// else its weights.
func (s *session) nonFiniteErr(side string, pos int, pass string) error {
	w, m, path := s.rw, s.ref, s.cfgPath
	if side == "CAND" {
		w, m = s.cw, s.cand
		if s.ccfgPath != "" {
			path = s.ccfgPath
		}
	}
	what := fmt.Sprintf("%s's logits at position %d are not finite (%s)", side, pos, pass)
	if why := m.Config().Unusual(); why != "" {
		return &InputError{Path: path, Err: fmt.Errorf("%s: likely from the config's %s", what, why)}
	}
	return &InputError{Path: w.Path(), Err: fmt.Errorf("%s: a NaN or an infinity in its weights, or weights so large that float32 overflows?", what)}
}
