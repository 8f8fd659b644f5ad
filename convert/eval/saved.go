package eval

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/qins-dev/qins/convert/eval/internal/model"
	"github.com/qins-dev/qins/convert/eval/internal/tokenizer"
	"github.com/qins-dev/qins/format"
)

// A saved REF (`qins eval REF CAND --save-ref FILE`) is REF's side of an
// evaluation, from which Eval compares a candidate without REF:
//
//	8 bytes   magic "QINSREF\x00"
//	4 bytes   version, little-endian uint32: SavedRefVersion
//	8 bytes   header length N, little-endian uint64
//	N bytes   header, a JSON object (savedHeader)
//	rows      one per compared position t (predicting ids[t+1]), each
//	          float64 lo, float64 step, TopK × (uint32 id, float64 log-p),
//	          vocab × uint16 q
//	4 bytes   (version 2) CRC-32C (Castagnoli) of every byte before it,
//	          little-endian
//
// and nothing after. Version 1, without the checksum, still reads; a
// damaged version 2 file is refused whichever byte changed. Each row holds REF's natural-log probabilities:
// those of its TopK most likely tokens exactly (float64), every other
// token's as lo + q·step, q rounded to the nearest of 65536 levels
// spanning that row's range, so at most step/2 off (step is about 5e-4
// nats when the rest spans 30 nats). The header keeps the stream, REF's
// most likely token and the log-probability of the stream's next token at
// each position exactly, so top-1 agreement and REF's perplexity are the
// live ones bit for bit; only the KL divergence sees the rounding of the
// rest, weighted by their probabilities.
//
// All numbers are little-endian.

// SavedRefVersion is the version of the saved-REF files this package
// writes; it reads it and version 1.
const SavedRefVersion = 2

// savedCRC is the checksum table of version 2.
var savedCRC = crc32.MakeTable(crc32.Castagnoli)

// SavedRefTopK is how many of REF's most likely tokens a row keeps
// exactly.
const SavedRefTopK = 32

// savedMagic starts a saved-REF file. Read as a safetensors header length
// it is far past any file's size, so no checkpoint starts with it.
var savedMagic = [8]byte{'Q', 'I', 'N', 'S', 'R', 'E', 'F', 0}

const (
	savedPrefix = 20 // magic, version, header length
	// maxSavedHeader bounds the JSON header: REF's config.json (at most
	// MaxConfigBytes), the tensor list and about 40 bytes per position.
	maxSavedHeader = 64 << 20
	// maxSavedVocab bounds the vocabulary of a saved REF, as a sanity
	// limit well past real ones (262,144 for Gemma 3).
	maxSavedVocab = 1 << 24
	// maxSavedTensors bounds REF's tensor list.
	maxSavedTensors = 1 << 20
)

// savedHeader is the JSON header of a saved REF.
type savedHeader struct {
	// Ref is REF's path as it was given, for the report.
	Ref          string `json:"ref"`
	Architecture string `json:"architecture"`
	// Config is the text of the config.json REF ran with, and
	// ConfigPath where it was read; CAND runs with it unless its own
	// folder has a config.json of another architecture, as with REF.
	Config     string `json:"config"`
	ConfigPath string `json:"config_path"`
	// Tensors are REF's tensor names and shapes, which CAND must have.
	Tensors []savedTensor `json:"tensors"`
	Vocab   int           `json:"vocab"`
	// Source, IDs and TextSHA256 (the SHA-256 of the text, in hex, when
	// Source is "text") describe the stream.
	Source     string `json:"source"`
	IDs        []int  `json:"ids"`
	TextSHA256 string `json:"text_sha256,omitempty"`
	// Generate is Options.Generate as it was asked for: 0 for the
	// default, -1 for no greedy comparison.
	Generate    int          `json:"generate"`
	GenerateCut *GenerateCut `json:"generate_cut,omitempty"`
	// Prompt and RefIDs are REF's greedy generation; nil when none.
	Prompt []int `json:"prompt"`
	RefIDs []int `json:"ref_ids"`
	// Tokenizer is the SHA-256 of the tokenizer REF's texts were decoded
	// with (tokenizer file and tokenizer_config.json); empty when none
	// was used.
	Tokenizer string `json:"tokenizer_sha256,omitempty"`
	TopK      int    `json:"top_k"`
	// Argmax and Target are, at each position, REF's most likely token
	// and its log-probability of the stream's next token.
	Argmax []int     `json:"argmax"`
	Target []float64 `json:"target_logprob"`
}

