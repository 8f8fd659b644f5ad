package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/qins-dev/qins/convert"
	"github.com/qins-dev/qins/format"
)

// writeInspectJSON writes r as one JSON object.
func writeInspectJSON(w io.Writer, r *convert.Report) error {
	head := *r
	head.Tensors = []convert.TensorReport{}
	return writeIndented(w, &head, "tensors", len(r.Tensors), func(i int) any { return &r.Tensors[i] })
}

// writeInspectText writes r as a table a person reads.
func writeInspectText(w io.Writer, r *convert.Report) error {
	kind := "safetensors"
	if r.QINS {
		kind = "QINS version " + r.Version
	}
	fmt.Fprintf(w, "%s: %s, %d file(s)\n", format.Printable(r.Path), kind, len(r.Files))
	rows, rational := false, false
	for _, t := range r.Tensors {
		rows = rows || t.Span != nil
		rational = rational || t.Alpha != nil
	}
	header := []string{"name", "dtype", "shape", "bytes", "encoded", "log_min", "log_max"}
	if rows {
		header = append(header, "row span min/median/max")
	}
	if rational {
		header = append(header, "alpha")
	}
	err := writeTable(w, len(header), len(r.Tensors), func(i int, cells []string) {
		if i < 0 {
			copy(cells, header)
			return
		}
		t := &r.Tensors[i]
		enc, lo, hi := "no", "-", "-"
		switch {
		case t.Alpha != nil:
			enc = t.Codec
		case t.Encoded:
			enc = "yes"
			if t.Layout != "" {
				enc = t.Layout // i8
			}
			lo, hi = strconv.FormatFloat(*t.LogMin, 'f', 4, 64), strconv.FormatFloat(*t.LogMax, 'f', 4, 64)
		}
		cells[0], cells[1], cells[2], cells[3] = format.Printable(t.Name), t.DType, shapeString(t.Shape), strconv.FormatUint(t.Bytes, 10)
		cells[4], cells[5], cells[6] = enc, lo, hi
		switch {
		case t.Span != nil:
			cells[7] = fmt.Sprintf("%.4f / %.4f / %.4f", t.Span.Min, t.Span.Median, t.Span.Max)
		case rows:
			cells[7] = "-"
		}
		if rational {
			cells[len(cells)-1] = "-"
			switch {
			case t.Alphas != nil:
				cells[len(cells)-1] = fmt.Sprintf("%.4g / %.4g / %.4g per row", t.Alphas.Min, t.Alphas.Median, t.Alphas.Max)
			case t.Alpha != nil:
				cells[len(cells)-1] = strconv.FormatFloat(*t.Alpha, 'g', 6, 64)
			}
		}
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "total: %d tensors (%d encoded), %d elements, %s of tensor data, %s on disk\n",
		r.Total.Tensors, r.Total.Encoded, r.Total.Elements, humanBytes(int64(r.Total.Bytes)), humanBytes(r.Total.FileBytes))
	return err
}

func shapeString(s []uint64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// humanBytes formats n bytes in decimal units (kB, MB, GB).
func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
