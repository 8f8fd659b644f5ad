package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/qins-dev/qins/convert/eval"
	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/outfile"
)

// evalCommand is `qins eval REF CAND`.
func evalCommand(action cli.ActionFunc) *cli.Command {
	return &cli.Command{
		Name:        "eval",
		Usage:       "compare two checkpoints' next-token predictions (teacher-forced KLD, top-1, perplexity) and greedy outputs",
		ArgsUsage:   "REF CAND | REF --save-ref FILE",
		Description: evalHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "text", Usage: "tokenise `FILE` (UTF-8 text) into the stream"},
			&cli.StringFlag{Name: "tokens", Usage: "read the stream from `FILE`, a JSON array of token ids"},
			&cli.IntFlag{Name: "generate", Value: eval.DefaultGenerate, Usage: "`N` tokens each model generates greedily, and the length of the default stream (0 with --text or --tokens: no generation)"},
			&cli.StringFlag{Name: "config", Usage: "read the model's config from `FILE` instead of REF's config.json"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
			&cli.Float64Flag{Name: "max-kld", Usage: "fail when the mean KL divergence is above `X`", DefaultText: "none"},
			&cli.Float64Flag{Name: "min-top1", Usage: "fail when the top-1 agreement is below `P` (a fraction, 0 to 1)", DefaultText: "none"},
			&cli.StringFlag{Name: "save-ref", Usage: "keep REF's side (stream, log-probabilities, greedy ids) in `FILE`, to give in place of REF later"},
			&cli.BoolFlag{Name: "force", Usage: "replace an existing --save-ref file"},
			&cli.StringFlag{Name: "memory", Usage: "let each model's greedy generation keep up to `SIZE` of weights in memory, in their stored form (for example 2GiB or 500MB): weights that fit are read once, not every token", DefaultText: "half the available memory"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
		},
		OnUsageError: usageErr,
		Action:       action,
	}
}

// eval runs `qins eval`.
func (a *app) eval(c *cli.Context) error {
	alone := c.NArg() == 1 && c.IsSet("save-ref")
	if c.NArg() != 2 && !alone {
		return usageError{fmt.Errorf("eval takes two checkpoints, REF and CAND (or REF alone with --save-ref); got %d arguments", c.NArg())}
	}
	if alone && (c.IsSet("max-kld") || c.IsSet("min-top1")) {
		return usageError{errors.New("--max-kld and --min-top1 need a CAND")}
	}
	opts, err := evalOptions(c)
	if err != nil {
		return err
	}
	save := c.String("save-ref")
	if c.IsSet("save-ref") {
		if save == "" {
			return usageError{errors.New("--save-ref: give a file name")}
		}
		if err := notStdout("--save-ref", save); err != nil {
			return err
		}
		if err := outfile.Check(save, c.Bool("force")); err != nil {
			return unusable{withHint(err)}
		}
		for _, flag := range []string{"text", "tokens"} {
			if f := c.String(flag); f != "" && sameFile(save, f) {
				return unusable{&format.Error{Path: save, Err: fmt.Errorf("is the --%s file; refusing to overwrite it", flag)}}
			}
		}
		opts.SaveRef = true
		opts.Outputs = []string{save}
	}
	quiet := c.Bool("quiet") || c.Bool("json")
	var gens []*bar
	layers := newCountBar(a.stderr, "layers", quiet)
	opts.Progress = layers
	opts.Generation = func(side string) eval.Progress {
		for _, g := range gens {
			g.finish()
		}
		g := newCountBar(a.stderr, side+" generating", quiet)
		g.rate = "tokens"
		gens = append(gens, g)
		return g
	}
	r, err := eval.Eval(a.ctx, c.Args().Get(0), c.Args().Get(1), opts)
	layers.finish()
	for _, g := range gens {
		g.finish()
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		var se *eval.StreamError
		var ge *eval.GenerateError
		switch f := c.String("tokens") + c.String("text"); {
		case errors.As(err, &ge) && c.IsSet("generate"):
			return usageError{fmt.Errorf("--generate %d: %w", ge.Generate, ge)}
		case errors.As(err, &ge):
			return unusable{hinted{err, fmt.Sprintf("lower --generate to %d or less", max(0, ge.MaxPositions-ge.Prompt))}}
		case errors.As(err, &se) && f != "":
			err = fmt.Errorf("%s: %w", format.Printable(f), err)
		}
		return unusable{withHint(err)}
	}
	if save != "" {
		if err := saveRef(r, save, outfile.Options{Force: c.Bool("force"), Pending: a.pending}); err != nil {
			return unusable{withHint(err)}
		}
	}
	switch {
	case c.Bool("json"):
		err = r.WriteJSON(&jsonWriter{w: a.stdout})
	case alone:
		_, err = fmt.Fprintf(a.stdout, "ref          %s (%s)\ntokens       %d, %d positions in %.1f s, perplexity %s\nsaved in     %s\n",
			format.Printable(r.Ref), r.Architecture, r.Tokens, r.Positions, r.Seconds, figure(r.PPL.Ref), format.Printable(save))
	default:
		err = writeEvalText(a.stdout, r)
	}
	if err != nil {
		return unusable{fmt.Errorf("writing the report: %w", err)}
	}
	if !r.OK() {
		return differ{}
	}
	return nil
}

