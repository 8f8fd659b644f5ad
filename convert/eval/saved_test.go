package eval

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/qins-dev/qins/convert"
	"github.com/qins-dev/qins/format"
)

// storiesQINS converts stories260K once per test binary into a folder
// (carrying config and tokenizer), with default options.
var storiesQINS = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "saved-ref-test")
	if err != nil {
		return "", err
	}
	q := filepath.Join(dir, "stories.qins")
	_, err = convert.Convert(context.Background(), stories, q, convert.Options{WriteOptions: convert.WriteOptions{Folder: true}})
	return q, err
})

func qinsFolder(t *testing.T) string {
	t.Helper()
	q, err := storiesQINS()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// saveRef runs REF against CAND keeping REF's side, and writes it to a
// file in a temporary folder.
func saveRef(t *testing.T, ref, cand string, opts Options) (*Report, string) {
	t.Helper()
	opts.SaveRef = true
	r, err := Eval(context.Background(), ref, cand, opts)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := r.WriteRef(&b); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ref.bin")
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return r, p
}

// relClose reports whether a and b agree within tol relative to a.
func relClose(a, b, tol float64) bool {
	return a == b || math.Abs(a-b) <= tol*math.Abs(a)
}

// Item 3: a saved REF gives the report of running REF, in each kind of
// stream: the same stream, top-1, REF's perplexity and greedy
// comparison exactly, the KLD within 1e-3 relative (the rounding of the
// log-probabilities outside REF's 32 most likely tokens).
func TestSavedRefSameReport(t *testing.T) {
	q := qinsFolder(t)
	ids, text := expected(t)
	for _, c := range []struct {
		name string
		opts Options
	}{
		{"default greedy stream", Options{}},
		{"default, 40 tokens", Options{Generate: 40}},
		{"tokens and generation", Options{Tokens: ids[:120], Generate: 24}},
		{"tokens without generation", Options{Tokens: ids, Generate: -1}},
		{"text", Options{Text: text, Generate: 16}},
	} {
		t.Run(c.name, func(t *testing.T) {
			live, path := saveRef(t, stories, q, c.opts)
			opts := c.opts
			if c.name == "text" {
				opts = Options{} // the stream options may be left out
			}
			saved, err := Eval(context.Background(), path, q, opts)
			if err != nil {
				t.Fatal(err)
			}
			if saved.SavedRef != path || saved.Ref != live.Ref {
				t.Errorf("saved_ref %q, ref %q; want %q, %q", saved.SavedRef, saved.Ref, path, live.Ref)
			}
			if !relClose(live.KLD.Mean, saved.KLD.Mean, 1e-3) {
				t.Errorf("mean KLD %v from the saved REF, %v live", saved.KLD.Mean, live.KLD.Mean)
			}
			for _, d := range [][2]float64{{live.KLD.Median, saved.KLD.Median}, {live.KLD.P99, saved.KLD.P99}, {live.KLD.Max, saved.KLD.Max}} {
				if !relClose(d[0], d[1], 1e-2) {
					t.Errorf("KLD %+v from the saved REF, %+v live", saved.KLD, live.KLD)
				}
			}
			t.Logf("KLD mean %.9g live, %.9g saved (%.2g relative)", live.KLD.Mean, saved.KLD.Mean, math.Abs(saved.KLD.Mean/live.KLD.Mean-1))
			// Everything else is equal, but for the timings.
			norm := func(r *Report) Report {
				c := *r
				// Memory: the budget is read from the system at each run,
				// and a saved REF is not loaded (checked below).
				c.SavedRef, c.Seconds, c.KLD, c.candArgmax, c.saved, c.savedHeader, c.Memory = "", 0, Dist{}, nil, nil, nil, nil
				if c.Greedy != nil {
					g := *c.Greedy
					g.Seconds = 0
					c.Greedy = &g
				}
				return c
			}
			if a, b := norm(live), norm(saved); !reflect.DeepEqual(a, b) {
				ja, _ := json.Marshal(a)
				jb, _ := json.Marshal(b)
				t.Errorf("live report\n%s\nfrom the saved REF\n%s", ja, jb)
			}
			if saved.Memory == nil || saved.Memory.Ref != nil || !reflect.DeepEqual(saved.Memory.Cand, live.Memory.Cand) {
				t.Errorf("memory %+v from the saved REF (no REF, CAND as live), %+v live", saved.Memory, live.Memory)
			}
			if live.Greedy != nil && (saved.Greedy.RefText == nil || saved.Greedy.CandText == nil) {
				t.Errorf("no texts from the saved REF: %+v", saved.Greedy)
			}
		})
	}
}

// The saved file is written the same way twice (no map order, no time
// in it), and a run from a saved file cannot save again.
func TestSavedRefDeterministic(t *testing.T) {
	q := qinsFolder(t)
	opts := Options{Tokens: []int{1, 403, 407, 261, 300, 290}, Generate: 3}
	_, p1 := saveRef(t, stories, q, opts)
	_, p2 := saveRef(t, stories, q, opts)
	a, _ := os.ReadFile(p1)
	b, _ := os.ReadFile(p2)
	if !bytes.Equal(a, b) {
		t.Error("two saves of one evaluation differ")
	}
	if !IsSavedRef(p1) || IsSavedRef(stories) || IsSavedRef(filepath.Join(stories, "model.safetensors")) {
		t.Error("IsSavedRef")
	}
	opts.SaveRef = true
	if _, err := Eval(context.Background(), p1, q, opts); err == nil || !strings.Contains(err.Error(), "saved REF already") {
		t.Errorf("saving from a saved REF: %v", err)
	}
	r, err := Eval(context.Background(), p1, q, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteRef(&bytes.Buffer{}); !errors.Is(err, ErrNoSavedRef) {
		t.Errorf("WriteRef of a report from a saved REF: %v", err)
	}
}

// A candidate that is not REF's model, or options that are not those the
// REF was saved with, are refused with one line naming the file; a
// tokenizer beside CAND that is not REF's gives ids only.
func TestSavedRefRefuses(t *testing.T) {
	ctx := context.Background()
	q := qinsFolder(t)
	ids, text := expected(t)
	_, path := saveRef(t, stories, q, Options{Tokens: ids[:40], Generate: 8})
	_, textPath := saveRef(t, stories, q, Options{Text: text[:200], Generate: -1})

	dir := t.TempDir()
	other := storiesDir(t, filepath.Join(dir, "other"), map[string]any{"architectures": []string{"MistralForCausalLM"}, "vocab_size": 600})
	extra := storiesDir(t, filepath.Join(dir, "extra"), nil, "model.extra.weight")
	for _, c := range []struct {
		name string
		ref  string
		cand string
		opts Options
		as   any
		says []string
	}{
		{"other model", path, tiny, Options{}, new(*InputError), []string{path, "vocab_size 128", "cannot be compared"}},
		{"extra tensor", path, extra, Options{}, new(*MismatchError), []string{path, "does not have the tensors of", "model.extra.weight"}},
		{"other vocab", path, other, Options{}, new(*InputError), []string{"vocab_size 600", "cannot be compared"}},
		{"other tokens", path, q, Options{Tokens: ids[:41]}, new(*InputError), []string{path, "another stream"}},
		{"text for tokens", path, q, Options{Text: "Once"}, new(*InputError), []string{"another stream"}},
		{"other text", textPath, q, Options{Text: text[:201]}, new(*InputError), []string{textPath, "another stream"}},
		{"other generate", path, q, Options{Generate: 9}, new(*InputError), []string{"generation 8, not 9"}},
		{"no generation asked", textPath, q, Options{Generate: 4}, new(*InputError), []string{"no generation"}},
		{"config given", path, q, Options{Config: filepath.Join(stories, "config.json")}, new(*InputError), []string{"give no other"}},
		{"missing", filepath.Join(dir, "none"), q, Options{}, new(*InputError), []string{"none"}},
		{"saved REF as CAND", stories, path, Options{}, new(*InputError), []string{path, "is a saved REF, not a checkpoint"}},
		{"saved REF as both", path, path, Options{}, new(*InputError), []string{path, "is a saved REF, not a checkpoint"}},
	} {
		_, err := Eval(ctx, c.ref, c.cand, c.opts)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if !errors.As(err, c.as) {
			t.Errorf("%s: %v (%T) is not %T", c.name, err, err, c.as)
		}
		for _, s := range c.says {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: %q does not say %q", c.name, err, s)
			}
		}
		oneLine(t, c.name, err)
	}

	// Another tokenizer beside CAND: the generations as ids, and why.
	cand := filepath.Join(dir, "cand")
	os.Mkdir(cand, 0o755)
	for _, name := range []string{"model.qins.safetensors", "config.json", "tokenizer.model"} {
		b, err := os.ReadFile(filepath.Join(q, name))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(cand, name), b, 0o644)
	}
	r, err := Eval(ctx, path, cand, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if g := r.Greedy; g.RefText != nil || !strings.Contains(g.TextError, "not the one") {
		t.Errorf("another tokenizer beside CAND: text %v, error %q", g.RefText, g.TextError)
	}
}

// TestSavedRefFIFO checks that a FIFO given as REF is refused at once, as
// any checkpoint that is not a regular file is: recognising a saved REF
// must not open it for reading, which waits for a writer.
func TestSavedRefFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pipe.ref")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := Eval(context.Background(), p, stories, Options{})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), p+": is a FIFO, not a regular file") {
			t.Errorf("FIFO as REF: %v", err)
		}
	case <-time.After(time.Minute):
		// Unblock the open so the goroutine ends with the test.
		if f, err := os.OpenFile(p, os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		t.Fatal("FIFO as REF: still waiting on it after a minute")
	}
}