// savedTensor is a tensor of REF's: its name and shape.
type savedTensor struct {
	Name  string `json:"name"`
	Shape []int  `json:"shape"`
}

// savedRows collects REF's rows during a live teacher-forced pass, for
// Report.WriteRef.
type savedRows struct {
	vocab, k int
	rows     []byte
	argmax   []int
	target   []float64
	top      []int  // scratch: indices of the k largest
	exact    []bool // scratch: which tokens are among them
}

func newSavedRows(vocab, positions int) *savedRows {
	k := min(SavedRefTopK, vocab)
	return &savedRows{vocab: vocab, k: k, rows: make([]byte, 0, positions*rowBytes(vocab, k))}
}

// rowBytes is the size of one row.
func rowBytes(vocab, k int) int { return 16 + 12*k + 2*vocab }

// add quantises one row of REF's log-probabilities lp, whose most likely
// token is top and whose log-probability of the next token is target.
func (s *savedRows) add(lp []float64, top int, target float64) {
	s.argmax = append(s.argmax, top)
	s.target = append(s.target, target)
	idx := topK(lp, s.k, s.top[:0])
	s.top = idx
	if s.exact == nil {
		s.exact = make([]bool, len(lp))
	}
	exact := s.exact
	for _, i := range idx {
		exact[i] = true
	}
	defer func() {
		for _, i := range idx {
			exact[i] = false
		}
	}()
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, v := range lp {
		if !exact[i] {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	step := 0.0
	if hi > lo {
		step = (hi - lo) / 65535
	}
	if math.IsInf(lo, 1) { // every token is kept exactly
		lo = 0
	}
	b := binary.LittleEndian.AppendUint64(s.rows, math.Float64bits(lo))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(step))
	for _, i := range idx {
		b = binary.LittleEndian.AppendUint32(b, uint32(i))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(lp[i]))
	}
	for i, v := range lp {
		var q uint16
		if !exact[i] && step > 0 {
			q = uint16(min(65535, max(0, math.Round((v-lo)/step))))
		}
		b = binary.LittleEndian.AppendUint16(b, q)
	}
	s.rows = b
}

// topK returns the indices of the k largest values of x, largest first,
// the lower index first on a tie, in dst's storage.
func topK(x []float64, k int, dst []int) []int {
	dst = dst[:0]
	for i, v := range x {
		if len(dst) == k && v <= x[dst[k-1]] {
			continue
		}
		if len(dst) < k {
			dst = append(dst, i)
		} else {
			dst[k-1] = i
		}
		for j := len(dst) - 1; j > 0 && x[dst[j]] > x[dst[j-1]]; j-- {
			dst[j], dst[j-1] = dst[j-1], dst[j]
		}
	}
	return dst
}

// ErrNoSavedRef is returned by Report.WriteRef for a report whose REF side
// was not kept (Options.SaveRef) or came from a saved file.
var ErrNoSavedRef = errors.New("eval: the report does not hold REF's side: run with Options.SaveRef")

// WriteRef writes REF's side of the evaluation, kept with
// Options.SaveRef, as a saved-REF file that Eval takes in place of REF.
func (r *Report) WriteRef(w io.Writer) error {
	if r.saved == nil {
		return ErrNoSavedRef
	}
	h := *r.savedHeader
	h.Argmax, h.Target, h.TopK = r.saved.argmax, r.saved.target, r.saved.k
	if g := r.Greedy; g != nil {
		h.Prompt, h.RefIDs = g.Prompt, g.RefIDs
	}
	js, err := json.Marshal(&h)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	sum := crc32.New(savedCRC)
	mw := io.MultiWriter(bw, sum)
	mw.Write(savedMagic[:])
	mw.Write(binary.LittleEndian.AppendUint32(nil, SavedRefVersion))
	mw.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(js))))
	mw.Write(js)
	mw.Write(r.saved.rows)
	bw.Write(binary.LittleEndian.AppendUint32(nil, sum.Sum32()))
	return bw.Flush()
}