// saveRef writes REF's side of r to path, which appears complete or not
// at all.
func saveRef(r *eval.Report, path string, opts outfile.Options) error {
	o, err := outfile.Create(path, opts)
	if err != nil {
		return err
	}
	if err := r.WriteRef(o); err != nil {
		o.Abort()
		return &format.Error{Path: path, Err: err}
	}
	return o.Commit()
}

// sameFile reports whether the paths a and b name one existing file.
func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// readErr is the error of reading the file named by flag.
func readErr(flag, path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s %s: %w", flag, format.Printable(path), err)
}

// evalOptions reads eval's flags and the --text or --tokens file.
func evalOptions(c *cli.Context) (eval.Options, error) {
	opts := eval.Options{Generate: c.Int("generate"), Config: c.String("config")}
	text, tokens := c.String("text"), c.String("tokens")
	switch {
	case text != "" && tokens != "":
		return opts, usageError{errors.New("give --text or --tokens, not both")}
	case opts.Generate < 0:
		return opts, usageError{fmt.Errorf("--generate %d: give a count >= 0", opts.Generate)}
	case opts.Generate == 0 && text == "" && tokens == "":
		return opts, usageError{errors.New("--generate 0 needs --text or --tokens: the default stream is REF's generation")}
	case opts.Generate == 0:
		opts.Generate = -1 // no greedy comparison
	case !c.IsSet("generate"):
		opts.Generate = 0 // the default, cut to fit the model's positions
	}
	if c.IsSet("memory") {
		n, err := parseSize(c.String("memory"))
		if err != nil {
			return opts, usageError{fmt.Errorf("--memory: %w", err)}
		}
		opts.Memory = n
	}
	if c.IsSet("max-kld") {
		// NaN would fail every run, infinity none.
		v := c.Float64("max-kld")
		if !(v >= 0 && !math.IsInf(v, 1)) {
			return opts, usageError{fmt.Errorf("--max-kld %g: give a finite number >= 0", v)}
		}
		opts.MaxKLD = &v
	}
	if c.IsSet("min-top1") {
		v := c.Float64("min-top1")
		if !(v >= 0 && v <= 1) {
			return opts, usageError{fmt.Errorf("--min-top1 %g: give a fraction from 0 to 1", v)}
		}
		opts.MinTop1 = &v
	}
	if text != "" {
		b, err := eval.ReadText(text)
		if err != nil {
			return opts, unusable{withHint(readErr("--text", text, err))}
		}
		if len(b) == 0 {
			return opts, unusable{fmt.Errorf("--text %s: the file is empty", format.Printable(text))}
		}
		opts.Text = string(b)
	}
	if tokens != "" {
		b, err := eval.ReadFile(tokens, eval.MaxTokensBytes, "a token file")
		if err != nil {
			return opts, unusable{withHint(readErr("--tokens", tokens, err))}
		}
		if opts.Tokens, err = eval.ParseTokens(b); err != nil {
			return opts, unusable{fmt.Errorf("--tokens %s: %w", format.Printable(tokens), err)}
		}
	}
	return opts, nil
}

