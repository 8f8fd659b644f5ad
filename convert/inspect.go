package convert

import (
	"context"
	"sort"

	"github.com/qins-dev/qins/format"
	"github.com/qins-dev/qins/format/qins"
	"github.com/qins-dev/qins/quant"
)

// Report describes a safetensors file or checkpoint, QINS or not.
type Report struct {
	Path     string            `json:"path"`
	Files    []string          `json:"files"`
	QINS     bool              `json:"qins"`
	Version  string            `json:"qins_version,omitempty"`
	Metadata map[string]string `json:"metadata"` // without the qins entries
	Tensors  []TensorReport    `json:"tensors"`
	Total    ReportTotal       `json:"total"`
}

// TensorReport describes one tensor as the source model had it.
type TensorReport struct {
	Name     string   `json:"name"`
	DType    string   `json:"dtype"` // the source dtype
	Shape    []uint64 `json:"shape"`
	Elements uint64   `json:"elements"`
	Bytes    uint64   `json:"bytes"` // stored: codes and signs when encoded
	Encoded  bool     `json:"encoded"`
	// Codec is "rational" for the rational codec, whose parameter is
	// Alpha (it has no LogMin and LogMax).
	Codec string   `json:"codec,omitempty"`
	Alpha *float64 `json:"alpha,omitempty"`
	// Layout is "i8" for the log codec's i8 layout, one I8 per weight
	// (empty for the others, which decode alike).
	Layout string   `json:"layout,omitempty"`
	LogMin *float64 `json:"log_min,omitempty"`
	LogMax *float64 `json:"log_max,omitempty"`
	// Granularity is "row" for per-row ranges, whose envelope LogMin and
	// LogMax then give, or per-row alphas, whose smallest Alpha gives;
	// Rows and Span (or Alphas) describe the rows' ranges (or alphas).
	Granularity string `json:"granularity,omitempty"`
	Rows        int64  `json:"rows,omitempty"`
	// Span summarises log_max - log_min over the rows.
	Span *SpanSummary `json:"span,omitempty"`
	// Alphas summarises the rows' alphas of a rational tensor with one
	// alpha per row.
	Alphas *SpanSummary `json:"alphas,omitempty"`
}

// SpanSummary is the smallest, median and largest span log_max - log_min
// of a per-row tensor's rows, or alpha of a rational one's (the median of
// an even count is the mean of the middle two).
type SpanSummary struct {
	Min    float64 `json:"min"`
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

// ReportTotal sums a Report.
type ReportTotal struct {
	Tensors   int    `json:"tensors"`
	Encoded   int    `json:"encoded"`
	Elements  uint64 `json:"elements"`
	Bytes     uint64 `json:"bytes"` // tensor data stored
	FileBytes int64  `json:"file_bytes"`
}

// openModel opens the checkpoint at path with its tensors as the source
// model had them (see qins.Open). The caller closes the checkpoint.
func openModel(ctx context.Context, path string) (*format.Checkpoint, []qins.Logical, error) {
	r, err := qins.Open(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	return r.Checkpoint, r.Tensors, nil
}

// Inspect describes the file, folder or index at path. It stops with
// ctx's error when ctx is cancelled.
func Inspect(ctx context.Context, path string) (*Report, error) {
	c, ls, err := openModel(ctx, path)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &Report{Path: c.Path, QINS: qins.IsQINS(c.Metadata), Metadata: map[string]string{}}
	for _, f := range c.Files {
		r.Files = append(r.Files, f.Path)
	}
	for k, v := range c.Metadata {
		switch {
		case k == qins.VersionKey:
			r.Version = v
		case !qins.IsQINSKey(k):
			r.Metadata[k] = v
		}
	}
	r.Tensors = make([]TensorReport, 0, len(ls))
	for i := range ls {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		l := &ls[i]
		t := TensorReport{Name: l.Name, DType: l.DType.String(), Shape: l.Shape, Elements: l.Elements(), Encoded: l.Encoded()}
		if t.Shape == nil {
			t.Shape = []uint64{}
		}
		if l.Encoded() {
			t.Bytes = l.StoredBytes()
			r.Total.Encoded++
			if l.Codec == qins.CodecRational {
				a := l.Alpha
				t.Codec, t.Alpha = l.Codec.String(), &a
				if l.Ranges != nil {
					t.Granularity, t.Rows = qins.GranularityRow.String(), qins.Rows(l.Shape)
					if t.Alphas, err = alphaSpans(l); err != nil {
						return nil, err
					}
				}
				r.Tensors = append(r.Tensors, t)
				r.Total.Tensors++
				r.Total.Elements += t.Elements
				r.Total.Bytes += t.Bytes
				continue
			}
			lo, hi := l.Params.LogMin, l.Params.LogMax
			t.LogMin, t.LogMax = &lo, &hi
			if l.Layout == qins.LayoutI8 {
				t.Layout = l.Layout.String()
			}
			if l.Ranges != nil {
				t.Granularity, t.Rows = qins.GranularityRow.String(), qins.Rows(l.Shape)
				if t.Span, err = spans(l); err != nil {
					return nil, err
				}
			}
		} else {
			t.Bytes = l.Plain.Bytes()
		}
		r.Tensors = append(r.Tensors, t)
		r.Total.Tensors++
		r.Total.Elements += t.Elements
		r.Total.Bytes += t.Bytes
	}
	r.Total.FileBytes = c.Size()
	return r, nil
}

// spans reads and checks the rows' ranges of a per-row tensor and
// summarises their spans.
func spans(l *qins.Logical) (*SpanSummary, error) {
	n := qins.Rows(l.Shape)
	if n == 0 {
		return nil, nil
	}
	all := make([]float64, 0, n)
	ps := make([]quant.Params, min(n, 1<<16))
	var raw []byte
	for r := int64(0); r < n; r += int64(len(ps)) {
		part := ps[:min(int64(len(ps)), n-r)]
		if err := l.RowRanges(r, part, &raw); err != nil {
			return nil, err
		}
		for _, p := range part {
			all = append(all, p.LogMax-p.LogMin)
		}
	}
	return summarise(all), nil
}

// alphaSpans reads and checks the rows' alphas of a rational tensor with
// one alpha per row and summarises them.
func alphaSpans(l *qins.Logical) (*SpanSummary, error) {
	n := qins.Rows(l.Shape)
	if n == 0 {
		return nil, nil
	}
	all := make([]float64, n)
	var raw []byte
	for r := int64(0); r < n; r += 1 << 16 {
		if err := l.RowAlphas(r, all[r:min(n, r+1<<16)], &raw); err != nil {
			return nil, err
		}
	}
	return summarise(all), nil
}

// summarise returns the smallest, median and largest of all, which it
// sorts.
func summarise(all []float64) *SpanSummary {
	n := len(all)
	sort.Float64s(all)
	med := all[n/2]
	if n%2 == 0 {
		med = (all[n/2-1] + all[n/2]) / 2
	}
	return &SpanSummary{Min: all[0], Median: med, Max: all[n-1]}
}
