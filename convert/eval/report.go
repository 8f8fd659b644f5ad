package eval

import (
	"encoding/json"
	"io"
)

// Dist summarises a per-position measure.
type Dist struct {
	Mean   float64 `json:"mean"`
	Median float64 `json:"median"`
	P99    float64 `json:"p99"` // linear interpolation, as numpy.percentile
	Max    float64 `json:"max"`
}

// Perplexity is exp(mean negative log-likelihood of the stream's next
// tokens) for each model, and Cand / Ref.
type Perplexity struct {
	Ref   float64 `json:"ref"`
	Cand  float64 `json:"cand"`
	Ratio float64 `json:"ratio"`
}

// Greedy compares the two models' greedy generations from one prompt.
type Greedy struct {
	Prompt []int `json:"prompt"`
	// FirstDivergence is the 1-based index, among the generated tokens, of
	// the first that differs; nil when none does.
	FirstDivergence *int  `json:"first_divergence"`
	RefIDs          []int `json:"ref_ids"` // generated ids only, prompt excluded
	CandIDs         []int `json:"cand_ids"`
	// RefText and CandText decode the generated ids; nil without a
	// tokenizer.
	RefText  *string `json:"ref_text,omitempty"`
	CandText *string `json:"cand_text,omitempty"`
	// TextError says why there are no texts when a tokenizer is there but
	// cannot be read; empty otherwise.
	TextError string  `json:"text_error,omitempty"`
	Seconds   float64 `json:"seconds"` // both generations, wall clock
}

// Report is the result of Eval. Its JSON form is what `qins eval --json`
// prints.
type Report struct {
	Ref          string `json:"ref"`
	Cand         string `json:"cand"`
	Architecture string `json:"architecture"`
	// Source says where the stream comes from: "text", "tokens" or
	// "greedy" (REF's own generation from BOS).
	Source string `json:"source"`
	IDs    []int  `json:"ids"`    // the token stream, BOS included when there is one
	Tokens int    `json:"tokens"` // len(IDs)
	// Positions is the number of predictions compared: positions 0..T-2,
	// each predicting IDs[t+1].
	Positions int `json:"positions"`
	// Top1 is the fraction of positions where both models' most likely
	// next token is the same; Top1Agree counts them.
	Top1      float64    `json:"top1"`
	Top1Agree int        `json:"top1_agree"`
	KLD       Dist       `json:"kld"` // KL(P_ref || P_cand), natural log, per position
	PPL       Perplexity `json:"ppl"`
	// Seconds is the wall-clock time of the teacher-forced pass of both
	// models.
	Seconds float64 `json:"seconds"`
	Greedy  *Greedy `json:"greedy"` // nil when no generation was asked for
	// Fails lists the thresholds missed.
	Fails []string `json:"fails"`
}

// OK reports whether every threshold given was met.
func (r *Report) OK() bool { return len(r.Fails) == 0 }

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(js, '\n'))
	return err
}
