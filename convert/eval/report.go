package eval

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
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
	Seconds  float64 `json:"seconds"` // both generations, wall clock
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

// WriteText writes a short table, then both greedy texts.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ref          %s (%s)\n", r.Ref, r.Architecture)
	fmt.Fprintf(&b, "cand         %s\n", r.Cand)
	src := map[string]string{"text": "--text", "tokens": "--tokens", "greedy": "REF's greedy generation"}[r.Source]
	fmt.Fprintf(&b, "tokens       %d (%s), %d positions compared in %.1f s\n", r.Tokens, src, r.Positions, r.Seconds)
	fmt.Fprintf(&b, "top-1        %.2f%% (%d of %d)\n", 100*r.Top1, r.Top1Agree, r.Positions)
	fmt.Fprintf(&b, "KLD          mean %.6g  median %.6g  p99 %.6g  max %.6g\n", r.KLD.Mean, r.KLD.Median, r.KLD.P99, r.KLD.Max)
	fmt.Fprintf(&b, "perplexity   ref %.6g  cand %.6g  ratio %.6g\n", r.PPL.Ref, r.PPL.Cand, r.PPL.Ratio)
	if g := r.Greedy; g != nil {
		div := "none"
		if g.FirstDivergence != nil {
			div = "at token " + strconv.Itoa(*g.FirstDivergence)
		}
		fmt.Fprintf(&b, "greedy       %d tokens from a %d-token prompt, first divergence %s (%.1f s)\n", len(g.RefIDs), len(g.Prompt), div, g.Seconds)
		if g.RefText != nil && g.CandText != nil {
			fmt.Fprintf(&b, "\nREF:\n%s\n\nCAND:\n%s\n", *g.RefText, *g.CandText)
		} else {
			fmt.Fprintf(&b, "\nREF ids:  %v\nCAND ids: %v\n", g.RefIDs, g.CandIDs)
		}
	}
	for _, f := range r.Fails {
		fmt.Fprintf(&b, "FAIL: %s\n", f)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
