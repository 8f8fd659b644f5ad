// Package eval measures how far a converted checkpoint's predictions are
// from the original's: both models run teacher-forced over one token
// stream, layer by layer, and the next-token distributions are compared
// (top-1 agreement, KL divergence, perplexity), then both generate greedily
// from one prompt. The teacher-forced pass holds about one layer of each
// model; each generation keeps its model's weights in memory in their
// stored form when they fit Options.Memory (one model at a time), else
// reads them again for every token.
package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/qins-dev/qins/convert/eval/internal/model"
	"github.com/qins-dev/qins/convert/eval/internal/tokenizer"
	"github.com/qins-dev/qins/convert/internal/work"
	"github.com/qins-dev/qins/format"
)

// DefaultGenerate is the number of tokens generated when Options.Generate
// is 0.
const DefaultGenerate = 128

// PromptTokens is how many of the first tokens of a given stream (Text or
// Tokens) prompt the greedy generations.
const PromptTokens = 16

// Options configure Eval.
type Options struct {
	// Text, when not empty, is tokenised into the stream, with BOS
	// prepended when the tokenizer's config says so.
	Text string
	// Tokens, when not nil, is the stream itself.
	Tokens []int
	// Generate is the number of tokens each model generates greedily, and
	// the length of the default stream (REF's own greedy generation from
	// BOS); 0 means DefaultGenerate, cut to what max_position_embeddings
	// leaves after the prompt (Report.GenerateCut says so), and a
	// negative value skips the greedy comparison (only with Text or
	// Tokens). A count given that does not fit is a *GenerateError.
	Generate int
	// Config is the config.json to use; empty means the one beside REF.
	Config string
	// MaxKLD fails the report when the mean KL divergence is above it: a
	// finite number >= 0.
	MaxKLD *float64
	// MinTop1 fails the report when the top-1 agreement (a fraction) is
	// below it: a number from 0 to 1.
	MinTop1 *float64
	// Progress, when set, follows the teacher-forced pass, one unit per
	// layer of both models.
	Progress Progress
	// Generation, when set, gives the Progress of each greedy generation,
	// one unit per token; side is "REF" or "CAND".
	Generation func(side string) Progress
	// SaveRef keeps REF's side of the evaluation in the report, for
	// Report.WriteRef.
	SaveRef bool
	// Memory is how many bytes of weights each model's greedy generation
	// may keep in memory in their stored form, one model after the
	// other; 0 means DefaultMemory(). Weights that fit are read once and
	// multiplied in place, about one pass over their bytes per token;
	// others are read again every token (with at most min(Memory, 512
	// MiB) of them kept decoded). Report.Memory says which.
	Memory int64
	// Outputs are files the caller is to write from the report (a saved
	// REF): Eval refuses them, before any work, when they are files it
	// reads (a checkpoint's, a config.json, a tokenizer file).
	Outputs []string
}

// Progress follows the teacher-forced pass: Start once with the total,
// then Add as the work is done, adding up to that total.
type Progress = work.Progress

