package main

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/qins-dev/qins/format/outfile"

	"github.com/qins-dev/qins/convert/diff"

	"github.com/urfave/cli/v2"

	"github.com/qins-dev/qins/convert"
)

// diffCommand is `qins diff A B`.
func diffCommand(quiet cli.Flag, action cli.ActionFunc) *cli.Command {
	return &cli.Command{
		Name:        "diff",
		Usage:       "compare two checkpoints tensor by tensor (either may be a QINS file, decoded on the fly)",
		ArgsUsage:   "A B",
		Description: diffHelp,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
			&cli.Float64Flag{Name: "max-rel-rmse", Usage: "fail when a tensor's rmse / rms(A) is above `X`"},
			&cli.Float64Flag{Name: "min-snr-db", Usage: "fail when a tensor's SNR is below `Y` dB"},
			&cli.Float64Flag{Name: "min-cosine", Usage: "fail when a tensor's cosine similarity is below `Z`"},
			&cli.IntFlag{Name: "top", Value: 20, Usage: "show the `N` tensors furthest apart (0: none, -1: all)"},
			&cli.StringFlag{Name: "plot", Usage: "also draw the SNR of each tensor by layer into `FILE.png`"},
			&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace the --plot file if it exists"},
			quiet,
		},
		OnUsageError: usageErr,
		Action:       action,
	}
}

// diff runs `qins diff`.
func (a *app) diff(c *cli.Context) error {
	if c.NArg() != 2 {
		return usageError{fmt.Errorf("diff takes two checkpoints, A and B; got %d arguments", c.NArg())}
	}
	opts := diff.Options{}
	for _, f := range []struct {
		name   string
		dst    **float64
		lo, hi float64
	}{
		{"max-rel-rmse", &opts.MaxRelRMSE, 0, math.MaxFloat64},
		{"min-snr-db", &opts.MinSNRdB, -math.MaxFloat64, math.MaxFloat64},
		{"min-cosine", &opts.MinCosine, -1, 1},
	} {
		if !c.IsSet(f.name) {
			continue
		}
		v := c.Float64(f.name)
		if !(v >= f.lo && v <= f.hi) { // NaN too
			return usageError{fmt.Errorf("--%s %v: want a finite number from %g to %g", f.name, v, f.lo, f.hi)}
		}
		*f.dst = &v
	}
	if top := c.Int("top"); top < -1 {
		return usageError{fmt.Errorf("--top %d: want a number of tensors, or -1 for all", top)}
	}
	plot := c.String("plot")
	if c.IsSet("plot") {
		if err := notStdout("--plot", plot); err != nil {
			return err
		}
		if err := checkPlotPath(plot); err != nil {
			return usageError{fmt.Errorf("--plot: %v", err)}
		}
		if err := outfile.Check(plot, c.Bool("force")); err != nil {
			return withHint(err)
		}
		opts.Outputs = []string{plot}
	}
	bar := newBar(a.stderr, "comparing", c.Bool("quiet") || c.Bool("json"))
	opts.Progress = bar
	r, err := diff.Diff(a.ctx, c.Args().Get(0), c.Args().Get(1), opts)
	bar.finish()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return unusable{withHint(err)}
	}
	if c.Bool("json") {
		err = writeDiffJSON(&jsonWriter{w: a.stdout}, r)
	} else {
		err = writeDiffText(a.stdout, r, c.Int("top"))
	}
	if err != nil {
		return unusable{fmt.Errorf("writing the report: %w", err)}
	}
	if plot != "" {
		if err := savePlot(r, plot, outfile.Options{Force: c.Bool("force"), Pending: a.pending}); err != nil {
			return withHint(err)
		}
	}
	if !r.OK() {
		return differ{}
	}
	return nil
}

// inspect runs `qins inspect`.
func (a *app) inspect(c *cli.Context) error {
	path, err := oneArg(c, "FILE")
	if err != nil {
		return err
	}
	r, err := convert.Inspect(a.ctx, path)
	if err != nil {
		return withHint(err)
	}
	if c.Bool("json") {
		return writeInspectJSON(&jsonWriter{w: a.stdout}, r)
	}
	return writeInspectText(a.stdout, r)
}
