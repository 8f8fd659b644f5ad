// Command qins converts safetensors checkpoints into QINS files and back.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nlpodyssey/safetensors"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/qins-dev/qins/convert"
	"github.com/qins-dev/qins/convert/eval"
	"github.com/qins-dev/qins/format"
)

func main() {
	pending := &format.Pending{}
	ctx, sig, stop := withSignals(pending, os.Stderr, signalGrace)
	code := runPending(ctx, pending, os.Args, os.Stdout, os.Stderr)
	stop()
	if s := sig(); s != nil && code != 0 {
		code = 128 + int(s.(syscall.Signal))
	}
	os.Exit(code)
}

// signalGrace is how long the work has, after a signal, to stop by itself
// before the process removes its outputs and exits.
const signalGrace = time.Second

// withSignals returns a context cancelled by SIGINT or SIGTERM, and the
// signal that cancelled it. Most work stops at once; what does not (an
// open or read that blocks, as on a FIFO, or a long header parse) is cut
// short: after grace, or at a second signal, the handler removes the
// pending outputs and exits with 128 + the signal's number. stop ends the
// handling; after it the handler never exits the process.
func withSignals(pending *format.Pending, stderr io.Writer, grace time.Duration) (context.Context, func() os.Signal, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	var got atomic.Value
	var exiting sync.Mutex // held by whichever of stop and the handler ends the process
	stopped := make(chan struct{})
	go func() {
		var s os.Signal
		select {
		case s = <-ch:
		case <-stopped:
			return
		}
		got.Store(s)
		cancel()
		select {
		case <-ch:
		case <-time.After(grace):
		case <-stopped:
			return
		}
		exiting.Lock() // never unlocked: the process ends here or in main
		pending.Close()
		fmt.Fprintln(stderr, "qins: interrupted; no output written")
		os.Exit(128 + int(s.(syscall.Signal)))
	}()
	load := func() os.Signal {
		s, _ := got.Load().(os.Signal)
		return s
	}
	stop := func() {
		exiting.Lock()
		signal.Stop(ch)
		close(stopped)
		cancel()
	}
	return ctx, load, stop
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ error }

// differ is the exit of a diff that found differences: status 1, the
// report already printed.
type differ struct{}

func (differ) Error() string { return "the checkpoints differ" }

// unusable is trouble for diff, whose status 1 means "differ": an input
// it cannot read, or a report it cannot write. Exit status 2.
type unusable struct{ error }

func (u unusable) Unwrap() error { return u.error }

// hinted carries a hint printed under the error.
type hinted struct {
	error
	hint string
}

func (h hinted) Unwrap() error { return h.error }

// run runs the command line args and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runPending(ctx, nil, args, stdout, stderr)
}

// runPending is run with the outputs tracked in pending (see withSignals).
func runPending(ctx context.Context, pending *format.Pending, args []string, stdout, stderr io.Writer) int {
	app := newApp(ctx, pending, stdout, stderr)
	args, err := reorderArgs(app, args)
	if err == nil {
		err = app.Run(args)
	}
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "qins: usage error: %v\n", ue.error)
		fmt.Fprintln(stderr, "hint: run 'qins help' or 'qins COMMAND --help'")
		return 2
	}
	if errors.As(err, new(differ)) {
		return 1
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, format.ErrInterrupted) {
		fmt.Fprintln(stderr, "qins: interrupted; no output written")
		return 130
	}
	fmt.Fprintf(stderr, "qins: error: %v\n", err)
	var h hinted
	if errors.As(err, &h) {
		fmt.Fprintf(stderr, "hint: %s\n", h.hint)
	}
	if errors.As(err, new(unusable)) {
		return 2
	}
	return 1
}

