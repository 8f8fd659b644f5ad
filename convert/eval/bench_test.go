package eval

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qins-dev/qins/convert/eval/internal/matvec"
	"github.com/qins-dev/qins/convert/eval/internal/model"
)

// BenchmarkGenerate measures greedy generation with the weights resident,
// per token and per model, beside its floor measured in the same run: one
// read of the resident weights from memory (matvec's SumBytes over every
// matrix: the bytes each token's products read, with no arithmetic).
//
//	QINS_GEN_BENCH="REF CAND" [QINS_GEN_TOKENS=16] [QINS_GEN_PROMPT=1] go test ./convert/eval -run - -bench Generate -benchtime 1x
//
// config.json is read beside REF. The prompt is BOS, or with
// QINS_GEN_PROMPT=N, BOS and ids 100, 101, ... (N tokens in all), which the
// first token's time includes. Each model loads its matrices, takes the
// floor three times (the median counts), frees them, then generates
// QINS_GEN_TOKENS tokens from BOS with the weights resident; a token's
// time is the wall time between two tokens (the first, which includes the
// load and the prompt, is left out); the median counts. Metrics per model
// (m0 = REF, m1 = CAND): s/token, floor-s, ratio (s/token over floor-s),
// GB (the resident bytes), load-s.
func BenchmarkGenerate(b *testing.B) {
	paths := strings.Fields(os.Getenv("QINS_GEN_BENCH"))
	if len(paths) == 0 {
		b.Skip(`set QINS_GEN_BENCH="REF [CAND...]" to checkpoints of one model (scripts/bench-gen does)`)
	}
	tokens := 16
	if s := os.Getenv("QINS_GEN_TOKENS"); s != "" {
		var err error
		if tokens, err = strconv.Atoi(s); err != nil || tokens < 2 {
			b.Fatalf("QINS_GEN_TOKENS=%q: want a count >= 2", s)
		}
	}
	prompt := []int{1}
	if s := os.Getenv("QINS_GEN_PROMPT"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("QINS_GEN_PROMPT=%q: want a count >= 1", s)
		}
		for i := 1; i < n; i++ {
			prompt = append(prompt, 99+i)
		}
	}
	ctx := context.Background()
	w0, err := OpenWeights(ctx, paths[0])
	if err != nil {
		b.Fatal(err)
	}
	cfg, err := readConfig(filepath.Join(filepath.Dir(w0.Path()), "config.json"), false)
	w0.Close()
	if err != nil {
		b.Fatal(err)
	}
	prompt[0] = max(cfg.BOS, 0)
	for b.Loop() {
		for i, p := range paths {
			side := "m" + strconv.Itoa(i) + "-"
			w, err := OpenWeights(ctx, p)
			if err != nil {
				b.Fatal(err)
			}
			rw := resident{w}
			m, err := model.New(cfg, rw)
			if err != nil {
				b.Fatal(err)
			}
			floor, load, bytes := floorPass(b, ctx, rw)
			m.Memory = 1 << 62
			var stamps []time.Time
			start := time.Now()
			if _, err := m.GenerateEach(ctx, prompt, tokens, func() { stamps = append(stamps, time.Now()) }); err != nil {
				b.Fatal(err)
			}
			var per []float64
			for k := 1; k < len(stamps); k++ {
				per = append(per, stamps[k].Sub(stamps[k-1]).Seconds())
			}
			slices.Sort(per)
			tok := per[len(per)/2]
			b.ReportMetric(tok, side+"s/token")
			b.ReportMetric(floor, side+"floor-s")
			b.ReportMetric(tok/floor, side+"ratio")
			b.ReportMetric(float64(bytes)/1e9, side+"GB")
			b.ReportMetric(load, side+"load-s")
			b.ReportMetric(stamps[0].Sub(start).Seconds(), side+"first-s")
			b.Logf("%s: %d tokens after %d, first after %.2f s, then median %.3f s/token (min %.3f, max %.3f); floor %.3f s over %.2f GB resident; ratio %.2f",
				p, tokens, len(prompt), stamps[0].Sub(start).Seconds(), tok, per[0], per[len(per)-1], floor, float64(bytes)/1e9, tok/floor)
			w.Close()
			runtime.GC()
			debug.FreeOSMemory()
		}
	}
}

// floorPass loads every 2-D tensor of rw as generation does, times three
// reads of all of them (SumBytes), frees them, and returns the median
// read's seconds, the load's, and their bytes.
func floorPass(b *testing.B, ctx context.Context, rw resident) (floor, load float64, bytes int64) {
	t0 := time.Now()
	var ms []*matvec.Matrix
	for _, name := range rw.Names() {
		if s, _ := rw.Shape(name); len(s) != 2 {
			continue
		}
		mat, err := rw.LoadMatrix(ctx, name)
		if err != nil {
			b.Fatal(err)
		}
		ms = append(ms, mat.(*matvec.Matrix))
		bytes += mat.Bytes()
	}
	load = time.Since(t0).Seconds()
	var runs []float64
	var sum uint64
	for range 3 {
		t := time.Now()
		for _, m := range ms {
			sum += m.SumBytes()
		}
		runs = append(runs, time.Since(t).Seconds())
	}
	slices.Sort(runs)
	if sum == 1 {
		b.Log(sum) // keeps the sums
	}
	ms = nil
	runtime.GC()
	debug.FreeOSMemory()
	return runs[1], load, bytes
}
