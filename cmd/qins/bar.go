package main

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/qins-dev/qins/convert"
)

// bar is a progress bar in bytes on stderr; it shows nothing when stderr
// is not a terminal or when quiet.
type bar struct {
	w     io.Writer
	what  string
	on    bool
	units bool   // counts units (layers), not bytes
	rate  string // units shows a rate of these per second ("tokens")
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
	if b.rate != "" {
		opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString(b.rate))
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