// IsSavedRef reports whether the file at path starts as a saved REF does.
func IsSavedRef(path string) bool {
	// OpenInput, not os.Open: opening a FIFO to read blocks until a writer
	// comes, and the refusal belongs to the checkpoint's reader.
	f, err := format.OpenInput(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var m [8]byte
	_, err = io.ReadFull(f, m[:])
	return err == nil && m == savedMagic
}

// savedRef is an open saved-REF file, its header checked.
type savedRef struct {
	path    string
	f       io.ReaderAt
	h       savedHeader
	cfg     *model.Config
	data    int64 // offset of the first row
	rowSize int   // bytes per row
	buf     []byte
}

// readSaved checks a saved REF read from r, of size bytes, named path:
// its header, and every row. Its errors are *format.Error naming path.
func readSaved(r io.ReaderAt, size int64, path string) (*savedRef, error) {
	s := &savedRef{path: path, f: r}
	if err := s.read(size); err != nil {
		return nil, &format.Error{Path: path, Err: err}
	}
	return s, nil
}

func (s *savedRef) read(size int64) error {
	var pre [savedPrefix]byte
	if size < savedPrefix {
		return fmt.Errorf("%d bytes: too short for a saved REF", size)
	}
	if _, err := s.f.ReadAt(pre[:], 0); err != nil {
		return err
	}
	if [8]byte(pre[:8]) != savedMagic {
		return errors.New("not a saved REF (no QINSREF magic)")
	}
	v := binary.LittleEndian.Uint32(pre[8:])
	if v != 1 && v != SavedRefVersion {
		return fmt.Errorf("saved REF version %d; this qins reads versions 1 and %d", v, SavedRefVersion)
	}
	trailer := int64(0)
	if v >= 2 {
		trailer = 4 // the checksum
	}
	if size < savedPrefix+trailer {
		return fmt.Errorf("%d bytes: too short for a saved REF", size)
	}
	n := binary.LittleEndian.Uint64(pre[12:])
	if n > maxSavedHeader || n > uint64(size-savedPrefix-trailer) {
		return fmt.Errorf("header of %d bytes: the file has %d after the prefix (limit %s)", n, size-savedPrefix-trailer, sizeName(maxSavedHeader))
	}
	js := make([]byte, n)
	if _, err := s.f.ReadAt(js, savedPrefix); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s.h); err != nil {
		return fmt.Errorf("header: %v", err)
	}
	if dec.More() {
		return errors.New("header: data after the JSON object")
	}
	if err := s.checkHeader(); err != nil {
		return fmt.Errorf("header: %v", err)
	}
	h := &s.h
	s.data = savedPrefix + int64(n)
	s.rowSize = rowBytes(h.Vocab, h.TopK)
	positions := len(h.IDs) - 1
	if want := uint64(positions) * uint64(s.rowSize); uint64(size-s.data-trailer) != want {
		return fmt.Errorf("%d bytes of rows, want %d: %d positions of %d bytes", size-s.data-trailer, want, positions, s.rowSize)
	}
	if trailer > 0 {
		if err := s.checkSum(size - trailer); err != nil {
			return err
		}
	}
	s.buf = make([]byte, s.rowSize)
	lp := make([]float64, h.Vocab)
	for t := range positions {
		if err := s.rowAt(t, lp); err != nil {
			return err
		}
	}
	return nil
}

// checkSum checks version 2's checksum, the 4 bytes at end, against the
// bytes before them.
func (s *savedRef) checkSum(end int64) error {
	buf := make([]byte, 1<<20)
	var sum uint32
	for off := int64(0); off < end; {
		b := buf[:min(int64(len(buf)), end-off)]
		if _, err := s.f.ReadAt(b, off); err != nil {
			return err
		}
		sum = crc32.Update(sum, savedCRC, b)
		off += int64(len(b))
	}
	var tr [4]byte
	if _, err := s.f.ReadAt(tr[:], end); err != nil {
		return err
	}
	if want := binary.LittleEndian.Uint32(tr[:]); sum != want {
		return fmt.Errorf("damaged: its checksum is %08x, its contents sum to %08x", want, sum)
	}
	return nil
}