// Eval compares the candidate checkpoint cand with the reference ref.
// Either may be anything `qins diff` reads; config.json and the tokenizer
// are looked up beside ref. An input that cannot be used gives an
// *InputError, a *MismatchError (cand's tensors are not ref's) or a
// *StreamError (a token stream the model cannot take, or a generation
// longer than the model's positions: a *GenerateError in it).
//
// The tokenizer is read only when it is used: to tokenise Text, to find
// BOS for the default stream, and to decode the greedy generations. A
// tokenizer that cannot be read fails a Text run only: the default stream
// then starts from config.json's bos_token_id, and the generations are
// given as ids, with Greedy.TextError saying why.
//
// With Options.SaveRef, cand may be empty: REF runs alone, and the report
// holds its side only (the stream, Positions, PPL.Ref and REF's greedy
// generation; the comparison's figures are NaN), for Report.WriteRef.
//
// ref may also be a saved REF (Report.WriteRef), recognised by its
// content: cand is then compared with it without running REF. The stream
// and REF's generation are the saved ones; Text, Tokens and Generate,
// when given, must be those it was saved with, and Config must be empty.
// cand must have the tensors REF had, or, when its folder has a
// config.json of another architecture, REF's vocabulary and layer count.
// The tokenizer that decodes the generations is the one beside cand, and
// must be the one REF's were decoded with (else Greedy.TextError says
// so).
func Eval(ctx context.Context, ref, cand string, opts Options) (*Report, error) {
	if opts.Text != "" && opts.Tokens != nil {
		return nil, errors.New("eval: give Text or Tokens, not both")
	}
	if t := opts.MaxKLD; t != nil && !(*t >= 0 && !math.IsInf(*t, 1)) {
		return nil, fmt.Errorf("eval: MaxKLD %g: want a finite number >= 0", *t)
	}
	if t := opts.MinTop1; t != nil && !(*t >= 0 && *t <= 1) {
		return nil, fmt.Errorf("eval: MinTop1 %g: want a fraction from 0 to 1", *t)
	}
	if opts.Generate < 0 && opts.Text == "" && opts.Tokens == nil {
		return nil, errors.New("eval: the default stream is REF's generation, which needs Generate >= 0")
	}
	if opts.Memory < 0 {
		return nil, fmt.Errorf("eval: Memory %d: want a number of bytes >= 0", opts.Memory)
	}
	if opts.Memory == 0 {
		opts.Memory = DefaultMemory()
	}
	if cand == "" && (!opts.SaveRef || opts.MaxKLD != nil || opts.MinTop1 != nil) {
		return nil, errors.New("eval: no candidate: give one, or SaveRef without thresholds to run REF alone")
	}
	if IsSavedRef(ref) {
		if opts.SaveRef {
			return nil, &InputError{Path: ref, Err: errors.New("is a saved REF already: save a REF from its checkpoint")}
		}
		return evalSaved(ctx, ref, cand, opts)
	}
	asked := opts.Generate
	byDefault := opts.Generate == 0
	if byDefault {
		opts.Generate = DefaultGenerate
	}
	s, err := open(ctx, ref, cand, opts.Config)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := s.refuseOutputs(opts.Outputs); err != nil {
		return nil, err
	}
	s.generation = opts.Generation
	s.memory = &Memory{Budget: opts.Memory}
	r := &Report{Ref: s.rw.Path(), Architecture: s.cfg.Architecture, Fails: []string{}, Memory: s.memory}
	if s.cw != nil {
		r.Cand = s.cw.Path()
	}
	// cut fits the default count after a prompt of p tokens.
	cut := func(p int) {
		if mp := s.cfg.MaxPositions; byDefault && mp > 0 && opts.Generate > mp-p {
			opts.Generate = max(0, mp-p)
			r.GenerateCut = &GenerateCut{From: DefaultGenerate, To: opts.Generate, MaxPositions: mp}
		}
	}
	var refGen []int
	switch {
	case opts.Tokens != nil:
		r.Source, r.IDs = "tokens", opts.Tokens
	case opts.Text != "":
		r.Source = "text"
		if r.IDs, err = s.encode(opts.Text); err != nil {
			return nil, err
		}
	default:
		r.Source = "greedy"
		if s.bos() < 0 {
			return nil, &InputError{Path: s.cfgPath, Err: errors.New("no bos_token_id to start a generation from; give a text or tokens")}
		}
		cut(1)
		start := time.Now()
		if refGen, err = s.generate(ctx, s.ref, []int{s.bos()}, opts.Generate); err != nil {
			return nil, err
		}
		r.IDs = append([]int{s.bos()}, refGen...)
		r.Greedy = &Greedy{Prompt: []int{s.bos()}, RefIDs: refGen, Seconds: time.Since(start).Seconds()}
	}
	r.Tokens = len(r.IDs)
	if err := s.checkStream(r.IDs); err != nil {
		return nil, err
	}
	if r.Greedy == nil {
		cut(min(PromptTokens, len(r.IDs)))
	}
	if opts.SaveRef {
		r.saved = newSavedRows(s.cfg.Vocab, len(r.IDs)-1)
	}
	if opts.Generate > 0 && r.Greedy == nil {
		// Before the teacher-forced pass, not after it.
		if err := s.fits(min(PromptTokens, len(r.IDs)), opts.Generate); err != nil {
			return nil, err
		}
	}
	if err := s.teacherForced(ctx, r, opts.Progress); err != nil {
		return nil, err
	}
	if opts.Generate > 0 {
		if err := s.greedy(ctx, r, opts.Generate); err != nil {
			return nil, err
		}
	}
	if opts.SaveRef {
		if err := s.keepRef(r, opts, asked); err != nil {
			return nil, err
		}
	}
	r.NonFinite = r.nonFinite()
	r.check(opts)
	return r, nil
}

