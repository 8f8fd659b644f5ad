package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/qins-dev/qins/convert"
	"github.com/qins-dev/qins/format/qins"
)

// The encoding flags of qins convert: their defaults, the --reference
// preset, and what the summary says of the choice.

// defaultLog is how the log codec encodes when no flag says otherwise: a
// code byte and a sign bit per weight, and each row's log_min chosen for
// the least squared error. On stories260K its mean KLD is a tenth of the
// reference's encoding's, in 9.87 bits per weight instead of 16 (README,
// "What each option costs and keeps").
var defaultLog = qins.Encoding{Codec: qins.CodecLog, Layout: qins.LayoutPacked, Granularity: qins.GranularityRow, Range: qins.RangeMSE}

// defaultRational is the rational codec's: the alpha of the least
// squared error of each row (of each tensor with --alpha, which gives
// every tensor one alpha). On stories260K its mean KLD is 0.77x one alpha
// per tensor's, for 0.43 bits per weight of alphas on rows of 64 and 172.
var defaultRational = qins.Encoding{Codec: qins.CodecRational, Granularity: qins.GranularityRow, Range: qins.RangeMSE}

// reference is --reference: the reference implementation's formula, one
// min/max log range per tensor, a code byte and a sign byte per weight
// (qins's default before issue 21).
var reference = qins.Encoding{Codec: qins.CodecLog, Layout: qins.LayoutU8I8, Granularity: qins.GranularityTensor, Range: qins.RangeMinMax}

// referenceFlags spells out --reference.
const referenceFlags = "--codec log --layout u8+i8 --granularity tensor --range minmax"

// choice is what chose a convert's encoding, for its summary.
type choice struct {
	// by names what chose it: "the default", or the flags given.
	by string
}

// chooseEncoding reads the encoding flags into opts: the defaults, or
// --reference, with each flag given overriding its part. A flag that
// contradicts --reference is a usage error.
func chooseEncoding(c *cli.Context, opts *convert.Options) (choice, error) {
	codec, err := qins.ParseCodec(c.String("codec"))
	if err != nil {
		return choice{}, usageError{fmt.Errorf("--%v", err)}
	}
	e := defaultLog
	if codec == qins.CodecRational {
		e = defaultRational
		if c.IsSet("alpha") {
			e.Granularity = qins.GranularityTensor
		}
	}
	ref := c.Bool("reference")
	if ref {
		e = reference
	}
	conflict := func(flag string) error {
		return usageError{fmt.Errorf("--reference is %s: it cannot be combined with %s", referenceFlags, flag)}
	}
	if ref && codec != reference.Codec {
		return choice{}, conflict("--codec " + codec.String())
	}
	if ref && c.IsSet("alpha") {
		return choice{}, conflict(fmt.Sprintf("--alpha %v", c.Float64("alpha")))
	}
	for _, f := range []struct {
		name  string
		parse func(string) error
		is    func() bool // whether the part parsed is --reference's
	}{
		{"layout", func(s string) (err error) { e.Layout, err = qins.ParseLayout(s); return err }, func() bool { return e.Layout == reference.Layout }},
		{"granularity", func(s string) (err error) { e.Granularity, err = qins.ParseGranularity(s); return err }, func() bool { return e.Granularity == reference.Granularity }},
		{"range", func(s string) (err error) { e.Range, err = qins.ParseRange(s); return err }, func() bool { return e.Range == reference.Range }},
	} {
		if !c.IsSet(f.name) {
			continue
		}
		v := c.String(f.name)
		if err := f.parse(v); err != nil {
			return choice{}, usageError{fmt.Errorf("--%v", err)}
		}
		if ref && !f.is() {
			return choice{}, conflict("--" + f.name + " " + v)
		}
	}
	// The rational codec's own checks (rationalOptions) refuse a layout,
	// per-row granularity or a min/max range given with it.
	opts.Codec, opts.Layout, opts.Granularity, opts.Range = e.Codec, e.Layout, e.Granularity, e.Range
	if e.Granularity == qins.GranularityRow && !c.IsSet("granularity") {
		// Rows not asked for: only where their ranges cost at most a bit
		// per weight (not on LoRA adapters' or convolutions' short rows).
		opts.RowRangeBudget = 1
	}

	var given []string
	for _, n := range []string{"reference", "codec", "layout", "granularity", "range", "alpha"} {
		if !c.IsSet(n) {
			continue
		}
		switch n {
		case "reference":
			given = append(given, "--reference")
		case "alpha":
			given = append(given, fmt.Sprintf("--alpha %v", c.Float64(n)))
		default:
			given = append(given, "--"+n+" "+c.String(n))
		}
	}
	ch := choice{by: "the default"}
	if len(given) > 0 {
		ch.by = strings.Join(given, " ")
		rest := !c.IsSet("layout") || !c.IsSet("granularity") || !c.IsSet("range")
		if codec == qins.CodecRational {
			rest = !c.IsSet("alpha") && !c.IsSet("range")
		}
		if rest && !ref {
			ch.by += ", the rest by default"
		}
	}
	return ch, nil
}

// encodingLine says how the tensors were encoded, what chose it, and the
// bits per encoded weight their stored tensors take (codes, signs and
// per-row ranges); empty when nothing was encoded.
func encodingLine(s *convert.Summary, ch choice) string {
	if s.EncodedElems == 0 {
		return ""
	}
	e := s.Encoding
	what := "rational codec, one alpha per tensor"
	if e.Granularity == qins.GranularityRow {
		what = "rational codec, one alpha per row"
	}
	if e.Codec == qins.CodecLog {
		per := "tensor"
		if e.Granularity == qins.GranularityRow {
			per = "row"
		}
		article := "a"
		if e.Range == qins.RangeMSE {
			article = "an"
		}
		what = fmt.Sprintf("log codec, %v layout, %s %v range per %s", e.Layout, article, e.Range, per)
	}
	by := ch.by
	if s.ShortRows > 0 {
		of := "ranges"
		if e.Codec == qins.CodecRational {
			of = "alphas"
		}
		by += fmt.Sprintf("; the rows are short: their %s would take %.3f bits per weight", of, s.ShortRows)
	}
	if by != "" {
		by = " (" + by + ")"
	}
	return fmt.Sprintf("  encoding: %s%s: %.3f bits per encoded weight\n", what, by, bitsPerWeight(s.EncodedBytes, s.EncodedElems))
}

// bitsPerWeight is 8 bytes / elems.
func bitsPerWeight(bytes, elems int64) float64 { return 8 * float64(bytes) / float64(elems) }
