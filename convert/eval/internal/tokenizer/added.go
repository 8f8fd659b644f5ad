package tokenizer

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is a piece matched whole in the text before BPE: a
// tokenizer.json added token, or a SentencePiece user-defined, control
// or unknown piece.
type addedToken struct {
	content string
	id      int32
	// singleWord: match only where no word character is on either side
	// (tokenizer.json's single_word).
	singleWord bool
	// lstrip and rstrip: the whitespace before and after the token is
	// part of the match, so it is not encoded.
	lstrip, rstrip bool
	// normalized: matched in the normalized text; else in the text as
	// given, before anything else (special tokens, mostly).
	normalized bool
	special    bool
}

// span is one added token found in the normalized text: [start, end).
type span struct {
	start, end int32
	id         int32
	tok        int32 // index of the token in its matcher
}

// matcher finds added tokens in a text leftmost-longest, as Hugging Face
// tokenizers' Aho-Corasick automaton does, in time linear in the text
// whatever the number and length of the tokens.
//
// It is an Aho-Corasick automaton over the reversed patterns, run from
// the end of the text to its start: at each position it gives the
// longest pattern that starts there. Taking, from left to right, the
// longest pattern at the first position that has one, then going on
// after it, is the leftmost-longest match.
type matcher struct {
	toks []addedToken
	pats []string // what each token matches in the normalized text
	// The trie of the reversed patterns, node 0 the root; node u's edges
	// are label[off[u]:off[u+1]] (sorted) to next[off[u]:off[u+1]].
	off   []int32
	label []byte
	next  []int32
	fail  []int32 // the longest proper suffix of the node's string in the trie
	// out is the token whose pattern is the longest suffix of the node's
	// string, -1 when none.
	out []int32
}

// indexAdded builds the two matchers of the added tokens, as Hugging
// Face tokenizers has them: raw for those matched in the text as given
// (normalized false: special tokens, mostly), match for those matched in
// the normalized text, written as the normalizer writes them (a
// SentencePiece model's user-defined pieces; for the SentencePiece-style
// path only spaces are normalized).
func (t *Tokenizer) indexAdded() {
	var raw, norm []addedToken
	var rawPats, normPats []string
	for _, a := range t.added {
		id := int(a.id)
		if t.pieces[id].text != a.content {
			continue
		}
		p := a.content
		if !a.normalized {
			if p != "" && utf8.ValidString(p) {
				raw, rawPats = append(raw, a), append(rawPats, p)
			}
			continue
		}
		if t.hf != nil {
			for _, f := range t.hf.norms {
				p = f(p)
			}
		} else if t.norm.space != "" {
			p = strings.ReplaceAll(p, " ", t.norm.space)
		}
		if p == "" || !utf8.ValidString(p) {
			continue // it could match inside a character
		}
		norm, normPats = append(norm, a), append(normPats, p)
	}
	t.raw = newMatcher(raw, rawPats)
	t.match = newMatcher(norm, normPats)
}

// findRaw returns the added tokens of the text as given, with the
// whitespace lstrip and rstrip take around them.
func (m *matcher) findRaw(s string) []span {
	spans := m.find(s)
	for i := range spans {
		sp := &spans[i]
		tok := &m.toks[sp.tok]
		lo := int32(0)
		if i > 0 {
			lo = spans[i-1].end
		}
		hi := int32(len(s))
		if i+1 < len(spans) {
			hi = spans[i+1].start
		}
		for tok.lstrip && sp.start > lo {
			r, size := utf8.DecodeLastRuneInString(s[lo:sp.start])
			if !unicode.IsSpace(r) {
				break
			}
			sp.start -= int32(size)
		}
		for tok.rstrip && sp.end < hi {
			r, size := utf8.DecodeRuneInString(s[sp.end:hi])
			if !unicode.IsSpace(r) {
				break
			}
			sp.end += int32(size)
		}
	}
	return spans
}