// refuseOutputs refuses an output that is a file s reads: one of a
// checkpoint, a config.json, a tokenizer file Eval may read, or the saved
// REF.
func (s *session) refuseOutputs(outs []string) error {
	inputs := []string{s.cfgPath, s.ccfgPath}
	for _, dir := range s.tokDirs {
		for _, name := range []string{tokenizer.JSONFile, tokenizer.ModelFile, tokenizer.ConfigFile} {
			inputs = append(inputs, filepath.Join(dir, name))
		}
	}
	if s.saved != nil {
		inputs = append(inputs, s.saved.path)
	}
	for _, out := range outs {
		st, err := os.Stat(out)
		if err != nil {
			continue // not there yet: nothing to overwrite
		}
		is := false
		for _, w := range []*Weights{s.rw, s.cw} {
			is = is || w != nil && w.t.Checkpoint.IsInput(out)
		}
		for _, in := range inputs {
			if ist, err := os.Stat(in); in != "" && err == nil && os.SameFile(st, ist) {
				is = true
			}
		}
		if is {
			return &InputError{Path: out, Err: errors.New("is an input of this command; refusing to overwrite it")}
		}
	}
	return nil
}

// session holds both models and what is read beside REF.
type session struct {
	generation func(side string) Progress // Options.Generation
	memory     *Memory                    // Options.Memory, and how each generation kept the weights
	cfg        *model.Config
	cfgText    []byte // cfg's config.json as read
	cfgPath    string
	ccfgPath   string // CAND's own config.json, when it runs with one
	rw, cw     *Weights
	ref, cand  *model.Model // ref is nil with a saved REF
	saved      *savedRef    // the saved REF, or nil
	// tokDirs are the folders the tokenizer is looked for in; tok and
	// tokErr what tokenizer found, once tokLoaded.
	tokDirs   []string
	tok       *tokenizer.Tokenizer // nil when there is none
	tokErr    error
	tokLoaded bool
}

func (s *session) close() {
	if s.rw != nil {
		s.rw.Close()
	}
	if s.cw != nil {
		s.cw.Close()
	}
	if s.saved != nil {
		s.saved.close()
	}
}

// open reads the config and tokenizer beside ref (or configPath) and both
// checkpoints, and checks that they have the same tensors.
func open(ctx context.Context, ref, cand, configPath string) (*session, error) {
	s := &session{}
	if err := s.open(ctx, ref, cand, configPath); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *session) open(ctx context.Context, ref, cand, configPath string) error {
	var err error
	if s.rw, err = OpenWeights(ctx, ref); err != nil {
		return &InputError{Err: err}
	}
	if cand != "" {
		if s.cw, err = OpenWeights(ctx, cand); err != nil {
			return &InputError{Err: err}
		}
	}
	dir := filepath.Dir(s.rw.Path())
	s.cfgPath = configPath
	if s.cfgPath == "" {
		s.cfgPath = filepath.Join(dir, "config.json")
	}
	if s.cfg, s.cfgText, err = readConfigText(s.cfgPath, configPath != ""); err != nil {
		return err
	}
	s.tokDirs = []string{dir, filepath.Dir(s.cfgPath)}
	if s.cw == nil { // REF alone, to save its side
		if s.ref, err = model.New(s.cfg, resident{s.rw}); err != nil {
			return &InputError{Path: s.rw.Path(), Err: err}
		}
		return unused(s.ref, s.rw, s.cfgPath)
	}
	ccfg, err := s.candConfig()
	if err != nil {
		return err
	}
	if ccfg == s.cfg {
		if err := sameTensors(s.rw.Path(), tensorsOf(s.rw), s.cw); err != nil {
			return err
		}
	} else if err := sameShape(s.cfg, ccfg, s.cfgPath, s.ccfgPath); err != nil {
		return err
	}
	if s.ref, err = model.New(s.cfg, resident{s.rw}); err != nil {
		return &InputError{Path: s.rw.Path(), Err: err}
	}
	if s.cand, err = model.New(ccfg, resident{s.cw}); err != nil {
		return &InputError{Path: s.cw.Path(), Err: err}
	}
	ccfgPath := s.cfgPath
	if s.ccfgPath != "" {
		ccfgPath = s.ccfgPath
	}
	if err := unused(s.ref, s.rw, s.cfgPath); err != nil {
		return err
	}
	return unused(s.cand, s.cw, ccfgPath)
}

