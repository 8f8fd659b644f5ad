// Command qins converts safetensors checkpoints into QINS files and back.
// It parses flags, decides output names (file or folder, defaults),
// renders every report as text or JSON, draws the diff plot, shows
// progress, maps errors to hints and exit statuses, and owns the signals;
// the work itself is the library's (packages convert, convert/diff,
// convert/eval). Run 'qins help COMMAND' for each command's reference.
package main

import (
	"context"
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

	"github.com/qins-dev/qins/format/outfile"

	"github.com/urfave/cli/v2"

	"github.com/qins-dev/qins/convert"
	"github.com/qins-dev/qins/convert/eval"
)

func main() {
	pending := &outfile.Pending{}
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
func withSignals(pending *outfile.Pending, stderr io.Writer, grace time.Duration) (context.Context, func() os.Signal, func()) {
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
func runPending(ctx context.Context, pending *outfile.Pending, args []string, stdout, stderr io.Writer) int {
	a := &app{ctx: ctx, pending: pending, stdout: stdout, stderr: stderr}
	cmd := a.cli()
	args, err := reorderArgs(cmd, args)
	if err == nil {
		err = cmd.Run(args)
	}
	if err == nil && a.unknown != "" {
		err = usageError{fmt.Errorf("no command %q", a.unknown)}
	}
	if err == nil {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "qins: usage error: %s\n", escape(ue.error.Error()))
		hint := "run 'qins help' or 'qins COMMAND --help'"
		var h hinted
		if errors.As(ue.error, &h) {
			hint = h.hint
		}
		fmt.Fprintf(stderr, "hint: %s\n", escape(hint))
		return 2
	}
	if errors.As(err, new(differ)) {
		return 1
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, outfile.ErrInterrupted) {
		fmt.Fprintln(stderr, "qins: interrupted; no output written")
		return 130
	}
	fmt.Fprintf(stderr, "qins: error: %s\n", escape(err.Error()))
	var h hinted
	if errors.As(err, &h) {
		fmt.Fprintf(stderr, "hint: %s\n", escape(h.hint))
	}
	if errors.As(err, new(unusable)) {
		return 2
	}
	return 1
}

// app is what the commands of one run share.
type app struct {
	ctx            context.Context
	pending        *outfile.Pending // outputs to remove on a signal; may be nil
	stdout, stderr io.Writer
	unknown        string // a command asked for that does not exist
}

// newApp returns the command line of qins writing to stdout and stderr.
func newApp(ctx context.Context, pending *outfile.Pending, stdout, stderr io.Writer) *cli.App {
	return (&app{ctx: ctx, pending: pending, stdout: stdout, stderr: stderr}).cli()
}

// cli returns the command line: its commands, flags and actions.
func (a *app) cli() *cli.App {
	force := &cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "replace OUT if it exists"}
	quiet := &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar and no summary"}
	output := &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `OUT`"}
	app := &cli.App{
		Name:            "qins",
		Usage:           "convert safetensors checkpoints into QINS files and back",
		Writer:          a.stdout,
		ErrWriter:       a.stderr,
		HideHelpCommand: false,
		ExitErrHandler:  func(*cli.Context, error) {}, // run reports errors
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
		// Called by `qins help NAME`, which then returns nil: run turns
		// a.unknown into a usage error.
		CommandNotFound: func(_ *cli.Context, name string) { a.unknown = name },
		Commands: []*cli.Command{
			{
				Name:        "convert",
				Usage:       "encode a checkpoint (folder, file or index.json) into a QINS folder or file",
				ArgsUsage:   "SRC",
				Description: convertHelp,
				Flags: append([]cli.Flag{output, force, quiet,
					&cli.StringFlag{Name: "include", Usage: "encode the floating-point tensors whose names match `REGEX` (default: those of rank >= 2)"},
					&cli.StringFlag{Name: "exclude", Usage: "keep the tensors whose names match `REGEX` unchanged"},
					&cli.StringFlag{Name: "layout", Usage: "for --codec log: packed (a code byte and a sign bit: 1.125 bytes per weight; the default), u8+i8 (a code byte and a sign byte per weight) or i8 (the sign and a 7-bit code in one byte; QINS version 3)"},
					&cli.StringFlag{Name: "range", Usage: "mse (log_min chosen for the least squared error; decodes the same way; the default) or minmax (the formula's log range)"},
					&cli.StringFlag{Name: "granularity", Usage: "row (one log range per row of the last dimension, in NAME.logrange; QINS version 2; the default for --codec log where rows hold 64 weights or more) or tensor (one per tensor; the default for shorter rows and with --alpha); with --codec rational one alpha per row, in NAME.alpha, QINS version 4"},
					&cli.BoolFlag{Name: "reference", Usage: "the reference implementation's encoding, 16 bits per weight: " + referenceFlags},
					&cli.StringFlag{Name: "codec", Value: "log", Usage: "log (log-magnitude codes and signs) or rational (sign(w)/(1+alpha*|w|) in one byte per weight; QINS version 3)"},
					&cli.Float64Flag{Name: "alpha", Usage: "the rational codec's alpha for every tensor (finite, above 0); by default each tensor (or with --granularity row each row) gets the alpha of its least squared error"},
				}, folderFlags()...),
				OnUsageError: usageErr,
				Action:       a.convert,
			},
			{
				Name:        "restore",
				Usage:       "decode a QINS folder or file into a plain safetensors folder or file",
				ArgsUsage:   "IN",
				Description: restoreHelp,
				Flags: append([]cli.Flag{output, force, quiet,
					&cli.StringFlag{Name: "dtype", Value: "F32", Usage: "dtype of the floating-point tensors: F32, F16, BF16 or F64"},
				}, folderFlags()...),
				OnUsageError: usageErr,
				Action:       a.restore,
			},
			diffCommand(quiet, a.diff),
			evalCommand(a.eval),
			tokenizeCommand(a.tokenize),
			{
				Name:         "inspect",
				Usage:        "list the tensors of a QINS file or of any safetensors file or checkpoint",
				ArgsUsage:    "FILE",
				Description:  inspectHelp,
				Flags:        []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON object"}},
				OnUsageError: usageErr,
				Action:       a.inspect,
			},
		},
	}
	addVersion(app, a.stdout)
	for _, c := range app.Commands {
		// No "help" subcommand: `qins convert h` converts the folder h
		// (help is --help, or qins help convert).
		c.HideHelpCommand = true
	}
	top := app.Action // help, or the version with --version
	app.Action = func(c *cli.Context) error {
		if c.NArg() > 0 {
			return usageError{fmt.Errorf("no command %q", c.Args().First())}
		}
		return top(c)
	}
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
	return out, notStdout("-o", out)
}