// checkHeader checks the header's fields against each other.
func (s *savedRef) checkHeader() error {
	h := &s.h
	var err error
	if s.cfg, err = model.ParseConfig([]byte(h.Config)); err != nil {
		return fmt.Errorf("config: %v", err)
	}
	switch {
	case h.Vocab < 2 || h.Vocab > maxSavedVocab:
		return fmt.Errorf("vocab %d: want 2 to %d", h.Vocab, maxSavedVocab)
	case h.Vocab != s.cfg.Vocab:
		return fmt.Errorf("vocab %d, but the config's vocab_size is %d", h.Vocab, s.cfg.Vocab)
	case h.Architecture != s.cfg.Architecture:
		return fmt.Errorf("architecture %q, but the config's is %q", h.Architecture, s.cfg.Architecture) // %q escapes control bytes
	case h.TopK < 1 || h.TopK > min(SavedRefTopK, h.Vocab):
		return fmt.Errorf("top_k %d: want 1 to %d", h.TopK, min(SavedRefTopK, h.Vocab))
	case len(h.IDs) < 2:
		return fmt.Errorf("%d token(s): at least 2 are needed", len(h.IDs))
	case s.cfg.MaxPositions > 0 && len(h.IDs) > s.cfg.MaxPositions:
		return fmt.Errorf("%d tokens, longer than max_position_embeddings %d", len(h.IDs), s.cfg.MaxPositions)
	case len(h.Argmax) != len(h.IDs)-1 || len(h.Target) != len(h.IDs)-1:
		return fmt.Errorf("%d argmax and %d target_logprob for %d positions", len(h.Argmax), len(h.Target), len(h.IDs)-1)
	case len(h.Tensors) == 0 || len(h.Tensors) > maxSavedTensors:
		return fmt.Errorf("%d tensors: want 1 to %d", len(h.Tensors), maxSavedTensors)
	case h.Generate < -1:
		return fmt.Errorf("generate %d: want -1 or more", h.Generate)
	case !hexHash(h.TextSHA256) || !hexHash(h.Tokenizer):
		return errors.New("a SHA-256 that is not 64 hex digits")
	}
	for _, c := range []struct {
		what string
		ids  []int
	}{{"ids", h.IDs}, {"argmax", h.Argmax}, {"prompt", h.Prompt}, {"ref_ids", h.RefIDs}} {
		for i, id := range c.ids {
			if id < 0 || id >= h.Vocab {
				return fmt.Errorf("%s[%d] is %d, outside the vocabulary of %d", c.what, i, id, h.Vocab)
			}
		}
	}
	for i, v := range h.Target {
		if !(v <= 0) || math.IsInf(v, -1) {
			return fmt.Errorf("target_logprob[%d] is %g: want a finite log-probability", i, v)
		}
	}
	switch h.Source {
	case "text":
		if h.TextSHA256 == "" {
			return errors.New("source text without text_sha256")
		}
	case "tokens":
	case "greedy":
		if len(h.Prompt) != 1 || len(h.RefIDs) != len(h.IDs)-1 || h.Prompt[0] != h.IDs[0] || !slices.Equal(h.RefIDs, h.IDs[1:]) {
			return errors.New("source greedy: the stream is not the prompt and REF's generation")
		}
	default:
		return fmt.Errorf("source %q: want text, tokens or greedy", h.Source)
	}
	if (h.Prompt == nil) != (h.RefIDs == nil) || (h.Prompt != nil && (len(h.Prompt) == 0 || len(h.RefIDs) == 0)) {
		return errors.New("a greedy generation needs both a prompt and REF's ids")
	}
	if h.Prompt != nil && h.Source != "greedy" && !slices.Equal(h.Prompt, h.IDs[:min(PromptTokens, len(h.IDs))]) {
		return errors.New("the prompt is not the stream's first tokens")
	}
	if mp := s.cfg.MaxPositions; mp > 0 && len(h.Prompt)+len(h.RefIDs) > mp {
		return fmt.Errorf("prompt and generation of %d tokens, longer than max_position_embeddings %d", len(h.Prompt)+len(h.RefIDs), mp)
	}
	seen := make(map[string]bool, len(h.Tensors))
	for i, t := range h.Tensors {
		if t.Name == "" || seen[t.Name] {
			return fmt.Errorf("tensor %d: empty or repeated name", i)
		}
		seen[t.Name] = true
		if _, ok := format.Elements(uint64Shape(t.Shape)); !ok || slices.ContainsFunc(t.Shape, func(d int) bool { return d < 0 }) {
			return fmt.Errorf("tensor %s: shape %v", format.Printable(t.Name), t.Shape)
		}
	}
	return nil
}

