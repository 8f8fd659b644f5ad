package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestEscape: nothing that does not print reaches a message raw.
func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain name/é":       "plain name/é",
		"a\x1b[31mb":         `a\x1b[31mb`,
		"line\nbreak":        `line\nbreak`,
		"del\x7f c1\u009b":   `del\x7f c1\u009b`,
		"rlo\u202eevil":      `rlo\u202eevil`,
		"bad\xffutf8":        `bad\xffutf8`,
		"tag\U000e0041 char": `tag\U000e0041 char`,
	} {
		if got := escape(in); got != want {
			t.Errorf("escape(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestJSONWriter: DEL, C1 controls and bidirectional overrides come out
// as \u escapes, in one write or split anywhere, and the JSON still reads
// back to the same strings.
func TestJSONWriter(t *testing.T) {
	v := map[string]string{"name": "a\x7fb\u009bc\u202ed\U000e0041é\x1b"}
	js, _ := json.Marshal(v)
	for split := 0; split <= len(js); split++ {
		var b bytes.Buffer
		w := &jsonWriter{w: &b}
		w.Write(js[:split])
		w.Write(js[split:])
		out := b.String()
		if strings.ContainsAny(out, "\x7f\u009b\u202e\U000e0041\x1b") {
			t.Fatalf("split %d: raw control in %q", split, out)
		}
		var back map[string]string
		if err := json.Unmarshal(b.Bytes(), &back); err != nil || back["name"] != v["name"] {
			t.Fatalf("split %d: %q reads back as %q, %v", split, out, back, err)
		}
	}
}