// unused refuses a checkpoint with tensors the forward pass does not read,
// the sign of a config.json that does not describe it (fewer layers, no
// biases): what they hold would go unchecked.
func unused(m *model.Model, w *Weights, cfgPath string) error {
	names := m.Unused(w.Names())
	if len(names) == 0 {
		return nil
	}
	c := m.Config()
	return &InputError{Path: w.Path(), Err: fmt.Errorf("%s the %s of %s (num_hidden_layers %d) does not read (%s): does the config describe this checkpoint?",
		count(len(names), "tensor"), c.Architecture, format.Printable(cfgPath), c.Layers, firstNames(names, 3))}
}

// count writes n things, "1 tensor", "2 tensors".
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// firstNames lists the first k names, quoted where they would not print
// safely, and how many more there are.
func firstNames(names []string, k int) string {
	var q []string
	for _, n := range names[:min(k, len(names))] {
		q = append(q, format.Printable(n))
	}
	s := strings.Join(q, ", ")
	if len(names) > k {
		s += fmt.Sprintf(" and %d more", len(names)-k)
	}
	return s
}

// candConfig returns the config CAND runs with: REF's, unless CAND's own
// folder holds a config.json for another architecture (the same weights
// in another layout, say Llama's against Phi-3's fused one), which CAND
// then runs with. A QINS folder carries a copy of its source's config, so
// the usual case is REF's.
func (s *session) candConfig() (*model.Config, error) {
	dir := filepath.Dir(s.cw.Path())
	path := filepath.Join(dir, "config.json")
	if dir == filepath.Dir(s.rw.Path()) {
		return s.cfg, nil
	}
	if _, err := os.Stat(path); err != nil {
		return s.cfg, nil
	}
	c, err := readConfig(path, true)
	if err != nil {
		return nil, err
	}
	if c.Architecture == s.cfg.Architecture {
		return s.cfg, nil
	}
	s.ccfgPath = path
	return c, nil
}

// sameShape checks that two configs of different architectures describe
// models that can be compared position by position and layer by layer.
func sameShape(a, b *model.Config, pa, pb string) error {
	switch {
	case a.Vocab != b.Vocab:
		return &InputError{Path: pb, Err: fmt.Errorf("vocab_size %d, but %s has %d: the predictions cannot be compared", b.Vocab, format.Printable(pa), a.Vocab)}
	case a.Layers != b.Layers:
		return &InputError{Path: pb, Err: fmt.Errorf("num_hidden_layers %d, but %s has %d", b.Layers, format.Printable(pa), a.Layers)}
	}
	return nil
}

// readConfig reads and parses a config.json of at most MaxConfigBytes.
func readConfig(path string, given bool) (*model.Config, error) {
	cfg, _, err := readConfigText(path, given)
	return cfg, err
}