// notStdout refuses "-" as the output of flag: qins writes its outputs
// whole under a temporary name, then renames them into place, so it cannot
// write to standard output; and a file or folder named "-" is seldom what
// was meant.
func notStdout(flag, path string) error {
	if path != "-" {
		return nil
	}
	return usageError{hinted{fmt.Errorf("%s -: qins does not write to standard output (an output appears whole, under its name, once complete)", flag), "to name a file \"-\", write ./-"}}
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

// withHint adds a hint to errors a user can act on: the library's errors
// speak of its options, the hints of the flags that set them.
func withHint(err error) error {
	var clash *convert.NameClashError
	var cast *convert.CastError
	switch {
	case errors.Is(err, outfile.ErrExists):
		return hinted{err, "pass --force to replace it"}
	case errors.Is(err, os.ErrNotExist):
		return hinted{err, "check the path"}
	case errors.As(err, &clash):
		return hinted{err, fmt.Sprintf("keep it unchanged with --exclude '^%s$'", regexp.QuoteMeta(clash.Tensor))}
	case errors.Is(err, convert.ErrNoneSelected):
		return hinted{err, "--include REGEX names the floating-point tensors to encode; 'qins inspect' lists them"}
	case errors.Is(err, convert.ErrHeaderTooLarge):
		return hinted{err, "keep tensors unchanged with --exclude REGEX"}
	case errors.Is(err, convert.ErrNotQINS):
		return hinted{err, "qins convert makes one"}
	case errors.As(err, &cast):
		return hinted{err, "restore to a wider dtype, such as --dtype F32"}
	case errors.Is(err, convert.ErrOutsideLink):
		return hinted{err, "copy the file into the folder, or pass --skip-outside-links to leave such files out"}
	case errors.Is(err, convert.ErrSideTooLarge):
		return hinted{err, "move the file out of the model folder, or raise the limit with --max-side-file or --max-side-total SIZE"}
	case errors.Is(err, eval.ErrNoConfig):
		return hinted{err, "pass --config FILE"}
	}
	return err
}

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
