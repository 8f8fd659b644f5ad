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
	"sync"
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
// first token's time includes. Each model generates QINS_GEN_TOKENS tokens
// from BOS with the weights resident and, after each token, reads every
// matrix it keeps once (the floor), timed apart: a token and the floor
// beside it see the same load from the machine's other jobs. A token's
// time is the wall time from the end of the previous floor read to the
// token (the first, which includes the load and the prompt, is left out);
// medians count. Metrics per model (m0 = REF, m1 = CAND): s/token,
// floor-s, ratio (s/token over floor-s), GB (the resident bytes), load-s
// (first matrix loaded to last), first-s.
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
			rw := &recording{resident: resident{w}}
			m, err := model.New(cfg, rw)
			if err != nil {
				b.Fatal(err)
			}
			m.Memory = 1 << 62
			// After each token, one read of every resident matrix (the
			// floor), timed apart from the tokens: a token and its floor
			// see the same load from the machine's other jobs.
			var per, floors []float64
			var last time.Time
			var sum uint64
			start := time.Now()
			first := 0.0
			if _, err := m.GenerateEach(ctx, prompt, tokens, func() {
				now := time.Now()
				if last.IsZero() {
					first = now.Sub(start).Seconds()
				} else {
					per = append(per, now.Sub(last).Seconds())
				}
				for _, mat := range rw.mats {
					sum += mat.SumBytes()
				}
				floors = append(floors, time.Since(now).Seconds())
				last = time.Now()
			}); err != nil {
				b.Fatal(err)
			}
			if sum == 1 {
				b.Log(sum) // keeps the sums
			}
			var bytes int64
			for _, mat := range rw.mats {
				bytes += mat.Bytes()
			}
			load := rw.loadEnd.Sub(rw.loadStart).Seconds()
			slices.Sort(per)
			slices.Sort(floors)
			tok, floor := per[len(per)/2], floors[len(floors)/2]
			b.ReportMetric(tok, side+"s/token")
			b.ReportMetric(floor, side+"floor-s")
			b.ReportMetric(tok/floor, side+"ratio")
			b.ReportMetric(float64(bytes)/1e9, side+"GB")
			b.ReportMetric(load, side+"load-s")
			b.ReportMetric(first, side+"first-s")
			b.Logf("%s: %d tokens after %d, first after %.2f s (load %.2f s), then median %.3f s/token (min %.3f, max %.3f); floor median %.3f s (min %.3f, max %.3f) over %.2f GB resident; ratio %.2f",
				p, tokens, len(prompt), first, load, tok, per[0], per[len(per)-1], floor, floors[0], floors[len(floors)-1], float64(bytes)/1e9, tok/floor)
			rw.mats = nil
			w.Close()
			runtime.GC()
			debug.FreeOSMemory()
		}
	}
}

// recording is resident keeping what it loads, and when, for the floor.
type recording struct {
	resident
	mu                 sync.Mutex
	mats               []*matvec.Matrix
	loadStart, loadEnd time.Time
}

func (r *recording) LoadMatrix(ctx context.Context, name string) (model.Matrix, error) {
	r.mu.Lock()
	if r.loadStart.IsZero() {
		r.loadStart = time.Now()
	}
	r.mu.Unlock()
	mat, err := r.resident.LoadMatrix(ctx, name)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mats = append(r.mats, mat.(*matvec.Matrix))
	r.loadEnd = time.Now()
	return mat, nil
}