// readConfigText is readConfig, also returning the file's text.
func readConfigText(path string, given bool) (*model.Config, []byte, error) {
	data, err := ReadFile(path, MaxConfigBytes, "a config.json")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && !given {
			return nil, nil, &InputError{Path: path, Err: fmt.Errorf("%w beside the reference checkpoint", ErrNoConfig)}
		}
		return nil, nil, &InputError{Path: path, Err: unwrapPath(err)}
	}
	cfg, err := model.ParseConfig(data)
	if ce := (*model.ConfigError)(nil); errors.As(err, &ce) {
		// The InputError names the file, which may not be config.json.
		return nil, nil, &InputError{Path: path, Err: ce.Err}
	}
	if err != nil {
		return nil, nil, &InputError{Path: path, Err: err}
	}
	return cfg, data, nil
}

// unwrapPath drops the operation and path of an *os.PathError, which the
// InputError names already.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// tokenizer loads the tokenizer the first time it is asked for, and returns
// it, or its error; nil, nil when there is none.
func (s *session) tokenizer() (*tokenizer.Tokenizer, error) {
	if !s.tokLoaded {
		s.tok, s.tokErr = findTokenizer(s.tokDirs...)
		s.tokLoaded = true
	}
	return s.tok, s.tokErr
}

// findTokenizer loads the tokenizer of the first folder that has one;
// nil when none has.
func findTokenizer(dirs ...string) (*tokenizer.Tokenizer, error) {
	path := tokenizerFile(dirs)
	if path == "" {
		return nil, nil
	}
	t, err := tokenizer.LoadFile(path)
	if err != nil {
		return nil, &InputError{Err: err}
	}
	return t, nil
}