// newMatcher builds the automaton of pats, pats[i] the text toks[i]
// matches; nil when there is none. Of equal patterns the first wins.
func newMatcher(toks []addedToken, pats []string) *matcher {
	if len(pats) == 0 {
		return nil
	}
	rev := make([]string, len(pats))
	for i, p := range pats {
		b := []byte(p)
		slices.Reverse(b)
		rev[i] = string(b)
	}
	order := make([]int, len(pats))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := strings.Compare(rev[a], rev[b]); c != 0 {
			return c
		}
		return a - b
	})

	// The trie, built from the sorted patterns: each adds the nodes past
	// its common prefix with the one before, so every node's children
	// come in increasing byte order.
	parent := []int32{-1}
	label := []byte{0}
	term := []int32{-1}
	path := []int32{0}
	prev := ""
	for _, k := range order {
		s := rev[k]
		l := 0
		for l < len(s) && l < len(prev) && s[l] == prev[l] {
			l++
		}
		path = path[:l+1]
		for j := l; j < len(s); j++ {
			v := int32(len(parent))
			parent = append(parent, path[j])
			label = append(label, s[j])
			term = append(term, -1)
			path = append(path, v)
		}
		if v := path[len(s)]; term[v] < 0 {
			term[v] = int32(k)
		}
		prev = s
	}
	nodes := len(parent)
	m := &matcher{toks: toks, pats: pats, off: make([]int32, nodes+1), label: make([]byte, nodes-1), next: make([]int32, nodes-1)}
	for v := 1; v < nodes; v++ {
		m.off[parent[v]+1]++
	}
	for u := 0; u < nodes; u++ {
		m.off[u+1] += m.off[u]
	}
	fill := slices.Clone(m.off[:nodes])
	for v := 1; v < nodes; v++ {
		p := parent[v]
		m.label[fill[p]], m.next[fill[p]] = label[v], int32(v)
		fill[p]++
	}

	// Failure links and outputs, breadth first.
	m.fail = make([]int32, nodes)
	m.out = make([]int32, nodes)
	m.out[0] = -1
	queue := make([]int32, 0, nodes)
	for e := m.off[0]; e < m.off[1]; e++ {
		v := m.next[e]
		m.fail[v] = 0
		queue = append(queue, v)
	}
	for q := 0; q < len(queue); q++ {
		u := queue[q]
		m.out[u] = term[u]
		if m.out[u] < 0 {
			m.out[u] = m.out[m.fail[u]]
		}
		for e := m.off[u]; e < m.off[u+1]; e++ {
			v, c := m.next[e], m.label[e]
			f := m.fail[u]
			for {
				if x := m.child(f, c); x >= 0 {
					m.fail[v] = x
					break
				}
				if f == 0 {
					m.fail[v] = 0
					break
				}
				f = m.fail[f]
			}
			queue = append(queue, v)
		}
	}
	return m
}

// child returns the node after u on byte c, -1 when there is none.
func (m *matcher) child(u int32, c byte) int32 {
	lo, hi := m.off[u], m.off[u+1]
	for lo < hi {
		mid := int32(uint32(lo+hi) >> 1)
		switch {
		case m.label[mid] < c:
			lo = mid + 1
		case m.label[mid] > c:
			hi = mid
		default:
			return m.next[mid]
		}
	}
	return -1
}

// find returns the added tokens of n, in order, as Hugging Face tokenizers
// splits a text on them: leftmost-longest matches, each search going on
// after the last match; a single_word token with a word character beside
// it is dropped, and its text stays text.
func (m *matcher) find(n string) []span {
	if m == nil {
		return nil
	}
	// The longest pattern starting at each position, from the end.
	type start struct{ pos, tok int32 }
	var starts []start
	u := int32(0)
	for i := len(n) - 1; i >= 0; i-- {
		c := n[i]
		for {
			if x := m.child(u, c); x >= 0 {
				u = x
				break
			}
			if u == 0 {
				break
			}
			u = m.fail[u]
		}
		if o := m.out[u]; o >= 0 {
			starts = append(starts, start{int32(i), o})
		}
	}
	var out []span
	at := int32(0)
	for k := len(starts) - 1; k >= 0; k-- {
		s := starts[k]
		if s.pos < at {
			continue
		}
		end := s.pos + int32(len(m.pats[s.tok]))
		at = end
		tok := &m.toks[s.tok]
		if tok.singleWord && (endsWithWord(n[:s.pos]) || startsWithWord(n[end:])) {
			continue
		}
		out = append(out, span{start: s.pos, end: end, id: tok.id, tok: s.tok})
	}
	return out
}

// startsWithWord and endsWithWord test the first and last character of s
// against the regular expression \w, as single_word does.
func startsWithWord(s string) bool {
	r, size := utf8.DecodeRuneInString(s)
	return size > 0 && isWordChar(r)
}

func endsWithWord(s string) bool {
	r, size := utf8.DecodeLastRuneInString(s)
	return size > 0 && isWordChar(r)
}

// isWordChar is Unicode's \w: alphabetic, marks, decimal digits,
// connector punctuation and the joiners.
func isWordChar(r rune) bool {
	return unicode.In(r, unicode.L, unicode.Nl, unicode.Other_Alphabetic, unicode.M, unicode.Nd, unicode.Pc, unicode.Join_Control)
}