// savedSeed is the committed saved REF the hostile tests and the fuzz
// target start from: stories260K over 6 tokens, 3 generated.
const savedSeed = "../../testdata/fuzz/stories260K.qinsref"

// TestSavedRefSeed checks that the committed saved REF still reads, so
// that a change of the format shows up as a version change.
func TestSavedRefSeed(t *testing.T) {
	if os.Getenv("QINS_WRITE_SEED") != "" {
		// QINS_WRITE_SEED=1 go test -run TestSavedRefSeed rewrites it.
		r, err := Eval(context.Background(), stories, stories, Options{Tokens: []int{1, 403, 407, 261, 300, 290}, Generate: 3, SaveRef: true})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		r.WriteRef(&b)
		os.WriteFile(savedSeed, b.Bytes(), 0o644)
	}
	r, err := Eval(context.Background(), savedSeed, qinsFolder(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Positions != 5 || len(r.Greedy.RefIDs) != 3 || r.Greedy.RefText == nil {
		t.Errorf("report from the seed: %+v %+v", r, r.Greedy)
	}
}

// editSaved rewrites the JSON header of a saved REF with f.
func editSaved(t *testing.T, b []byte, f func(h map[string]any)) []byte {
	t.Helper()
	n := binary.LittleEndian.Uint64(b[12:])
	var h map[string]any
	if err := json.Unmarshal(b[20:20+n], &h); err != nil {
		t.Fatal(err)
	}
	f(h)
	js, _ := json.Marshal(h)
	out := append(append([]byte(nil), b[:12]...), binary.LittleEndian.AppendUint64(nil, uint64(len(js)))...)
	return append(append(out, js...), b[20+n:]...)
}

// A hostile or damaged saved REF gives one line naming the file, never a
// panic or a report.
func TestSavedRefHostile(t *testing.T) {
	seed, err := os.ReadFile(savedSeed)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(seed[12:])
	rows := int(20 + n)
	row := rowBytes(512, 32)
	set := func(k string, v any) []byte {
		return editSaved(t, seed, func(h map[string]any) { h[k] = v })
	}
	patch := func(off int, p []byte) []byte {
		b := append([]byte(nil), seed...)
		copy(b[off:], p)
		return b
	}
	nan := binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.NaN()))
	for _, c := range []struct {
		name string
		b    []byte
		says string
	}{
		{"empty", nil, "too short"},
		{"magic", patch(0, []byte("QINSREG")), ""}, // then not recognised as one
		{"version", patch(8, []byte{3}), "version 3"},
		{"header length", patch(12, binary.LittleEndian.AppendUint64(nil, 1<<40)), "header of"},
		{"header cut", seed[:rows-1], "header"},
		{"row cut", seed[:len(seed)-1], "bytes of rows"},
		{"extra byte", append(append([]byte(nil), seed...), 0), "bytes of rows"},
		{"unknown field", set("extra", 1), "unknown field"},
		{"id outside vocab", set("ids", []int{1, 512, 3, 4, 5, 6}), "ids[1] is 512"},
		{"negative argmax", set("argmax", []int{-1, 2, 3, 4, 5}), "argmax[0] is -1"},
		{"argmax count", set("argmax", []int{1}), "argmax"},
		{"positive log-probability", set("target_logprob", []float64{0.5, -1, -1, -1, -1}), "target_logprob[0]"},
		{"vocab", set("vocab", 100000000), "vocab 100000000"},
		{"vocab against config", set("vocab", 500), "vocab_size is 512"},
		{"top_k", set("top_k", 0), "top_k 0"},
		{"config", set("config", "{"), "config"},
		{"source", set("source", "dreams"), "source"},
		{"source with an escape", set("source", "x\x1b[2J"), `source "x\x1b[2J": want`},
		{"architecture with an escape", set("architecture", "X\x1b[31m"), `architecture "X\x1b[31m", but the config's is "LlamaForCausalLM"`},
		{"prompt", set("prompt", nil), "prompt"},
		{"hash", set("text_sha256", "xyz"), "SHA-256"},
		{"tensor shape", set("tensors", []any{map[string]any{"name": "a", "shape": []int{-1}}}), "shape"},
		{"no tensors", set("tensors", []any{}), "0 tensors"},
		{"NaN range", patch(rows+row, nan), "row 1"},
		{"top token outside vocab", patch(rows+16, []byte{0, 2, 0, 0}), "token 512"},
		{"top log-probability", patch(rows+20, nan), "row 0"},
	} {
		p := filepath.Join(t.TempDir(), "ref.bin")
		os.WriteFile(p, c.b, 0o644)
		_, err := Eval(context.Background(), p, stories, Options{})
		var ie *InputError
		var fe *format.Error
		switch {
		case err == nil:
			t.Errorf("%s: no error", c.name)
		case len(c.b) >= 8 && !errors.As(err, &ie):
			t.Errorf("%s: %v (%T) is not an *InputError", c.name, err, err)
		case len(c.b) >= 8 && (!errors.As(err, &fe) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), c.says)):
			t.Errorf("%s: %q does not name %s and say %q", c.name, err, p, c.says)
		}
		if err != nil {
			oneLine(t, c.name, err)
		}
	}
}

