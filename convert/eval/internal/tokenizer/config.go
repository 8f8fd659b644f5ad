package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/qins-dev/qins/format"
)

// tokenConfig is what applyConfig reads of tokenizer_config.json.
type tokenConfig struct {
	AddBOS *bool      `json:"add_bos_token"`
	AddEOS *bool      `json:"add_eos_token"`
	Class  string     `json:"tokenizer_class"`
	BOS    tokenValue `json:"bos_token"`
	EOS    tokenValue `json:"eos_token"`
}

// tokenValue is a special token given as a string or as {"content": ...}.
type tokenValue struct {
	set     bool
	bad     bool // neither: applyConfig says so, naming the key
	content string
}

func (v *tokenValue) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*v = tokenValue{set: true, content: s}
		return nil
	}
	var o struct {
		Content *string `json:"content"`
	}
	if err := json.Unmarshal(b, &o); err != nil || o.Content == nil {
		// Not an error here: json would print it without the key.
		*v = tokenValue{bad: true}
		return nil
	}
	*v = tokenValue{set: true, content: *o.Content}
	return nil
}

// applyConfig applies tokenizer_config.json at path when it exists.
func (t *Tokenizer) applyConfig(path string) error {
	data, err := readLimited(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var c tokenConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return &format.Error{Path: path, Err: err}
	}
	if honoursAddTokens(c.Class) {
		if c.AddBOS != nil {
			t.addBOS = *c.AddBOS
		}
		if c.AddEOS != nil {
			t.addEOS = *c.AddEOS
		}
	}
	for _, s := range []struct {
		name string
		v    tokenValue
		id   *int
	}{{"bos_token", c.BOS, &t.bos}, {"eos_token", c.EOS, &t.eos}} {
		if s.v.bad {
			return &format.Error{Path: path, Err: fmt.Errorf("%s: want a string or an object with \"content\"", s.name)}
		}
		if !s.v.set {
			continue
		}
		id, ok := t.lookup(s.v.content)
		if !ok {
			return &format.Error{Path: path, Err: fmt.Errorf("%s %q is not in the vocabulary of %s", s.name, s.v.content, format.Printable(t.src))}
		}
		*s.id = id
	}
	return nil
}

// honoursAddTokens reports whether transformers' tokenizer class applies
// add_bos_token and add_eos_token: the Llama and Gemma ones rebuild the
// post-processor from them (DeepSeek-V3 names LlamaTokenizerFast, so
// its BOS is added though its tokenizer.json's post-processor adds none);
// Qwen2's and GPT-2's fast tokenizers, and the generic
// PreTrainedTokenizerFast, keep tokenizer.json's. Without a class, the
// keys apply.
func honoursAddTokens(class string) bool {
	switch strings.TrimSuffix(class, "Fast") {
	case "", "LlamaTokenizer", "CodeLlamaTokenizer", "GemmaTokenizer", "Gemma3Tokenizer":
		return true
	}
	return false
}

// lookup finds the id of a piece of any kind by its text.
func (t *Tokenizer) lookup(text string) (int, bool) {
	if id, ok := t.ids[text]; ok {
		return int(id), true
	}
	for i, p := range t.pieces {
		if p.text == text {
			return i, true
		}
	}
	return 0, false
}