func newApp(ctx context.Context, pending *format.Pending, stdout, stderr io.Writer) *cli.App {
	force := &cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace OUT if it exists"}
	quiet := &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar and no summary"}
	output := &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `OUT`"}
	app := &cli.App{
		Name:            "qins",
		Usage:           "convert safetensors checkpoints into QINS files and back",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: false,
		ExitErrHandler:  func(*cli.Context, error) {}, // run reports errors
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(stderr, "qins: usage error: no command %q\nhint: run 'qins help'\n", name)
			os.Exit(2)
		},
		Commands: []*cli.Command{
			{
				Name:      "convert",
				Usage:     "encode a checkpoint (folder, file or index.json) into a QINS folder or file",
				ArgsUsage: "SRC",
				Flags: []cli.Flag{output, force, quiet,
					&cli.StringFlag{Name: "include", Usage: "encode the floating-point tensors whose names match `REGEX` (default: those of rank >= 2)"},
					&cli.StringFlag{Name: "exclude", Usage: "keep the tensors whose names match `REGEX` unchanged"},
					&cli.StringFlag{Name: "layout", Value: "u8+i8", Usage: "u8+i8 (a code byte and a sign byte per weight) or packed (a code byte and a sign bit: 1.125 bytes per weight)"},
					&cli.StringFlag{Name: "range", Value: "minmax", Usage: "minmax (the formula's log range) or mse (log_min chosen for the least squared error; decodes the same way)"},
					&cli.StringFlag{Name: "granularity", Value: "tensor", Usage: "tensor (one log range per tensor) or row (one per row of the last dimension, in NAME.logrange; QINS version 2)"},
					maxShardFlag(),
				},
				OnUsageError: usageErr,
				Action: func(c *cli.Context) error {
					src, err := oneArg(c, "SRC")
					if err != nil {
						return err
					}
					opts := convert.Options{Force: c.Bool("force"), Layout: c.String("layout"), Range: c.String("range"), Granularity: c.String("granularity"), Pending: pending}
					if opts.MaxShardBytes, err = maxShardBytes(c); err != nil {
						return err
					}
					if l := opts.Layout; l != format.LayoutU8I8 && l != format.LayoutPacked {
						return usageError{fmt.Errorf("--layout %q: choose u8+i8 or packed", l)}
					}
					if r := opts.Range; r != format.RangeMinMax && r != format.RangeMSE {
						return usageError{fmt.Errorf("--range %q: choose minmax or mse", r)}
					}
					for _, f := range []struct {
						name string
						re   **regexp.Regexp
					}{{"include", &opts.Include}, {"exclude", &opts.Exclude}} {
						if s := c.String(f.name); s != "" {
							if *f.re, err = regexp.Compile(s); err != nil {
								return usageError{fmt.Errorf("--%s: %v", f.name, err)}
							}
						}
					}
					out, err := outputFlag(c)
					if err != nil {
						return err
					}
					if out == "" {
						out = convert.DefaultOutput(src)
					}
					bar := newBar(stderr, "converting", c.Bool("quiet"))
					opts.Progress = bar
					s, err := convert.Convert(ctx, src, out, opts)
					bar.finish()
					if err != nil {
						return withHint(err)
					}
					if !c.Bool("quiet") {
						s.WriteText(stdout, "converted")
					}
					return nil
				},
			},
			{
				Name:      "restore",
				Usage:     "decode a QINS folder or file into a plain safetensors folder or file",
				ArgsUsage: "IN",
				Flags: []cli.Flag{output, force, quiet,
					&cli.StringFlag{Name: "dtype", Value: "F32", Usage: "dtype of the floating-point tensors: F32, F16, BF16 or F64"},
					maxShardFlag(),
				},
				OnUsageError: usageErr,
				Action: func(c *cli.Context) error {
					in, err := oneArg(c, "IN")
					if err != nil {
						return err
					}
					dt, err := safetensors.ParseDType(strings.ToUpper(c.String("dtype")))
					if err != nil || !(dt == safetensors.F32 || dt == safetensors.F16 || dt == safetensors.BF16 || dt == safetensors.F64) {
						return usageError{fmt.Errorf("--dtype %q: choose F32, F16, BF16 or F64", c.String("dtype"))}
					}
					out, err := outputFlag(c)
					if err != nil {
						return err
					}
					if out == "" {
						if out, err = convert.DefaultRestoreOutput(in); err != nil {
							return usageError{err}
						}
					}
					shard, err := maxShardBytes(c)
					if err != nil {
						return err
					}
					bar := newBar(stderr, "restoring", c.Bool("quiet"))
					s, err := convert.Restore(ctx, in, out, convert.RestoreOptions{DType: dt, Force: c.Bool("force"), Progress: bar, MaxShardBytes: shard, Pending: pending})
					bar.finish()
					if err != nil {
						return withHint(err)
					}
					if !c.Bool("quiet") {
						s.WriteText(stdout, "restored")
					}
					return nil
				},
			},
			{
				Name:      "diff",
				Usage:     "compare two checkpoints tensor by tensor (either may be a QINS file, decoded on the fly)",
				ArgsUsage: "A B",
				Description: "Exit status: 0 when every tensor is on both sides and within the thresholds given,\n" +
					"1 otherwise, 2 when an input cannot be read. Thresholds apply to each tensor.",
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
				Action: func(c *cli.Context) error {
					if c.NArg() != 2 {
						return usageError{fmt.Errorf("diff takes two checkpoints, A and B; got %d arguments", c.NArg())}
					}
					opts := convert.DiffOptions{}
					for name, dst := range map[string]**float64{"max-rel-rmse": &opts.MaxRelRMSE, "min-snr-db": &opts.MinSNRdB, "min-cosine": &opts.MinCosine} {
						if c.IsSet(name) {
							v := c.Float64(name)
							*dst = &v
						}
					}
					plot := c.String("plot")
					if c.IsSet("plot") {
						if err := convert.CheckPlotPath(plot); err != nil {
							return usageError{fmt.Errorf("--plot: %v", err)}
						}
						if err := format.CheckOutput(plot, c.Bool("force")); err != nil {
							return withHint(err)
						}
						opts.Outputs = []string{plot}
					}
					bar := newBar(stderr, "comparing", c.Bool("quiet") || c.Bool("json"))
					opts.Progress = bar
					r, err := convert.Diff(ctx, c.Args().Get(0), c.Args().Get(1), opts)
					bar.finish()
					if err != nil {
						if errors.Is(err, context.Canceled) {
							return err
						}
						return unusable{withHint(err)}
					}
					if c.Bool("json") {
						err = r.WriteJSON(stdout)
					} else {
						err = r.WriteText(stdout, c.Int("top"))
					}
					if err != nil {
						return unusable{fmt.Errorf("writing the report: %w", err)}
					}
					if plot != "" {
						if err := r.SavePlot(plot, format.OutputOptions{Force: c.Bool("force"), Pending: pending}); err != nil {
							return withHint(err)
						}
					}
					if !r.OK() {
						return differ{}
					}
					return nil
				},
			},
			evalCommand(ctx, stdout, stderr),
			{
				Name:         "inspect",
				Usage:        "list the tensors of a QINS file or of any safetensors file or checkpoint",
				ArgsUsage:    "FILE",
				Flags:        []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON object"}},
				OnUsageError: usageErr,
				Action: func(c *cli.Context) error {
					path, err := oneArg(c, "FILE")
					if err != nil {
						return err
					}
					r, err := convert.Inspect(ctx, path)
					if err != nil {
						return withHint(err)
					}
					if c.Bool("json") {
						return r.WriteJSON(stdout)
					}
					return r.WriteText(stdout)
				},
			},
		},
	}
	addVersion(app, stdout)
	return app
}

