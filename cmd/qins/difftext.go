package main

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/qins-dev/qins/convert/diff"

	"github.com/qins-dev/qins/format"
)

// writeDiffJSON writes r as one JSON object.
func writeDiffJSON(w io.Writer, r *diff.Report) error {
	head := *r
	head.Tensors = []diff.Tensor{}
	return writeIndented(w, &head, "tensors", len(r.Tensors), func(i int) any { return &r.Tensors[i] })
}

// writeDiffText writes r as a table a person reads: the top tensors furthest
// apart (all when top < 0), then the totals and what could not be compared.
func writeDiffText(w io.Writer, r *diff.Report, top int) error {
	fmt.Fprintf(w, "a: %s\nb: %s\n", format.Printable(r.A), format.Printable(r.B))
	worst := r.Worst(top)
	if len(worst) < len(r.Tensors) {
		fmt.Fprintf(w, "the %d tensors furthest apart, of %d:\n", len(worst), len(r.Tensors))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tensor\telements\tmax_abs_err\tat\tmean_abs_err\trmse\trel_rmse\tcosine\tsnr_db\tidentical\t")
	row := func(name string, s diff.Stats, fails []string) {
		mark := ""
		if len(fails) > 0 {
			mark = "  FAIL: " + strings.Join(fails, "; ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, s.Elements,
			g(s.MaxAbsErr), s.MaxAbsErrIndex, g(s.MeanAbsErr), g(s.RMSE), g(s.RelRMSE), cos(s.Cosine), snr(s), pct(s.Identical, s.Elements), mark)
	}
	for _, t := range worst {
		row(format.Printable(t.Name), t.Stats, t.Fails)
	}
	row(fmt.Sprintf("total (%d tensors)", r.Total.Tensors), r.Total.Stats, nil)
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.Total.MaxAbsErrTensor != "" {
		fmt.Fprintf(w, "largest error: %s in %s at element %d\n", g(r.Total.MaxAbsErr), format.Printable(r.Total.MaxAbsErrTensor), r.Total.MaxAbsErrIndex)
	}
	list := func(what string, names []string) {
		if len(names) > 0 {
			shown := make([]string, len(names))
			for i, n := range names {
				shown[i] = format.Printable(n)
			}
			fmt.Fprintf(w, "%s (%d): %s\n", what, len(names), strings.Join(shown, ", "))
		}
	}
	list("missing in a", r.MissingInA)
	list("missing in b", r.MissingInB)
	for _, m := range r.ShapeMismatch {
		fmt.Fprintf(w, "not comparable: %s: %s (a: %s %v, b: %s %v)\n", format.Printable(m.Name), m.Reason, m.DTypeA, m.ShapeA, m.DTypeB, m.ShapeB)
	}
	verdict := "OK"
	if !r.OK() {
		verdict = fmt.Sprintf("DIFFERENT: %d tensors over the thresholds, %d missing, %d not comparable",
			r.Total.Failing, len(r.MissingInA)+len(r.MissingInB), len(r.ShapeMismatch))
	}
	_, err := fmt.Fprintln(w, verdict)
	return err
}

func g(n diff.Num) string {
	f := float64(n)
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsNaN(f): // compared by bits only
		return "-"
	}
	return fmt.Sprintf("%.4g", f)
}

func cos(n diff.Num) string {
	if math.IsNaN(float64(n)) {
		return "-"
	}
	return fmt.Sprintf("%.6f", float64(n))
}

func snr(s diff.Stats) string {
	if s.Exact {
		return "exact"
	}
	f := float64(s.SNRdB)
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return "-"
	}
	return fmt.Sprintf("%.2f", f)
}

func pct(k, n uint64) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(k)/float64(n))
}
