// Command manytensors writes a safetensors file with many tiny F32 tensors,
// so that its header, not its data, is large: the input for measuring what
// parsing a header costs in memory and time.
//
//	go run ./scripts/manytensors -n 840000 -o /tmp/many.safetensors
//	go run ./scripts/manytensors -n 840000 -rank 1 -o /tmp/many-r1.safetensors
//	go run ./scripts/manytensors -n 400000 -qins -o /tmp/many.qins.safetensors
//
// Rank-2 tensors ([1,1]) are encoded by a default convert; rank-1 ones are
// copied. With -qins the file is a QINS file (u8+i8), one encoded tensor
// per name.
package main

import (
	"bufio"
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
)

func main() {
	n := flag.Int("n", 840000, "number of tensors")
	rank := flag.Int("rank", 2, "rank of each tensor: 1 ([1]) or 2 ([1,1])")
	qins := flag.Bool("qins", false, "write a QINS file of that many encoded tensors")
	out := flag.String("o", "", "output file")
	flag.Parse()
	if *out == "" || *n < 0 || (*rank != 1 && *rank != 2) {
		flag.Usage()
		os.Exit(2)
	}
	if err := write(*out, *n, *rank, *qins); err != nil {
		fmt.Fprintln(os.Stderr, "manytensors:", err)
		os.Exit(1)
	}
}

// name is the i-th tensor's name, about as long as a real one.
func name(i int) string {
	return fmt.Sprintf("model.layers.%d.block.%d.mlp.down_proj.weight", i/1000, i%1000)
}

func write(path string, n, rank int, qins bool) error {
	shape := "[1,1]"
	if rank == 1 {
		shape = "[1]"
	}
	var h []byte
	h = append(h, '{')
	if qins {
		h = append(h, `"__metadata__":{"qins":"1"`...)
		for i := range n {
			h = append(h, `,"qins:`+name(i)+`":"{\"log_min\":-1.2345678901234567,\"log_max\":-1.2345678901234567,\"dtype\":\"F32\"}"`...)
		}
		h = append(h, '}')
		for i := range n {
			h = append(h, `,"`+name(i)+`.qins":{"dtype":"U8","shape":`+shape+`,"data_offsets":[`...)
			h = strconv.AppendInt(h, int64(2*i), 10)
			h = append(h, ',')
			h = strconv.AppendInt(h, int64(2*i+1), 10)
			h = append(h, `]},"`+name(i)+`.sign":{"dtype":"I8","shape":`+shape+`,"data_offsets":[`...)
			h = strconv.AppendInt(h, int64(2*i+1), 10)
			h = append(h, ',')
			h = strconv.AppendInt(h, int64(2*i+2), 10)
			h = append(h, "]}"...)
		}
	} else {
		for i := range n {
			if i > 0 {
				h = append(h, ',')
			}
			h = append(h, `"`+name(i)+`":{"dtype":"F32","shape":`+shape+`,"data_offsets":[`...)
			h = strconv.AppendInt(h, int64(4*i), 10)
			h = append(h, ',')
			h = strconv.AppendInt(h, int64(4*i+4), 10)
			h = append(h, "]}"...)
		}
	}
	h = append(h, '}')
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(h))))
	w.Write(h)
	var b [4]byte
	for i := range n {
		if qins {
			w.Write([]byte{uint8(1 + i%255), 1}) // a code and sign +1
			continue
		}
		binary.LittleEndian.PutUint32(b[:], math.Float32bits(float32(i%1000+1)/1000))
		w.Write(b[:])
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	fmt.Printf("%s: %d tensors, header %d bytes\n", path, n, len(h))
	return f.Close()
}
