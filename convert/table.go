package convert

import (
	"bufio"
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