// writeEvalText writes eval's report as a short table, then both greedy
// texts.
func writeEvalText(w io.Writer, r *eval.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "ref          %s (%s)\n", format.Printable(r.Ref), r.Architecture)
	if r.SavedRef != "" {
		fmt.Fprintf(&b, "             as saved in %s\n", format.Printable(r.SavedRef))
	}
	fmt.Fprintf(&b, "cand         %s\n", format.Printable(r.Cand))
	src := map[string]string{"text": "--text", "tokens": "--tokens", "greedy": "REF's greedy generation"}[r.Source]
	fmt.Fprintf(&b, "tokens       %d (%s), %d positions compared in %.1f s\n", r.Tokens, src, r.Positions, r.Seconds)
	fmt.Fprintf(&b, "top-1        %.2f%% (%d of %d)\n", 100*r.Top1, r.Top1Agree, r.Positions)
	fmt.Fprintf(&b, "KLD          mean %s  median %s  p99 %s  max %s\n", figure(r.KLD.Mean), figure(r.KLD.Median), figure(r.KLD.P99), figure(r.KLD.Max))
	fmt.Fprintf(&b, "perplexity   ref %s  cand %s  ratio %s\n", figure(r.PPL.Ref), figure(r.PPL.Cand), figure(r.PPL.Ratio))
	if g := r.GenerateCut; g != nil {
		fmt.Fprintf(&b, "generate     %d tokens, not the default %d: max_position_embeddings is %d\n", g.To, g.From, g.MaxPositions)
	}
	if m := r.Memory; m != nil && (m.Ref != nil || m.Cand != nil) {
		sides := []string{}
		for _, k := range []struct {
			side string
			k    *eval.Kept
		}{{"REF", m.Ref}, {"CAND", m.Cand}} {
			if k.k != nil {
				sides = append(sides, kept(k.side, k.k))
			}
		}
		fmt.Fprintf(&b, "memory       %s for the weights of each generation: %s\n", humanBytes(m.Budget), strings.Join(sides, ", "))
	}
	if g := r.Greedy; g != nil {
		div := "none"
		if g.FirstDivergence != nil {
			div = "at token " + strconv.Itoa(*g.FirstDivergence)
		}
		fmt.Fprintf(&b, "greedy       %d tokens from a %d-token prompt, first divergence %s (%.1f s)\n", len(g.RefIDs), len(g.Prompt), div, g.Seconds)
		if g.RefText != nil && g.CandText != nil {
			fmt.Fprintf(&b, "\nREF:\n%s\n\nCAND:\n%s\n", printableText(*g.RefText), printableText(*g.CandText))
		} else {
			if g.TextError != "" {
				fmt.Fprintf(&b, "\nids only, the tokenizer cannot be used: %s\n", printableText(g.TextError))
			}
			fmt.Fprintf(&b, "\nREF ids:  %v\nCAND ids: %v\n", g.RefIDs, g.CandIDs)
		}
	}
	for _, f := range r.Fails {
		fmt.Fprintf(&b, "FAIL: %s\n", f)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// kept says how one model's generation kept its weights.
func kept(side string, k *eval.Kept) string {
	switch {
	case k.Resident:
		return fmt.Sprintf("%s %s resident", side, humanBytes(k.Bytes))
	}
	return fmt.Sprintf("%s %s streamed (over the budget, read every token)", side, humanBytes(k.Bytes))
}

// figure formats one figure of the report: "inf" for an infinity (a
// perplexity past float64), "-" for NaN (a ratio of two infinities).
func figure(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case math.IsInf(v, 1):
		return "inf"
	case math.IsInf(v, -1):
		return "-inf"
	}
	return fmt.Sprintf("%.6g", v)
}

// printableText returns a decoded text with every character that would act
// on a terminal (ESC, other controls but newline and tab, characters that
// do not print) written as a Go escape, so that a tokenizer's pieces
// cannot drive the terminal.
func printableText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '\n' || r == '\t' || unicode.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}
