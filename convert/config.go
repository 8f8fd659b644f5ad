package convert

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/qins-dev/qins/format/dtype"
)

// torchDType returns the name transformers gives dt in a config.json.
func torchDType(dt dtype.DType) string {
	switch dt {
	case dtype.F16:
		return "float16"
	case dtype.BF16:
		return "bfloat16"
	case dtype.F64:
		return "float64"
	}
	return "float32"
}

// setTorchDType returns the config.json js with its dtype set to name,
// changing nothing else: the value of every "torch_dtype" key (in nested
// configs too) and of a top-level "dtype" key (the name transformers uses
// since 4.56) is replaced in place, whatever it is (a string, null, a
// number, an object or an array: one value, never a second key); when the
// top level has neither, "torch_dtype" is added as its last key, indented
// like the others.
func setTorchDType(js []byte, name string) ([]byte, error) {
	spans, top, err := dtypeValues(js)
	if err != nil {
		return nil, err
	}
	val, _ := json.Marshal(name)
	var out []byte
	last := 0
	for _, s := range spans {
		out = append(append(out, js[last:s[0]]...), val...)
		last = int(s[1])
	}
	out = append(out, js[last:]...)
	if !top {
		out = appendKey(out, `"torch_dtype": `+string(val))
	}
	if !json.Valid(out) {
		return nil, errors.New("setting torch_dtype gave invalid JSON") // cannot happen for a valid object
	}
	return out, nil
}

// frame is an open JSON object or array while scanning; start is where it
// begins when it is a value setTorchDType replaces, else -1.
type frame struct {
	object, wantKey bool
	start           int64
}

// dtypeValues returns the byte spans of the values setTorchDType
// replaces, in order and apart, and whether one is at the top level; js
// must be a JSON object. A value inside a replaced one is not listed.
func dtypeValues(js []byte) (spans [][2]int64, top bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var stack []frame
	objects := 0
	keyEnd := int64(-1) // after a key whose value is replaced
	replacing := 0      // open frames that are replaced values
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("is not valid JSON: %v", err)
		}
		if len(stack) == 0 {
			if objects++; objects > 1 || tok != json.Delim('{') {
				return nil, false, errors.New("is not one JSON object")
			}
		}
		n := len(stack)
		if n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if tok != json.Delim('}') {
				key := tok.(string) // a key is always a string
				keyEnd = -1
				if replacing == 0 && (key == "torch_dtype" || (key == "dtype" && n == 1)) {
					keyEnd = dec.InputOffset()
				}
				stack[n-1].wantKey = false
				continue
			}
		}
		start := int64(-1) // of this value, when it is replaced
		if keyEnd >= 0 {
			// The value starts after the key's colon and white space.
			start = keyEnd + int64(len(js[keyEnd:])-len(bytes.TrimLeft(js[keyEnd:], " \t\r\n:")))
			top = top || n == 1
			keyEnd = -1
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			isObject := tok == json.Delim('{')
			stack = append(stack, frame{object: isObject, wantKey: isObject, start: start})
			if start >= 0 {
				replacing++
			}
			continue
		case json.Delim('}'), json.Delim(']'):
			f := stack[n-1]
			stack = stack[:n-1]
			if f.start >= 0 {
				replacing--
				spans = append(spans, [2]int64{f.start, dec.InputOffset()})
			}
		default:
			if start >= 0 {
				spans = append(spans, [2]int64{start, dec.InputOffset()})
			}
		}
		valueDone(stack)
	}
	if objects == 0 || len(stack) > 0 {
		return nil, false, errors.New("is not one JSON object")
	}
	return spans, top, nil
}

// valueDone marks that a value of the innermost open object ended.
func valueDone(stack []frame) {
	if n := len(stack); n > 0 && stack[n-1].object {
		stack[n-1].wantKey = true
	}
}

// appendKey adds the member kv at the end of the JSON object js, on a
// line of its own indented like the first member when js is indented.
func appendKey(js []byte, kv string) []byte {
	closing := bytes.LastIndexByte(js, '}')
	body := bytes.TrimRight(js[:closing], " \t\r\n")
	open := bytes.IndexByte(js, '{')
	sep := ", "
	if len(body) == open+1 { // an empty object
		sep = ""
	} else if rest := js[open+1:]; bytes.IndexByte(rest, '\n') >= 0 && bytes.IndexByte(rest, '\n') < bytes.IndexByte(rest, '"') {
		line := rest[bytes.IndexByte(rest, '\n')+1:]
		indent := line[:len(line)-len(bytes.TrimLeft(line, " \t"))]
		sep = ",\n" + string(indent)
	}
	var out []byte
	out = append(out, body...)
	out = append(out, sep+kv...)
	tail := js[len(body):]
	if sep == ", " || sep == "" {
		tail = []byte(strings.TrimLeft(string(tail), " \t\r\n"))
	}
	return append(out, tail...)
}