func usageErr(_ *cli.Context, err error, _ bool) error { return usageError{err} }

// outputFlag returns -o OUT, empty when not given; given empty, it is a
// usage error.
func outputFlag(c *cli.Context) (string, error) {
	out := c.String("output")
	if out == "" && c.IsSet("output") {
		return "", usageError{errors.New("-o needs a file name")}
	}
	return out, nil
}

// evalCommand is `qins eval REF CAND`.
func evalCommand(ctx context.Context, stdout, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "compare two checkpoints' next-token predictions (teacher-forced KLD, top-1, perplexity) and greedy outputs",
		ArgsUsage: "REF CAND",
		Description: "config.json and the tokenizer are read beside REF. The token stream is --text, --tokens,\n" +
			"or REF's own greedy generation of --generate tokens from BOS.\n" +
			"Exit status: 0 when within the thresholds given, 1 otherwise, 2 when an input cannot be used.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "text", Usage: "tokenise `FILE` (UTF-8 text) into the stream"},
			&cli.StringFlag{Name: "tokens", Usage: "read the stream from `FILE`, a JSON array of token ids"},
			&cli.IntFlag{Name: "generate", Value: eval.DefaultGenerate, Usage: "`N` tokens each model generates greedily, and the length of the default stream (0 with --text or --tokens: no generation)"},
			&cli.StringFlag{Name: "config", Usage: "read the model's config from `FILE` instead of REF's config.json"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
			&cli.Float64Flag{Name: "max-kld", Usage: "fail when the mean KL divergence is above `X`", DefaultText: "none"},
			&cli.Float64Flag{Name: "min-top1", Usage: "fail when the top-1 agreement is below `P` (a fraction, 0 to 1)", DefaultText: "none"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
		},
		OnUsageError: usageErr,
		Action:       evalAction(ctx, stdout, stderr),
	}
}

