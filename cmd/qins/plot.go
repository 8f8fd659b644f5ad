package main

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/qins-dev/qins/format/outfile"

	"github.com/qins-dev/qins/convert/diff"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/qins-dev/qins/format"
)

// layerName splits "model.layers.12.mlp.down_proj.weight" into 12 and
// "mlp.down_proj.weight".
var layerName = regexp.MustCompile(`^(.*?\.)?(?:layers|blocks|h|layer)\.(\d+)\.(.+)$`)

// checkPlotPath refuses a plot path that does not end in .png, the one
// format savePlot writes.
func checkPlotPath(path string) error {
	if !strings.EqualFold(filepath.Ext(path), ".png") {
		return &format.Error{Path: path, Err: errors.New("a plot is a PNG file: name it FILE.png")}
	}
	return nil
}

// savePlot draws the SNR of every tensor that is not an exact match, by
// layer (x) with one marker per kind of tensor, to a PNG file at path.
// Tensors outside the numbered layers stand at the left (embeddings and
// the like) or the right (heads and final norms) of the layers. The file
// is a format.Output: it appears complete or not at all, and replaces an
// existing file only with opts.Force.
func savePlot(r *diff.Report, path string, opts outfile.Options) error {
	if err := checkPlotPath(path); err != nil {
		return err
	}
	p, err := snrPlot(r)
	if err != nil {
		return &format.Error{Path: path, Err: err}
	}
	wt, err := p.WriterTo(10*vg.Inch, 5*vg.Inch, "png")
	if err != nil {
		return &format.Error{Path: path, Err: err}
	}
	o, err := outfile.Create(path, opts)
	if err != nil {
		return err
	}
	if _, err := wt.WriteTo(o); err != nil {
		o.Abort()
		return &format.Error{Path: path, Err: err}
	}
	return o.Commit()
}

// point is a tensor's place in the plot: its layer and its SNR.
type point struct {
	x, snr float64
}

// snrPoints returns the points of the tensors that are not an exact
// match, by kind of tensor, and the last layer (-1 when there is none).
// Tensors outside the layers stand at x = -2 or maxLayer + 2.
func snrPoints(r *diff.Report) (kinds map[string][]point, maxLayer int) {
	kinds = map[string][]point{}
	var outside []diff.Tensor
	maxLayer = -1
	for _, t := range r.Tensors {
		if m := layerName.FindStringSubmatch(t.Name); m != nil {
			if n, err := strconv.Atoi(m[2]); err == nil {
				maxLayer = max(maxLayer, n)
			}
		}
	}
	for _, t := range r.Tensors {
		snr := float64(t.SNRdB)
		if t.Exact || math.IsInf(snr, 0) || math.IsNaN(snr) {
			continue
		}
		if m := layerName.FindStringSubmatch(t.Name); m != nil {
			n, _ := strconv.Atoi(m[2])
			kind := strings.TrimSuffix(m[3], ".weight")
			kinds[kind] = append(kinds[kind], point{float64(n), snr})
			continue
		}
		outside = append(outside, t)
	}
	for _, t := range outside {
		// Before the layers unless the name says it comes after them.
		x := -2.0
		if strings.Contains(t.Name, "head") || strings.Contains(t.Name, "norm") || strings.Contains(t.Name, "out") {
			x = float64(maxLayer + 2)
		}
		kinds[strings.TrimSuffix(t.Name, ".weight")] = append(kinds[strings.TrimSuffix(t.Name, ".weight")], point{x, float64(t.SNRdB)})
	}
	return kinds, maxLayer
}

// snrPlot builds the plot savePlot draws.
func snrPlot(r *diff.Report) (*plot.Plot, error) {
	kinds, maxLayer := snrPoints(r)
	if len(kinds) == 0 {
		return nil, fmt.Errorf("nothing to plot: every tensor matches exactly")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("SNR per tensor: %s vs %s", shortPath(r.A), shortPath(r.B))
	p.X.Label.Text = "layer"
	p.Y.Label.Text = "SNR (dB), higher is better"
	p.Add(plotter.NewGrid())
	names := make([]string, 0, len(kinds))
	lo, hi := math.Inf(1), math.Inf(-1)
	for k, pts := range kinds {
		names = append(names, k)
		for _, pt := range pts {
			lo, hi = math.Min(lo, pt.snr), math.Max(hi, pt.snr)
		}
	}
	// Room below the points for the legend, one line per kind.
	span := math.Max(hi-lo, 1)
	p.Y.Min, p.Y.Max = lo-span*(0.12*float64(len(kinds))+0.1), hi+span*0.05
	sort.Strings(names)
	for i, k := range names {
		pts := make(plotter.XYs, len(kinds[k]))
		for j, pt := range kinds[k] {
			pts[j] = plotter.XY{X: pt.x, Y: pt.snr}
		}
		s, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		s.GlyphStyle.Shape = glyphs[i%len(glyphs)]
		s.GlyphStyle.Color = palette[i%len(palette)]
		s.GlyphStyle.Radius = vg.Points(3)
		p.Add(s)
		p.Legend.Add(k, s)
	}
	p.Legend.Top = false
	p.Legend.Left = true
	if maxLayer >= 0 {
		p.X.Tick.Marker = layerTicks(maxLayer)
		p.X.Min, p.X.Max = -3, float64(maxLayer+3)
	}
	return p, nil
}

// layerTicks labels every fourth layer and the last, and the places of
// the tensors outside the layers.
func layerTicks(maxLayer int) plot.Ticker {
	var ticks []plot.Tick
	for l := 0; l <= maxLayer; l++ {
		label := ""
		if l%4 == 0 || l == maxLayer {
			label = strconv.Itoa(l)
		}
		ticks = append(ticks, plot.Tick{Value: float64(l), Label: label})
	}
	ticks = append(ticks, plot.Tick{Value: -2, Label: "in"}, plot.Tick{Value: float64(maxLayer + 2), Label: "out"})
	return plot.ConstantTicks(ticks)
}

var glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PlusGlyph{},
	draw.CrossGlyph{}, draw.RingGlyph{}, draw.PyramidGlyph{}, draw.BoxGlyph{},
}

var palette = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
	color.RGBA{R: 0xe3, G: 0x77, B: 0xc2, A: 0xff},
	color.RGBA{R: 0x17, G: 0xbe, B: 0xcf, A: 0xff},
}

// shortPath keeps the last two elements of a path, for a title.
func shortPath(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) > 2 {
		parts = parts[len(parts)-2:]
	}
	return strings.Join(parts, "/")
}
