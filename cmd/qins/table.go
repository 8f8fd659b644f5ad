package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"
)

// writeTable writes a table as text/tabwriter does with padding 2 and
// every cell ended by a tab: each column as wide as its widest cell (in
// runes) plus two spaces. Unlike tabwriter it holds no row: row(i, cells)
// fills the cells of row i (the header is row -1), and is called twice per
// row, once to measure the columns and once to write them, so that a
// table of a million tensors costs no memory.
func writeTable(w io.Writer, columns, rows int, row func(i int, cells []string)) error {
	cells := make([]string, columns)
	widths := make([]int, columns)
	for i := -1; i < rows; i++ {
		row(i, cells)
		for j, c := range cells {
			widths[j] = max(widths[j], utf8.RuneCountInString(c)+2)
		}
	}
	bw := bufio.NewWriter(w)
	const spaces = "                                                                "
	for i := -1; i < rows; i++ {
		row(i, cells)
		for j, c := range cells {
			bw.WriteString(c)
			for pad := widths[j] - utf8.RuneCountInString(c); pad > 0; pad -= len(spaces) {
				bw.WriteString(spaces[:min(pad, len(spaces))])
			}
		}
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// writeIndented writes v as a json.Encoder with SetIndent("", "  ")
// does, except that the top-level array field, which v holds empty, is
// written element by element from elem(i), i < n: a report of a million
// tensors is never encoded in one piece.
func writeIndented(w io.Writer, v any, field string, n int, elem func(i int) any) error {
	head, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	open := []byte("\n  \"" + field + "\": [")
	k := bytes.Index(head, append(open, ']'))
	if k < 0 {
		return fmt.Errorf("qins: no empty %q in the report", field)
	}
	k += len(open)
	bw := bufio.NewWriter(w)
	bw.Write(head[:k])
	// One encoder and buffer for every element: no garbage per element.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("    ", "  ")
	for i := range n {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		buf.Reset()
		if err := enc.Encode(elem(i)); err != nil {
			return err
		}
		bw.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	}
	if n > 0 {
		bw.WriteString("\n  ")
	}
	bw.Write(head[k:])
	bw.WriteByte('\n')
	return bw.Flush()
}
