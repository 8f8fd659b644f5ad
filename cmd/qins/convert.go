package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strings"

	"github.com/qins-dev/qins/format/dtype"
	"github.com/urfave/cli/v2"

	"github.com/qins-dev/qins/convert"
	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/qins"
)

// convert runs `qins convert`.
func (a *app) convert(c *cli.Context) error {
	src, err := oneArg(c, "SRC")
	if err != nil {
		return err
	}
	opts, ch, err := convertOptions(c)
	if err != nil {
		return err
	}
	out, err := outputFlag(c)
	if err != nil {
		return err
	}
	if out == "" {
		out = defaultOutput(src)
	}
	opts.Folder = outputIsFolder(src, out)
	return a.pipeline(c, summaryOf{converted, ch}, &opts.WriteOptions, func() (*convert.Summary, error) {
		return convert.Convert(a.ctx, src, out, opts)
	})
}

// convertOptions reads convert's flags, and says what chose the
// encoding.
func convertOptions(c *cli.Context) (convert.Options, choice, error) {
	var opts convert.Options
	var err error
	if opts.WriteOptions, err = writeOptions(c); err != nil {
		return opts, choice{}, err
	}
	ch, err := chooseEncoding(c, &opts)
	if err != nil {
		return opts, ch, err
	}
	if err := rationalOptions(c, &opts); err != nil {
		return opts, ch, usageError{err}
	}
	for _, f := range []struct {
		name string
		re   **regexp.Regexp
	}{{"include", &opts.Include}, {"exclude", &opts.Exclude}} {
		if s := c.String(f.name); s != "" {
			if *f.re, err = regexp.Compile(s); err != nil {
				return opts, ch, usageError{fmt.Errorf("--%s: %v", f.name, err)}
			}
		}
	}
	return opts, ch, nil
}

// rationalOptions checks --alpha and the flags the rational codec does
// not take, and sets opts.Alpha.
func rationalOptions(c *cli.Context, opts *convert.Options) error {
	if opts.Codec != qins.CodecRational {
		if c.IsSet("alpha") {
			return fmt.Errorf("--alpha is for --codec rational, not --codec %v", opts.Codec)
		}
		return nil
	}
	switch {
	case opts.Granularity == qins.GranularityRow && c.IsSet("alpha"):
		return errors.New("--alpha gives every tensor one alpha, --granularity row one alpha per row: give one or the other")
	case c.IsSet("layout"):
		return errors.New("--layout is for --codec log: the rational codec stores one byte per weight, the sign inside")
	case c.IsSet("range") && opts.Range != qins.RangeMSE:
		return errors.New("--codec rational takes --range mse (the alpha of the least squared error, the default) or --alpha A")
	case c.IsSet("range") && c.IsSet("alpha"):
		return errors.New("--codec rational takes either --range mse or --alpha A, not both")
	}
	opts.Range = qins.RangeMinMax // the rational codec has no log range
	if !c.IsSet("alpha") {
		return nil
	}
	a := c.Float64("alpha")
	if math.IsNaN(a) || math.IsInf(a, 0) || a <= 0 {
		return fmt.Errorf("--alpha %v: must be finite and above 0", a)
	}
	if f := float32(a); f == 0 || math.IsInf(float64(f), 0) {
		return fmt.Errorf("--alpha %v: is beyond float32's range", a)
	}
	opts.Alpha = a
	return nil
}

// restore runs `qins restore`.
func (a *app) restore(c *cli.Context) error {
	in, err := oneArg(c, "IN")
	if err != nil {
		return err
	}
	dt, err := dtype.Parse(strings.ToUpper(c.String("dtype")))
	if err != nil || !(dt == dtype.F32 || dt == dtype.F16 || dt == dtype.BF16 || dt == dtype.F64) {
		return usageError{fmt.Errorf("--dtype %q: choose F32, F16, BF16 or F64", c.String("dtype"))}
	}
	out, err := outputFlag(c)
	if err != nil {
		return err
	}
	if out == "" {
		var ok bool
		if out, ok = defaultRestoreOutput(in); !ok {
			return usageError{errors.New("restoring a file needs -o OUT")}
		}
	}
	opts := convert.RestoreOptions{DType: dt}
	if opts.WriteOptions, err = writeOptions(c); err != nil {
		return err
	}
	opts.Folder = outputIsFolder(in, out)
	return a.pipeline(c, summaryOf{d: restored}, &opts.WriteOptions, func() (*convert.Summary, error) {
		return convert.Restore(a.ctx, in, out, opts)
	})
}

// writeOptions reads the flags convert and restore share.
func writeOptions(c *cli.Context) (convert.WriteOptions, error) {
	o := convert.WriteOptions{Force: c.Bool("force")}
	return o, folderOptions(c, &o)
}