// FuzzReadSaved checks that any file either fails to read as a saved REF
// or gives rows that decode to log-probabilities a report can use.
func FuzzReadSaved(f *testing.F) {
	seed, err := os.ReadFile(savedSeed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(seed[:len(seed)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := readSaved(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error of more than one line: %q", err)
			}
			return
		}
		h := &s.h
		lp := make([]float64, h.Vocab)
		for pos := range len(h.IDs) - 1 {
			top, ok, err := s.row(pos, lp)
			if err != nil || !ok || top < 0 || top >= h.Vocab {
				t.Fatalf("row %d: top %d, %v %v after a clean read", pos, top, ok, err)
			}
			for i, v := range lp {
				if !(v <= 1e-9) || math.IsInf(v, -1) {
					t.Fatalf("row %d: log-probability %d is %v", pos, i, v)
				}
			}
		}
	})
}

// REF alone (no candidate) saves the same file as REF against a
// candidate: what is saved is REF's only.
func TestSavedRefAlone(t *testing.T) {
	q := qinsFolder(t)
	ids, text := expected(t)
	for _, opts := range []Options{{Generate: 24}, {Text: text[:300], Generate: 8}, {Tokens: ids[:50], Generate: -1}} {
		_, withCand := saveRef(t, stories, q, opts)
		r, alone := saveRef(t, stories, "", opts)
		a, _ := os.ReadFile(withCand)
		b, _ := os.ReadFile(alone)
		if !bytes.Equal(a, b) {
			t.Errorf("%+v: REF alone saves another file than REF against CAND", opts)
		}
		if r.Cand != "" || !math.IsNaN(r.KLD.Mean) || !(r.PPL.Ref > 1) || (r.Greedy != nil && (r.Greedy.CandIDs != nil || r.Greedy.CandText != nil)) {
			t.Errorf("REF alone: %+v %+v", r, r.Greedy)
		}
		if err := r.WriteJSON(&bytes.Buffer{}); err != nil {
			t.Error(err)
		}
	}
	if _, err := Eval(context.Background(), stories, "", Options{}); err == nil {
		t.Error("no candidate and no SaveRef: no error")
	}
	if _, err := Eval(context.Background(), stories, "", Options{SaveRef: true, MaxKLD: fptr(1)}); err == nil {
		t.Error("no candidate and a threshold: no error")
	}
}