// uint64Shape converts a shape whose dimensions are not negative.
func uint64Shape(s []int) []uint64 {
	out := make([]uint64, len(s))
	for i, d := range s {
		out[i] = uint64(max(d, 0))
	}
	return out
}

func hexHash(s string) bool {
	if s == "" {
		return true
	}
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// rowAt fills lp with REF's log-probabilities at position t, the next
// token's exact, checking the row.
func (s *savedRef) rowAt(t int, lp []float64) error {
	b := s.buf
	if _, err := s.f.ReadAt(b, s.data+int64(t)*int64(s.rowSize)); err != nil {
		return fmt.Errorf("row %d: %v", t, err)
	}
	lo := math.Float64frombits(binary.LittleEndian.Uint64(b))
	step := math.Float64frombits(binary.LittleEndian.Uint64(b[8:]))
	if !(lo <= 0) || math.IsInf(lo, -1) || !(step >= 0) || math.IsInf(step, 1) || lo+65535*step > 1e-9 {
		return fmt.Errorf("row %d: range %g + q × %g: want finite log-probabilities", t, lo, step)
	}
	k := s.h.TopK
	q := b[16+12*k:]
	for i := range lp {
		lp[i] = lo + float64(binary.LittleEndian.Uint16(q[2*i:]))*step
	}
	best := math.Inf(-1)
	for j := range k {
		e := b[16+12*j:]
		id := binary.LittleEndian.Uint32(e)
		v := math.Float64frombits(binary.LittleEndian.Uint64(e[4:]))
		if id >= uint32(len(lp)) {
			return fmt.Errorf("row %d: token %d outside the vocabulary of %d", t, id, len(lp))
		}
		if !(v <= 0) || math.IsInf(v, -1) {
			return fmt.Errorf("row %d: token %d has log-probability %g", t, id, v)
		}
		lp[id] = v
		best = max(best, v)
	}
	if a := s.h.Argmax[t]; lp[a] != best {
		return fmt.Errorf("row %d: argmax %d is not the most likely token kept", t, a)
	}
	lp[s.h.IDs[t+1]] = s.h.Target[t]
	return nil
}

// openSaved opens and checks the saved REF at path.
func openSaved(path string) (*savedRef, error) {
	f, err := format.OpenInput(path)
	if err != nil {
		return nil, &InputError{Err: err}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &InputError{Path: path, Err: err}
	}
	s, err := readSaved(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, &InputError{Err: err}
	}
	return s, nil
}

func (s *savedRef) close() {
	if c, ok := s.f.(io.Closer); ok {
		c.Close()
	}
}

// tokenizerIdentity returns the SHA-256, in hex, of the tokenizer files
// of the first of dirs that has one (its tokenizer.json or
// tokenizer.model, and tokenizer_config.json); "" when none has.
func tokenizerIdentity(dirs ...string) (string, error) {
	path := tokenizerFile(dirs)
	if path == "" {
		return "", nil
	}
	h := sha256.New()
	for _, p := range []string{path, filepath.Join(filepath.Dir(path), tokenizer.ConfigFile)} {
		b, err := ReadFile(p, 64<<20, "a tokenizer file")
		if errors.Is(err, os.ErrNotExist) && p != path {
			continue
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", filepath.Base(p), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// textHash is the SHA-256 of a text, in hex.
func textHash(text string) string {
	h := sha256.Sum256([]byte(text))
	return hex.EncodeToString(h[:])
}

func (s *savedRef) row(t int, lp []float64) (int, bool, error) {
	if err := s.rowAt(t, lp); err != nil {
		return 0, false, &InputError{Err: &format.Error{Path: s.path, Err: err}}
	}
	return s.h.Argmax[t], true, nil
}

func (s *savedRef) lastFinite() bool { return true }

// sameTokenizer reports whether the tokenizer found for CAND is the one
// the saved REF's texts were decoded with.
func (s *session) sameTokenizer() bool {
	id, err := tokenizerIdentity(s.tokDirs...)
	return err == nil && id == s.saved.h.Tokenizer
}

// keepRef fills r.savedHeader, for WriteRef, after a live run; asked is
// Options.Generate as given.
func (s *session) keepRef(r *Report, opts Options, asked int) error {
	h := &savedHeader{
		Ref: r.Ref, Architecture: s.cfg.Architecture, Config: string(s.cfgText), ConfigPath: s.cfgPath,
		Vocab: s.cfg.Vocab, Source: r.Source, IDs: r.IDs, Generate: asked, GenerateCut: r.GenerateCut,
	}
	h.Tensors = tensorsOf(s.rw)
	if opts.Text != "" {
		h.TextSHA256 = textHash(opts.Text)
	}
	if s.tok != nil {
		id, err := tokenizerIdentity(s.tokDirs...)
		if err != nil {
			return &InputError{Err: err}
		}
		h.Tokenizer = id
	}
	r.savedHeader = h
	return nil
}

// evalSaved is Eval against the saved REF at ref.
func evalSaved(ctx context.Context, ref, cand string, opts Options) (*Report, error) {
	sv, err := openSaved(ref)
	if err != nil {
		return nil, err
	}
	s := &session{saved: sv, generation: opts.Generation, memory: &Memory{Budget: opts.Memory}}
	defer s.close()
	h := &sv.h
	if err := sv.matches(opts); err != nil {
		return nil, err
	}
	if s.cw, err = OpenWeights(ctx, cand); err != nil {
		return nil, &InputError{Err: err}
	}
	s.cfg, s.cfgText, s.cfgPath = sv.cfg, []byte(h.Config), ref
	s.tokDirs = []string{filepath.Dir(s.cw.Path())}
	if err := s.refuseOutputs(opts.Outputs); err != nil {
		return nil, err
	}
	ccfg := s.cfg
	if c, path, err := ownConfig(s.cw); err != nil {
		return nil, err
	} else if c != nil && c.Architecture != s.cfg.Architecture {
		ccfg, s.ccfgPath = c, path
		if err := sameShape(s.cfg, ccfg, ref, path); err != nil {
			return nil, err
		}
	} else if err := sameTensors(sv.path, sv.h.Tensors, s.cw); err != nil {
		return nil, err
	}
	if s.cand, err = model.New(ccfg, resident{s.cw}); err != nil {
		return nil, &InputError{Path: s.cw.Path(), Err: err}
	}
	ccfgPath := ref
	if s.ccfgPath != "" {
		ccfgPath = s.ccfgPath
	}
	if err := unused(s.cand, s.cw, ccfgPath); err != nil {
		return nil, err
	}
	r := &Report{Ref: h.Ref, SavedRef: ref, Cand: s.cw.Path(), Architecture: h.Architecture, Fails: []string{},
		Source: h.Source, IDs: h.IDs, Tokens: len(h.IDs), GenerateCut: h.GenerateCut, Memory: s.memory}
	if err := s.teacherForced(ctx, r, opts.Progress); err != nil {
		return nil, err
	}
	if h.Prompt != nil {
		r.Greedy = &Greedy{Prompt: h.Prompt, RefIDs: h.RefIDs}
		if err := s.greedy(ctx, r, len(h.RefIDs)); err != nil {
			return nil, err
		}
	}
	r.NonFinite = r.nonFinite()
	r.check(opts)
	return r, nil
}

// ownConfig reads the config.json in w's folder; nil when there is none.
func ownConfig(w *Weights) (*model.Config, string, error) {
	path := filepath.Join(filepath.Dir(w.Path()), "config.json")
	if _, err := os.Stat(path); err != nil {
		return nil, "", nil
	}
	c, err := readConfig(path, true)
	return c, path, err
}

// matches checks that the stream options given are those the REF was
// saved with.
func (sv *savedRef) matches(opts Options) error {
	h := &sv.h
	var why string
	switch {
	case opts.Config != "":
		why = "the config is the saved one; give no other"
	case opts.Text != "" && (h.Source != "text" || textHash(opts.Text) != h.TextSHA256):
		why = "it was saved from another stream than this text"
	case opts.Tokens != nil && (h.Source != "tokens" || !slices.Equal(opts.Tokens, h.IDs)):
		why = "it was saved from another stream than these tokens"
	case opts.Generate != 0 && opts.Generate != h.Generate:
		why = fmt.Sprintf("it was saved with %s, not %d", generateName(h.Generate), opts.Generate)
	default:
		return nil
	}
	return &InputError{Path: sv.path, Err: fmt.Errorf("a saved REF: %s", why)}
}

// generateName describes a saved Options.Generate.
func generateName(n int) string {
	switch n {
	case 0:
		return "the default generation"
	case -1:
		return "no generation"
	}
	return fmt.Sprintf("generation %d", n)
}
