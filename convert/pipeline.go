package convert

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/qins-dev/qins/convert/internal/work"
	"github.com/qins-dev/qins/format/outfile"

	"github.com/qins-dev/qins/format"
)

// WriteOptions configure how Convert and Restore write their output.
type WriteOptions struct {
	// Force replaces an existing output.
	Force bool
	// Folder writes a model folder at the output path: the weights in
	// shards of MaxShardBytes, an index when there are several, and the
	// other files of the input's folder, if it has one (see ModelFolder).
	// Otherwise the output is one safetensors file.
	Folder bool
	// Progress, when set, follows the work in input bytes.
	Progress Progress
	// ChunkBytes is the read size; 0 means work.DefaultChunkBytes, or less when
	// there are so many workers that memory would grow past a bound.
	ChunkBytes int
	// Workers is the number of goroutines; 0 means twice GOMAXPROCS up to
	// 8, and at least GOMAXPROCS up to 64, so that some compute while
	// others wait for the disk.
	Workers int
	// MaxShardBytes bounds the tensor data of each shard of a folder
	// output; 0 means DefaultMaxShardBytes. A tensor larger than that gets
	// a shard of its own.
	MaxShardBytes int64
	// Pending, when set, tracks the output until it is committed, for a
	// signal handler (see outfile.Pending).
	Pending *outfile.Pending
	// SkipOutsideLinks makes a folder output skip the side files that are
	// symbolic links leading outside the model folder (listed in
	// Summary.SkippedLinks) instead of failing with ErrOutsideLink.
	SkipOutsideLinks bool
	// MaxSideFile and MaxSideTotal bound the bytes of one side file of a
	// folder output and of all of them; 0 means DefaultMaxSideFile and
	// DefaultMaxSideTotal.
	MaxSideFile, MaxSideTotal int64
}

// maxSide returns the side-file limits of o.
func (o *WriteOptions) maxSide() (file, total int64) {
	file, total = o.MaxSideFile, o.MaxSideTotal
	if file <= 0 {
		file = DefaultMaxSideFile
	}
	if total <= 0 {
		total = DefaultMaxSideTotal
	}
	return file, total
}

// Progress follows a pipeline, in input bytes: Start once with the total,
// then Add as they are processed, adding up to that total.
type Progress = work.Progress

// sharedProgress passes the pieces of several files on to one Progress,
// started once for all of them.
type sharedProgress struct{ p Progress }

func (sharedProgress) Start(int64)   {}
func (s sharedProgress) Add(n int64) { s.p.Add(n) }

// A pipeline is the work of Convert or Restore, which write runs into one
// output file or a model folder of shards: each turns the units of its
// source (tensors, in order) into output tensors.
type pipeline interface {
	// check refuses an input the pipeline cannot write, once the output
	// is known to be usable.
	check() error
	// units returns how many units the source has.
	units() int
	// outBytes returns the output bytes of each unit, in order: where the
	// shards of a folder split.
	outBytes() []uint64
	// file returns the work of writing units [from, to) into one file.
	file(from, to int) fileWork
}

// fileWork is a pipeline's work on one output file.
type fileWork interface {
	// plan lays out the output, and returns the run that fills it.
	plan() (*outputPlan, error)
}

// outputPlan is the layout of an output file, before any data.
type outputPlan struct {
	meta    map[string]string
	tensors []format.TensorInfo
	// reserve is the header room kept for the metadata run sets.
	reserve int
	// limit is the largest header allowed: format.MaxHeaderSize, or less
	// in tests.
	limit int
	// run writes every tensor of the plan into w, reporting the input
	// bytes done to progress, and counts them in s. It may set metadata
	// that w writes when committed.
	run func(ctx context.Context, w *format.Writer, progress func(int64), s *Summary) error
}

// output is where and how write puts a pipeline's output.
type output struct {
	src *format.Checkpoint // the whole input
	in  string             // the input as named: a file, a folder or an index
	dst string
	// prefix names the shards of a folder output (see format.ShardNames).
	prefix string
	// configDType, when set, is the torch_dtype written into a folder
	// output's config.json.
	configDType string
	opts        WriteOptions
	start       time.Time
}

// write runs p into a model folder at o.dst when o.opts.Folder is set,
// and into one file otherwise: the one path every output
// takes.
func write(ctx context.Context, p pipeline, o *output) (*Summary, error) {
	if o.opts.Folder {
		return writeFolder(ctx, p, o)
	}
	if o.opts.MaxShardBytes != 0 {
		return nil, &format.Error{Path: o.dst, Err: errors.New("a shard size only applies to a folder output")}
	}
	if err := checkNotInput(o.dst, o.src); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	s, err := writeFile(ctx, p.file(0, p.units()), o, o.dst, o.opts.Force, work.OrNone(o.opts.Progress))
	if err != nil {
		return nil, err
	}
	s.BytesIn = o.src.Size()
	s.Elapsed = time.Since(o.start)
	return s, nil
}