// Version 2 ends with a CRC-32C of the rest: a byte changed anywhere is
// refused, one line naming the file (as damaged, past the header); the
// same file as version 1 (no checksum) reads to the same report.
func TestSavedRefChecksum(t *testing.T) {
	cand := qinsFolder(t)
	_, p := saveRef(t, stories, cand, Options{Tokens: []int{1, 403, 407, 261, 300, 290}})
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if v := binary.LittleEndian.Uint32(b[8:]); v != SavedRefVersion || SavedRefVersion != 2 {
		t.Fatalf("wrote version %d", v)
	}
	want, err := Eval(context.Background(), p, cand, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := int(binary.LittleEndian.Uint64(b[12:]))
	r := rand.New(rand.NewPCG(1, 2))
	for k := range 40 {
		off := 20 + n + r.IntN(len(b)-20-n) // a row's byte, or the checksum's
		if k == 0 {
			off = len(b) - 1
		}
		d := append([]byte(nil), b...)
		d[off] ^= byte(1 + r.IntN(255))
		q := filepath.Join(t.TempDir(), "damaged.ref")
		os.WriteFile(q, d, 0o644)
		_, err := Eval(context.Background(), q, cand, Options{})
		if err == nil || !strings.Contains(err.Error(), q) || !strings.Contains(err.Error(), "damaged") {
			t.Fatalf("byte %d changed: %v", off, err)
		}
		oneLine(t, "damaged", err)
	}
	v1 := append([]byte(nil), b[:len(b)-4]...)
	binary.LittleEndian.PutUint32(v1[8:], 1)
	q := filepath.Join(t.TempDir(), "v1.ref")
	os.WriteFile(q, v1, 0o644)
	got, err := Eval(context.Background(), q, cand, Options{})
	if err != nil {
		t.Fatalf("version 1: %v", err)
	}
	if got.KLD != want.KLD || got.Top1 != want.Top1 || got.Positions != want.Positions {
		t.Errorf("version 1 reads to KLD %+v top-1 %v, version 2 to %+v %v", got.KLD, got.Top1, want.KLD, want.Top1)
	}
}