// evalAction runs `qins eval`.
func evalAction(ctx context.Context, stdout, stderr io.Writer) cli.ActionFunc {
	return func(c *cli.Context) error {
		if c.NArg() != 2 {
			return usageError{fmt.Errorf("eval takes two checkpoints, REF and CAND; got %d arguments", c.NArg())}
		}
		opts, err := evalOptions(c)
		if err != nil {
			return err
		}
		bar := newCountBar(stderr, "layers", c.Bool("quiet") || c.Bool("json"))
		opts.Progress = bar
		r, err := eval.Eval(ctx, c.Args().Get(0), c.Args().Get(1), opts)
		bar.finish()
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			var se *eval.StreamError
			if f := c.String("tokens") + c.String("text"); errors.As(err, &se) && f != "" {
				err = fmt.Errorf("%s: %w", f, err)
			}
			return unusable{withHint(err)}
		}
		if c.Bool("json") {
			err = r.WriteJSON(stdout)
		} else {
			err = r.WriteText(stdout)
		}
		if err != nil {
			return err
		}
		if !r.OK() {
			return differ{}
		}
		return nil
	}
}

// readErr is the error of reading the file named by flag.
func readErr(flag, path string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s %s: %w", flag, path, err)
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
	}
	if c.IsSet("max-kld") {
		v := c.Float64("max-kld")
		opts.MaxKLD = &v
	}
	if c.IsSet("min-top1") {
		v := c.Float64("min-top1")
		if v < 0 || v > 1 {
			return opts, usageError{fmt.Errorf("--min-top1 %g: give a fraction from 0 to 1", v)}
		}
		opts.MinTop1 = &v
	}
	if text != "" {
		b, err := os.ReadFile(text)
		if err != nil {
			return opts, unusable{withHint(readErr("--text", text, err))}
		}
		if len(b) == 0 {
			return opts, unusable{fmt.Errorf("--text %s: the file is empty", text)}
		}
		opts.Text = string(b)
	}
	if tokens != "" {
		b, err := os.ReadFile(tokens)
		if err != nil {
			return opts, unusable{withHint(readErr("--tokens", tokens, err))}
		}
		if err := json.Unmarshal(b, &opts.Tokens); err != nil || opts.Tokens == nil {
			return opts, unusable{fmt.Errorf("--tokens %s: not a JSON array of token ids", tokens)}
		}
	}
	return opts, nil
}

