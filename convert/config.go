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
// since 4.56) is replaced in place when it is a string or null; when the
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

// frame is an open JSON object or array while scanning.
type frame struct{ object, wantKey bool }

// dtypeValues returns the byte spans of the values setTorchDType
// replaces, and whether one is at the top level; js must be a JSON object.
func dtypeValues(js []byte) (spans [][2]int64, top bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	var stack []frame
	var key string
	objects := 0
	keyEnd := int64(-1)
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
		if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:n-1]
				valueDone(stack)
				continue
			}
			key, keyEnd = tok.(string), -1
			if key == "torch_dtype" || (key == "dtype" && n == 1) {
				keyEnd = dec.InputOffset()
			}
			stack[n-1].wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack, keyEnd = append(stack, frame{object: true, wantKey: true}), -1
			continue
		case json.Delim('['):
			stack, keyEnd = append(stack, frame{}), -1
			continue
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if _, isString := tok.(string); keyEnd >= 0 && (isString || tok == nil) {
				end := dec.InputOffset()
				start := keyEnd + int64(bytes.IndexAny(js[keyEnd:end], `"n`))
				spans = append(spans, [2]int64{start, end})
				top = top || len(stack) == 1
			}
		}
		keyEnd = -1
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