// tokenizerFile returns the tokenizer file of the first of dirs that has
// one, its tokenizer.json else its tokenizer.model; "" when none has.
func tokenizerFile(dirs []string) string {
	for _, dir := range dirs {
		for _, name := range []string{tokenizer.JSONFile, tokenizer.ModelFile} {
			p := filepath.Join(dir, name)
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	return ""
}

// tensorsOf returns w's tensor names and shapes, in their order.
func tensorsOf(w *Weights) []savedTensor {
	names := w.Names()
	out := make([]savedTensor, len(names))
	for i, name := range names {
		shape, _ := w.Shape(name)
		out[i] = savedTensor{Name: name, Shape: shape}
	}
	return out
}

// sameTensors checks that cand has exactly the tensor names and shapes of
// ref, those of the checkpoint or saved REF at refPath.
func sameTensors(refPath string, ref []savedTensor, cand *Weights) error {
	e := &MismatchError{Ref: refPath, Cand: cand.Path()}
	inRef := map[string]bool{}
	for _, t := range ref {
		inRef[t.Name] = true
		b, ok := cand.Shape(t.Name)
		switch {
		case !ok:
			e.Missing = append(e.Missing, t.Name)
		case !slices.Equal(t.Shape, b):
			e.Shapes = append(e.Shapes, fmt.Sprintf("%s %v against %v", format.Printable(t.Name), t.Shape, b))
		}
	}
	for _, name := range cand.Names() {
		if !inRef[name] {
			e.Extra = append(e.Extra, name)
		}
	}
	if len(e.Missing)+len(e.Extra)+len(e.Shapes) > 0 {
		return e
	}
	return nil
}

// bos returns the id a generation from nothing starts with: the
// tokenizer's BOS, or config.json's (also when the tokenizer cannot be
// read); -1 when neither has one.
func (s *session) bos() int {
	if t, err := s.tokenizer(); err == nil && t != nil && t.BOS() >= 0 {
		return t.BOS()
	}
	return s.cfg.BOS
}

// encode tokenises text as transformers' tokenizer(text) does: with BOS
// and EOS when the tokenizer's files ask for them.
func (s *session) encode(text string) ([]int, error) {
	t, err := s.tokenizer()
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, &InputError{Path: s.cfgPath, Err: ErrNoTokenizer}
	}
	ids, err := t.EncodeInput(text)
	if err != nil {
		return nil, &InputError{Err: fmt.Errorf("tokenising the text: %v", err)}
	}
	return ids, nil
}

// checkStream checks that the model can take ids.
func (s *session) checkStream(ids []int) error {
	if len(ids) < 2 {
		return &StreamError{Err: fmt.Errorf("%d token(s): at least 2 are needed to compare one prediction", len(ids))}
	}
	if m := s.cfg.MaxPositions; m > 0 && len(ids) > m {
		return &StreamError{Err: fmt.Errorf("%d tokens is longer than max_position_embeddings %d (%s)", len(ids), m, format.Printable(s.cfgPath))}
	}
	for i, id := range ids {
		if id < 0 || id >= s.cfg.Vocab {
			return &StreamError{Err: fmt.Errorf("token %d (position %d) is outside the vocabulary of %d (%s)", id, i, s.cfg.Vocab, format.Printable(s.cfgPath))}
		}
	}
	return nil
}

// fits checks that a prompt of p tokens and n generated ones fit in
// max_position_embeddings, without overflow.
func (s *session) fits(p, n int) error {
	if mp := s.cfg.MaxPositions; n > mp-p {
		return &StreamError{Err: &GenerateError{Prompt: p, Generate: n, MaxPositions: mp, Config: s.cfgPath}}
	}
	return nil
}

// teacherForced runs both models over r.IDs, layer by layer, and compares
// their next-token distributions; with a saved REF, CAND alone runs, and
// without a CAND, REF alone runs to save its side.
func (s *session) teacherForced(ctx context.Context, r *Report, p Progress) error {
	p = work.OrNone(p)
	start := time.Now()
	var sr, sc *model.State
	var err error
	if s.ref != nil {
		if sr, err = s.ref.Embed(ctx, r.IDs); err != nil {
			return s.modelErr(err, s.rw)
		}
	}
	if s.cand != nil {
		if sc, err = s.cand.Embed(ctx, r.IDs); err != nil {
			return s.modelErr(err, s.cw)
		}
	}
	n := s.cfg.Layers
	p.Start(int64(n))
	for l := range n {
		if s.ref != nil {
			if err := s.ref.Layer(ctx, l, sr); err != nil {
				return s.modelErr(err, s.rw)
			}
		}
		if s.cand != nil {
			if err := s.cand.Layer(ctx, l, sc); err != nil {
				return s.modelErr(err, s.cw)
			}
		}
		p.Add(1)
	}
	var rows refRows = s.saved
	if s.ref != nil {
		lr, err := s.ref.Logits(ctx, sr)
		if err != nil {
			return s.modelErr(err, s.rw)
		}
		rows = liveRows{lr, s.cfg.Vocab}
	}
	sr = nil // the hidden states go before the second logits arrive
	var side string
	var t int
	if s.cand == nil {
		side, t = "REF", refAlone(r, r.IDs, rows.(liveRows), r.saved)
	} else {
		lc, err := s.cand.Logits(ctx, sc)
		if err != nil {
			return s.modelErr(err, s.cw)
		}
		if side, t, err = compare(r, r.IDs, rows, lc, s.cfg.Vocab, r.saved); err != nil {
			return err
		}
	}
	if t >= 0 {
		return s.nonFiniteErr(side, t, "teacher-forced pass")
	}
	r.Seconds = time.Since(start).Seconds()
	return nil
}

// greedy generates n tokens with both models from the same prompt, unless
// REF's generation is already the stream.
func (s *session) greedy(ctx context.Context, r *Report, n int) error {
	g := r.Greedy
	if g == nil {
		start := time.Now()
		g = &Greedy{Prompt: r.IDs[:min(PromptTokens, len(r.IDs))]}
		var err error
		if g.RefIDs, err = s.generate(ctx, s.ref, g.Prompt, n); err != nil {
			return err
		}
		g.Seconds = time.Since(start).Seconds()
		r.Greedy = g
	}
	if s.cand != nil {
		start := time.Now()
		var err error
		if g.CandIDs, err = s.candGreedy(ctx, r, n); err != nil {
			return err
		}
		g.Seconds += time.Since(start).Seconds()
		if d := firstDivergence(g.RefIDs, g.CandIDs); d > 0 {
			g.FirstDivergence = &d
		}
	}
	if s.saved != nil && s.saved.h.Tokenizer == "" {
		return nil // REF's texts were not decoded
	}
	if t, err := s.tokenizer(); err != nil {
		g.TextError = err.Error()
	} else if t != nil && s.saved != nil && !s.sameTokenizer() {
		g.TextError = fmt.Sprintf("the tokenizer beside %s is not the one %s was saved with", format.Printable(s.cw.Path()), format.Printable(s.saved.path))
	} else if t != nil {
		rt := t.Decode(g.RefIDs)
		g.RefText = &rt
		if s.cand != nil {
			ct := t.Decode(g.CandIDs)
			g.CandText = &ct
		}
	}
	return nil
}

// candGreedy returns CAND's greedy generation of n tokens from r.Greedy's
// prompt. When the stream is REF's own generation from that prompt, the
// teacher-forced pass has CAND's most likely token at each of its
// positions: CAND's generation is REF's up to the first position where
// they differ, then CAND's token there; only the tokens after it are
// generated (none when they never differ).
func (s *session) candGreedy(ctx context.Context, r *Report, n int) ([]int, error) {
	g := r.Greedy
	if r.Source != "greedy" || len(r.candArgmax) < n || len(g.RefIDs) != n {
		return s.generate(ctx, s.cand, g.Prompt, n)
	}
	out := make([]int, 0, n)
	for k := range n {
		out = append(out, r.candArgmax[k])
		if r.candArgmax[k] != g.RefIDs[k] {
			break
		}
	}
	if len(out) == n {
		return out, nil
	}
	prompt := append(append([]int(nil), g.Prompt...), out...)
	rest, err := s.generate(ctx, s.cand, prompt, n-len(out))
	return append(out, rest...), err
}

// generate runs m's greedy generation after checking its length.
func (s *session) generate(ctx context.Context, m *model.Model, prompt []int, n int) ([]int, error) {
	if err := s.fits(len(prompt), n); err != nil {
		return nil, err
	}
	w, side := s.rw, "REF"
	if m == s.cand {
		w, side = s.cw, "CAND"
	}
	var token func()
	if s.generation != nil {
		p := work.OrNone(s.generation(side))
		p.Start(int64(n))
		token = func() { p.Add(1) }
	}
	if s.memory == nil {
		s.memory = &Memory{Budget: DefaultMemory()}
	}
	m.Memory = s.memory.Budget
	m.GenerateBudget = min(model.DefaultGenerateBudget, s.memory.Budget)
	need, _ := m.ResidentBytes()
	kept := &Kept{Bytes: need, Resident: m.Resident()}
	if side == "REF" {
		s.memory.Ref = kept
	} else {
		s.memory.Cand = kept
	}
	ids, err := m.GenerateEach(ctx, prompt, n, token)
	var nf *model.NonFiniteError
	if errors.As(err, &nf) {
		return nil, s.nonFiniteErr(side, nf.Pos, fmt.Sprintf("greedy generation after a %d-token prompt", len(prompt)))
	}
	if err != nil {
		return nil, s.modelErr(err, w)
	}
	// The weights Generate kept are garbage now: collect them, and give
	// their memory back, before the other model keeps its own, or both
	// count in the peak (2837 MiB of peak RSS against 2290 MiB measured
	// on the full-size Phi-3.5 with 4 tokens each, streaming).
	runtime.GC()
	if kept.Resident {
		debug.FreeOSMemory()
	}
	return ids, nil
}

// modelErr names the checkpoint in an error of the forward pass.
func (s *session) modelErr(err error, w *Weights) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &InputError{Path: w.Path(), Err: err}
}

// check records the thresholds r misses.
func (r *Report) check(opts Options) {
	if t := opts.MaxKLD; t != nil && !(r.KLD.Mean <= *t) {
		r.Fails = append(r.Fails, fmt.Sprintf("mean KLD %.6g > %g", r.KLD.Mean, *t))
	}
	if t := opts.MinTop1; t != nil && !(r.Top1 >= *t) {
		r.Fails = append(r.Fails, fmt.Sprintf("top-1 agreement %.6g < %g", r.Top1, *t))
	}
}
