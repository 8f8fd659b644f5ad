package eval

import (
	"encoding/json"
	"io"
	"math"
)

// Dist summarises a per-position measure.
type Dist struct {
	Mean   float64 `json:"mean"`
	Median float64 `json:"median"`
	P99    float64 `json:"p99"` // linear interpolation, as numpy.percentile
	Max    float64 `json:"max"`
}

// MarshalJSON writes a figure that is not finite as null.
func (d Dist) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Mean   jsonFloat `json:"mean"`
		Median jsonFloat `json:"median"`
		P99    jsonFloat `json:"p99"`
		Max    jsonFloat `json:"max"`
	}{jsonFloat(d.Mean), jsonFloat(d.Median), jsonFloat(d.P99), jsonFloat(d.Max)})
}

// Perplexity is exp(mean negative log-likelihood of the stream's next
// tokens) for each model, and Cand / Ref. A mean negative log-likelihood
// above about 709 makes a perplexity +Inf, and then the ratio +Inf, 0 or
// NaN.
type Perplexity struct {
	Ref   float64 `json:"ref"`
	Cand  float64 `json:"cand"`
	Ratio float64 `json:"ratio"`
}

// MarshalJSON writes a figure that is not finite as null.
func (p Perplexity) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Ref   jsonFloat `json:"ref"`
		Cand  jsonFloat `json:"cand"`
		Ratio jsonFloat `json:"ratio"`
	}{jsonFloat(p.Ref), jsonFloat(p.Cand), jsonFloat(p.Ratio)})
}

// jsonFloat is a float64 that JSON, which has no NaN or infinity, gets as
// null when it is not finite.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

// Greedy compares the two models' greedy generations from one prompt.
type Greedy struct {
	Prompt []int `json:"prompt"`
	// FirstDivergence is the 1-based index, among the generated tokens, of
	// the first that differs; nil when none does.
	FirstDivergence *int  `json:"first_divergence"`
	RefIDs          []int `json:"ref_ids"` // generated ids only, prompt excluded
	// CandIDs, when the stream is REF's generation, are CAND's most likely
	// tokens of the teacher-forced pass up to the first that differs
	// (the same prefix, so the same tokens, up to the order of float
	// sums), then generated.
	CandIDs []int `json:"cand_ids"`
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
	Ref string `json:"ref"`
	// SavedRef is the saved REF compared against, when REF did not run;
	// Ref is then the path REF was saved from.
	SavedRef     string `json:"saved_ref,omitempty"`
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
	// NonFinite names the figures above that are not finite, which JSON
	// gives as null: "kld_mean", "kld_median", "kld_p99", "kld_max",
	// "ppl_ref", "ppl_cand", "ppl_ratio". Empty (and left out of the JSON)
	// when all are.
	NonFinite []string `json:"nonfinite,omitempty"`
	// Seconds is the wall-clock time of the teacher-forced pass of both
	// models.
	Seconds float64 `json:"seconds"`
	Greedy  *Greedy `json:"greedy"` // nil when no generation was asked for
	// GenerateCut, when the default number of generated tokens did not
	// fit the model's positions, says what it was cut to; nil otherwise.
	GenerateCut *GenerateCut `json:"generate_cut,omitempty"`
	// Memory is the budget of weights each greedy generation could keep in
	// memory, and how each model's generation kept them.
	Memory *Memory `json:"memory"`
	// Fails lists the thresholds missed.
	Fails []string `json:"fails"`

	candArgmax []int // CAND's most likely next token at each position
	// saved and savedHeader are REF's side, kept for WriteRef.
	saved       *savedRows
	savedHeader *savedHeader
}

// OK reports whether every threshold given was met.
func (r *Report) OK() bool { return len(r.Fails) == 0 }

// nonFinite lists the figures of r that are not finite, as NonFinite
// names them.
func (r *Report) nonFinite() []string {
	var out []string
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"kld_mean", r.KLD.Mean}, {"kld_median", r.KLD.Median}, {"kld_p99", r.KLD.P99}, {"kld_max", r.KLD.Max},
		{"ppl_ref", r.PPL.Ref}, {"ppl_cand", r.PPL.Cand}, {"ppl_ratio", r.PPL.Ratio},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			out = append(out, f.name)
		}
	}
	return out
}

// WriteJSON writes the report as one indented JSON object. Figures that
// are not finite are null, and NonFinite names them.
func (r *Report) WriteJSON(w io.Writer) error {
	c := *r
	c.NonFinite = r.nonFinite()
	js, err := json.MarshalIndent(&c, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(js, '\n'))
	return err
}

// GenerateCut is the default generation length cut to fit
// max_position_embeddings after the prompt.
type GenerateCut struct {
	From         int `json:"from"`
	To           int `json:"to"`
	MaxPositions int `json:"max_position_embeddings"`
}

// Memory is Options.Memory and what greedy generation did with it.
type Memory struct {
	Budget int64 `json:"budget"` // bytes
	// Ref and Cand say how each model's generation kept its weights; nil
	// for a model that generated nothing (CAND when the teacher-forced
	// pass gave its whole greedy output).
	Ref  *Kept `json:"ref"`
	Cand *Kept `json:"cand"`
}

// Kept says how a model's greedy generation kept its weights.
type Kept struct {
	// Bytes is what its matrices take in their stored form: codes, sign
	// bits and decoding tables for QINS, the values for BF16, F16, F32.
	Bytes int64 `json:"bytes"`
	// Resident is true when Bytes fit the budget, and the weights were
	// loaded once; false when they were read again every token.
	Resident bool `json:"resident"`
}