// pipeline runs a convert or a restore of options o with a progress bar
// and the app's pending outputs, then prints its summary unless --quiet.
func (a *app) pipeline(c *cli.Context, how summaryOf, o *convert.WriteOptions, run func() (*convert.Summary, error)) error {
	what := "converting"
	if how.d == restored {
		what = "restoring"
	}
	bar := newBar(a.stderr, what, c.Bool("quiet"))
	o.Progress, o.Pending = bar, a.pending
	s, err := run()
	bar.finish()
	if err != nil {
		return withHint(err)
	}
	if n := len(s.SkippedLinks); n > 0 {
		names := make([]string, n)
		for i, l := range s.SkippedLinks {
			names[i] = format.Printable(l)
		}
		fmt.Fprintf(a.stderr, "qins: warning: left out %d side file(s) linking outside the model folder (--skip-outside-links): %s\n", n, escape(strings.Join(names, ", ")))
	}
	if n := len(s.Unmarked); n > 0 {
		fmt.Fprintf(a.stderr, "qins: warning: %d tensor(s) stored as QINS codes and signs without their qins:NAME metadata were copied as plain tensors, not decoded (has the file lost that metadata?): %s\n", n, escape(nameList(s.Unmarked, 5)))
	}
	if !c.Bool("quiet") {
		writeSummary(a.stdout, s, how)
	}
	return nil
}

// nameList joins the first max names, each through format.Printable, and
// says how many more there are.
func nameList(names []string, max int) string {
	shown := make([]string, 0, min(len(names), max))
	for _, n := range names[:min(len(names), max)] {
		shown = append(shown, format.Printable(n))
	}
	list := strings.Join(shown, ", ")
	if more := len(names) - len(shown); more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	return list
}

// direction is which way a summary's tensors went.
type direction int

const (
	converted direction = iota // encoded into QINS
	restored                   // decoded from QINS
)

// summaryOf is what a summary needs besides the library's Summary: which
// way the tensors went, and, for a convert, what chose the encoding.
type summaryOf struct {
	d      direction
	choice choice
}

// writeSummary writes the summary of a convert or restore in a few lines.
func writeSummary(w io.Writer, s *convert.Summary, how summaryOf) error {
	verb, did := "converted", "encoded"
	if how.d == restored {
		verb, did = "restored", "decoded"
	}
	_, err := fmt.Fprintf(w, "%s %s -> %s\n"+
		"  tensors:  %d %s, %d copied%s\n"+
		"  size:     %s in, %s out (%s the source, %s of FP32 at %s)\n"+
		"%s%s%s%s"+
		"  time:     %.2f s, %.0f MB/s\n",
		verb, format.Printable(s.Input), format.Printable(s.Output),
		s.Encoded, did, s.Copied, keptNote(s),
		humanBytes(s.BytesIn), humanBytes(s.BytesOut), ratio(s.BytesOut, s.BytesIn), ratio(s.BytesOut, s.FP32Bytes), humanBytes(s.FP32Bytes),
		encodingLine(s, how.choice), codecLine(s), packedHint(s), folderLine(s),
		s.Elapsed.Seconds(), s.MBPerSecond())
	return err
}

// keptNote says how many of the copied tensors were kept for their dtype.
func keptNote(s *convert.Summary) string {
	if s.KeptDType == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d of them for their dtype: %s)", s.KeptDType, strings.Join(s.KeptDTypes, ", "))
}

// ratio is a / b for a summary, "-" when b is 0.
func ratio(a, b int64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3fx", float64(a)/float64(b))
}

// codecLine tells the rational codec's alphas; empty for the log codec.
func codecLine(s *convert.Summary) string {
	if s.Codec != qins.CodecRational {
		return ""
	}
	if !s.AlphaMSE {
		return fmt.Sprintf("  codec:    rational, alpha %v for every tensor (--alpha)\n", s.AlphaMin)
	}
	if s.AlphaRows {
		return fmt.Sprintf("  codec:    rational, alpha of the least squared error per row (%.4g .. %.4g)\n", s.AlphaMin, s.AlphaMax)
	}
	return fmt.Sprintf("  codec:    rational, alpha of the least squared error per tensor (%.4g .. %.4g)\n", s.AlphaMin, s.AlphaMax)
}

// packedHint tells what the packed layout would give, when it would help.
func packedHint(s *convert.Summary) string {
	if s.PackedBytes == 0 {
		return ""
	}
	return fmt.Sprintf("  hint:     the encoded tensors are 16-bit, so 2 bytes per weight saves nothing over them;\n"+
		"            the packed layout (1.125 bytes per weight, the same values) would give about %s (%s the source)\n", humanBytes(s.PackedBytes), ratio(s.PackedBytes, s.BytesIn))
}

// folderLine tells what a folder output holds; empty for a file.
func folderLine(s *convert.Summary) string {
	if s.Shards == 0 {
		return ""
	}
	index := ""
	if s.Shards > 1 {
		index = " and their index"
	}
	return fmt.Sprintf("  folder:   %d weight file(s)%s, %d other file(s) copied\n", s.Shards, index, s.SideFiles)
}
