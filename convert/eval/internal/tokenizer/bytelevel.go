package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// GPT-2's byte-level BPE writes each byte of the text as one printable
// character, so that every text is a string of vocabulary characters:
// the printable bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for
// themselves, and the 68 others, in byte order, for U+0100 onwards.

// byteRune returns the character that stands for byte b.
func byteRune(b byte) rune {
	switch {
	case b >= '!' && b <= '~', b >= 0xA1 && b <= 0xAC, b >= 0xAE:
		return rune(b)
	case b <= ' ':
		return 0x100 + rune(b)
	case b <= 0xA0: // 0x7F..0xA0
		return 0x100 + 33 + rune(b-0x7F)
	default: // 0xAD
		return 0x100 + 33 + 34
	}
}

// runeByte returns the byte r stands for; false when r stands for none.
func runeByte(r rune) (byte, bool) {
	switch {
	case r >= '!' && r <= '~', r >= 0xA1 && r <= 0xAC, r >= 0xAE && r <= 0xFF:
		return byte(r), true
	case r >= 0x100 && r <= 0x100+' ':
		return byte(r - 0x100), true
	case r >= 0x100+33 && r < 0x100+33+34:
		return byte(r-0x100-33) + 0x7F, true
	case r == 0x100+33+34:
		return 0xAD, true
	}
	return 0, false
}

// byteEncode writes each byte of s as its character.
func byteEncode(s string) string {
	var b strings.Builder
	b.Grow(2 * len(s))
	for i := 0; i < len(s); i++ {
		b.WriteRune(byteRune(s[i]))
	}
	return b.String()
}

// byteDecode returns the bytes the characters of s stand for; a
// character that stands for no byte is kept as its UTF-8 bytes, as
// Hugging Face's ByteLevel decoder keeps it.
func byteDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if b, ok := runeByte(r); ok {
			out = append(out, b)
		} else {
			out = utf8.AppendRune(out, r)
		}
	}
	return out
}