// writeFile writes the file dst planned and filled by fw: created aside,
// committed once complete and the input unchanged. It starts pr with the
// input's bytes once the output is created (a folder's shards share a
// Progress started once). The summary's input size and time are left to
// the caller.
func writeFile(ctx context.Context, fw fileWork, o *output, dst string, force bool, pr Progress) (*Summary, error) {
	p, err := fw.plan()
	if err != nil {
		return nil, err
	}
	if err := checkHeaderLen(o.src.Path, p); err != nil {
		return nil, err
	}
	w, err := format.Create(dst, p.meta, p.tensors, format.CreateOptions{Force: force, Reserve: p.reserve, Pending: o.opts.Pending})
	if err != nil {
		return nil, err
	}
	defer w.Abort()
	pr.Start(o.src.DataBytes())
	s := &Summary{Input: o.src.Path, Output: dst}
	if err := p.run(ctx, w, pr.Add, s); err != nil {
		return nil, err
	}
	if err := o.src.Unchanged(); err != nil {
		return nil, err
	}
	if err := w.Commit(); err != nil {
		return nil, err
	}
	if st, err := os.Stat(dst); err == nil {
		s.BytesOut = st.Size()
	}
	s.setPacked()
	return s, nil
}

// writeFolder writes p into the model folder o.dst: the weights in shards,
// their index when there are several, and the other files of the input's
// folder.
func writeFolder(ctx context.Context, p pipeline, o *output) (*Summary, error) {
	dir, _ := ModelFolder(o.in)
	side, err := sideFiles(ctx, dir, o.src, &o.opts)
	if err != nil {
		return nil, err
	}
	if err := checkFolderOutput(o.dst, dir, o.src, side.files); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	spans := shardSpans(p.outBytes(), o.opts.MaxShardBytes)
	dw, err := outfile.CreateDir(o.dst, o.opts.Force, o.opts.Pending)
	if err != nil {
		return nil, err
	}
	defer dw.Abort()
	pr := work.OrNone(o.opts.Progress)
	pr.Start(o.src.DataBytes())
	s := &Summary{Input: o.src.Path, Output: o.dst, BytesIn: o.src.Size()}
	err = writeShards(dw, o.prefix, len(spans), s, func(i int, path string) (*Summary, error) {
		// The last shard's buffers are garbage now: collecting them before
		// the next shard allocates its own keeps the peak memory that of
		// one shard (62 MB instead of 90 to 115 MB for 1.3 GB in 300 MB
		// shards).
		runtime.GC()
		return writeFile(ctx, p.file(spans[i].from, spans[i].to), o, path, false, sharedProgress{pr})
	})
	if err != nil {
		return nil, err
	}
	s.setPacked()
	if err := copySideFiles(ctx, dw, side, o.configDType); err != nil {
		return nil, err
	}
	s.SideFiles, s.SkippedLinks = len(side.files), side.skipped
	for _, f := range side.files {
		if err := f.unchanged(); err != nil {
			return nil, err
		}
	}
	if err := dw.Commit(); err != nil {
		return nil, err
	}
	s.Elapsed = time.Since(o.start)
	return s, nil
}

// checkHeaderLen refuses, before anything is written, an output whose
// header would be above its limit, which no reader opens: tiny tensors
// take more header than data, and each encoded one takes two entries and
// its metadata.
func checkHeaderLen(src string, p *outputPlan) error {
	n, ok := format.CreatedHeaderLen(p.meta, p.tensors, p.reserve)
	if ok && n <= p.limit {
		return nil
	}
	return headerTooLarge(src, n, "")
}

func headerTooLarge(src string, n int, least string) error {
	return &format.Error{Path: src, Err: fmt.Errorf("the output's header would take %s%d bytes, %w of %d bytes: encode fewer tensors, or split the checkpoint", least, n, ErrHeaderTooLarge, format.MaxHeaderSize)}
}

// checkNotInput refuses an output that is one of the input files.
func checkNotInput(dst string, c *format.Checkpoint) error {
	if c.IsInput(dst) {
		return &format.Error{Path: dst, Err: errors.New("is an input of this command; refusing to overwrite it")}
	}
	return nil
}