// oneArg returns the command's single positional argument.
func oneArg(c *cli.Context, name string) (string, error) {
	switch c.NArg() {
	case 1:
		return c.Args().First(), nil
	case 0:
		return "", usageError{fmt.Errorf("%s needs %s", c.Command.Name, name)}
	}
	return "", usageError{fmt.Errorf("%s takes one %s, got %d arguments: %s", c.Command.Name, name, c.NArg(), strings.Join(c.Args().Slice(), " "))}
}

// withHint adds a hint to errors a user can act on.
func withHint(err error) error {
	switch {
	case errors.Is(err, format.ErrExists):
		return hinted{err, "pass --force to replace it"}
	case errors.Is(err, os.ErrNotExist):
		return hinted{err, "check the path"}
	}
	return err
}

// bar is a progress bar in bytes on stderr; it shows nothing when stderr
// is not a terminal or when quiet.
type bar struct {
	w     io.Writer
	what  string
	on    bool
	units bool // counts units (layers), not bytes
	pb    *progressbar.ProgressBar
}

func newBar(stderr io.Writer, what string, quiet bool) *bar {
	f, ok := stderr.(*os.File)
	return &bar{w: stderr, what: what, on: !quiet && ok && term.IsTerminal(int(f.Fd()))}
}

// newCountBar is newBar counting units instead of bytes.
func newCountBar(stderr io.Writer, what string, quiet bool) *bar {
	b := newBar(stderr, what, quiet)
	b.units = true
	return b
}

// Start implements convert.Progress.
func (b *bar) Start(total int64) {
	if !b.on {
		return
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(b.what),
		progressbar.OptionShowBytes(!b.units),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionClearOnFinish(),
	}
	if b.units {
		opts = append(opts, progressbar.OptionShowCount())
	}
	b.pb = progressbar.NewOptions64(total, opts...)
}

// Add implements convert.Progress.
func (b *bar) Add(n int64) {
	if b.pb != nil {
		b.pb.Add64(n)
	}
}

func (b *bar) finish() {
	if b.pb != nil {
		b.pb.Finish()
	}
}

var _ convert.Progress = (*bar)(nil)

// reorderArgs moves the flags of a subcommand before its positional
// arguments, so that `qins convert SRC -o OUT` parses like
// `qins convert -o OUT SRC` (the flag package stops at the first
// positional argument), then ends the flags with "--" so that the
// positional arguments stay positional. It reads the command line as the
// flag package would, with one difference: a flag that takes a value must
// have one. A missing value, or a value that is "--" or one of the
// command's flags, is a usage error, not a value.
func reorderArgs(app *cli.App, args []string) ([]string, error) {
	if len(args) < 3 {
		return args, nil
	}
	var cmd *cli.Command
	for _, c := range app.Commands {
		if c.HasName(args[1]) {
			cmd = c
		}
	}
	if cmd == nil {
		return args, nil
	}
	takesValue := map[string]bool{"help": false, "h": false}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue[n] = !isBool
		}
	}
	isFlag := func(a string) bool {
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		_, known := takesValue[name]
		return len(a) > 1 && a[0] == '-' && (known || a == "--")
	}
	var flags, pos []string
	rest := args[2:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			pos = append(pos, rest[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") || !takesValue[name] {
			continue
		}
		if i+1 == len(rest) || isFlag(rest[i+1]) {
			return nil, usageError{fmt.Errorf("%s needs a value", a)}
		}
		flags = append(flags, rest[i+1])
		i++
	}
	out := append([]string{}, args[:2]...)
	out = append(out, flags...)
	if len(pos) > 0 {
		out = append(out, "--")
		out = append(out, pos...)
	}
	return out, nil
}
