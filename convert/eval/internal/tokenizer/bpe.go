package tokenizer

import (
	"fmt"
	"unicode/utf8"
)

// symbol is a run [start, end) of the normalized text, one node of the
// doubly linked list the merges shrink. A merge grows the left symbol and
// kills the right one, so symbol i always starts where it started.
type symbol struct {
	start, end int32
	prev, next int32 // -1 at the ends
	id         int32 // -1 when the text is no piece
	dead       bool
	frozen     bool // a user-defined piece: never merged
}

// candidate is a possible merge of two neighbouring symbols.
type candidate struct {
	prio        float64 // higher merges first
	left, right int32
	size        int32 // length of the merged text, to spot stale entries
	id          int32
}

// before orders candidates: higher priority, then leftmost, as both
// SentencePiece and Hugging Face tokenizers break ties.
func (a candidate) before(b candidate) bool {
	return a.prio > b.prio || (a.prio == b.prio && a.left < b.left)
}

// queue is a binary max-heap of candidates, typed to avoid boxing.
type queue []candidate

func (q *queue) push(c candidate) {
	*q = append(*q, c)
	h := *q
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].before(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func (q *queue) pop() candidate {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h[r].before(h[l]) {
			m = r
		}
		if !h[m].before(h[i]) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}

// encoder holds Encode's buffers, reused from word to word.
type encoder struct {
	syms    []symbol
	q       queue
	out     []int
	prevUnk bool           // the last id out is a fused unknown
	rev     map[string]int // unused piece -> length of its left part
}

// split cuts n[start:end] into one symbol per character, or per added
// token of spans (those in the run, in order), which never merges.
func (t *Tokenizer) split(n string, start, end int, spans []span, e *encoder) {
	syms := e.syms[:0]
	for i := start; i < end; {
		var id int32
		size, frozen := 0, false
		if len(spans) > 0 && int(spans[0].start) == i {
			size, id, frozen = int(spans[0].end-spans[0].start), spans[0].id, true
			spans = spans[1:]
		} else {
			_, size = utf8.DecodeRuneInString(n[i:end])
			id = t.idOrNone(n[i : i+size])
		}
		k := int32(len(syms))
		syms = append(syms, symbol{start: int32(i), end: int32(i + size), prev: k - 1, next: k + 1, id: id, frozen: frozen})
		i += size
	}
	if len(syms) > 0 {
		syms[len(syms)-1].next = -1
	}
	e.syms = syms
}

// bpe merges neighbouring symbols, best candidate first, until no pair
// merges: O(n log n) in the number of symbols.
func (t *Tokenizer) bpe(n string, e *encoder) {
	syms := e.syms
	e.q = e.q[:0]
	for i := 0; i+1 < len(syms); i++ {
		t.consider(e, n, int32(i), int32(i+1))
	}
	for len(e.q) > 0 {
		c := e.q.pop()
		l, r := &syms[c.left], &syms[c.right]
		if l.dead || r.dead || l.next != c.right || r.end-l.start != c.size {
			continue // one side merged since this entry was queued
		}
		l.end, l.id, l.next = r.end, c.id, r.next
		r.dead = true
		if l.next >= 0 {
			syms[l.next].prev = c.left
		}
		if l.prev >= 0 {
			t.consider(e, n, l.prev, c.left)
		}
		if l.next >= 0 {
			t.consider(e, n, c.left, l.next)
		}
	}
}

// consider queues the merge of symbols a and b when the model has one:
// tokenizer.json by its merge table, tokenizer.model when the joined text
// is a piece, ranked by that piece's score.
func (t *Tokenizer) consider(e *encoder, n string, a, b int32) {
	l, r := &e.syms[a], &e.syms[b]
	if l.frozen || r.frozen {
		return
	}
	c := candidate{left: a, right: b, size: r.end - l.start}
	if t.merges != nil {
		if l.id < 0 || r.id < 0 {
			return
		}
		m, ok := t.merges[pairKey(l.id, r.id)]
		if !ok {
			return
		}
		c.prio, c.id = -float64(m.rank), m.id
	} else {
		id, ok := t.ids[n[l.start:r.end]]
		if !ok {
			return
		}
		c.prio, c.id = float64(t.pieces[id].score), id
		if t.pieces[id].kind == unused {
			// SentencePiece merges into unused pieces, then splits them
			// back the way the last such candidate was formed.
			if e.rev == nil {
				e.rev = make(map[string]int)
			}
			e.rev[n[l.start:r.end]] = int(l.end - l.start)
		}
	}
	e.q.push(c)
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

// emit turns the merged symbols into ids.
func (t *Tokenizer) emit(n string, e *encoder) error {
	syms := e.syms
	for i := int32(0); i >= 0 && len(syms) > 0; i = syms[i].next {
		s := syms[i]
		if err := t.emitPiece(n[s.start:s.end], s.id, e); err != nil {
			return err
		}
	}
	return nil
}

// emitPiece appends the id of one symbol: an unused piece split back into
// the two it was merged from; a symbol that is no piece as its <0xNN>
// bytes with byte fallback, else as the unknown token, one for a run of
// unknown symbols as SentencePiece and tokenizer.json's fuse_unk do.
func (t *Tokenizer) emitPiece(text string, id int32, e *encoder) error {
	if id >= 0 && t.pieces[id].kind == unused {
		if k, ok := e.rev[text]; ok {
			if err := t.emitPiece(text[:k], t.idOrNone(text[:k]), e); err != nil {
				return err
			}
			return t.emitPiece(text[k:], t.idOrNone(text[k:]), e)
		}
	}
	if id >= 0 {
		e.out = append(e.out, int(id))
		e.prevUnk = false
		return nil
	}
	if !t.byteFall {
		return t.emitUnk(text, e)
	}
	for j := 0; j < len(text); j++ {
		if id := t.byteID[text[j]]; id >= 0 {
			e.out = append(e.out, int(id))
			e.prevUnk = false
		} else if err := t.emitUnk(text[j:j+1], e); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tokenizer) emitUnk(text string, e *encoder) error {
	if t.unk < 0 {
		return fmt.Errorf("tokenizer %s: %q is not in the vocabulary and there is no unknown token", t.src, text)
	}
	if !e.prevUnk || t.keepUnks {
		e.out = append(e.out, t.unk)
	}
	e.prevUnk = true
	return nil
}

// idOrNone returns the id of an encodable piece, -1 when text is none.
func (t *Tokenizer) idOrNone(text string) int32 {
	if id, ok := t.ids[text]; ok {
		return id
	}
	return -1
}
