package format

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nlpodyssey/safetensors"

	"github.com/qins-dev/qins/format/dtype"
)

// rawFile builds a safetensors file from its header JSON and data.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpenValid(t *testing.T) {
	// Data out of name order and a header not padded to 8, as MLX writes.
	h := `{"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"mlx"},"a":{"dtype":"BF16","shape":[1,3],"data_offsets":[8,14]},"e":{"dtype":"I64","shape":[0],"data_offsets":[14,14]}}`
	p := writeTemp(t, "ok.safetensors", rawFile(h, make([]byte, 14)))
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := f.Metadata["format"]; got != "mlx" {
		t.Errorf("metadata format = %q", got)
	}
	var names []string
	for _, ti := range f.Tensors {
		names = append(names, ti.Name)
	}
	if strings.Join(names, ",") != "b,a,e" {
		t.Errorf("tensors in data order: got %v", names)
	}
	a, _ := f.Tensor("a")
	if a.DType != dtype.BF16 || a.Elements() != 3 || a.Bytes() != 6 {
		t.Errorf("tensor a: %+v", a)
	}
}

func TestOpenRejects(t *testing.T) {
	t16 := func(extra string) string {
		return `{"t":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}` + extra + `}`
	}
	cases := []struct {
		name string
		file []byte
		want string
	}{
		{"short", []byte{1, 2, 3}, "too short"},
		{"lfs pointer", []byte("version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n"), "Git LFS pointer"},
		{"header past end", binary.LittleEndian.AppendUint64(nil, 1000), "runs past the end"},
		{"huge header length", binary.LittleEndian.AppendUint64(nil, 1<<62), "above the safetensors limit"},
		{"not json", rawFile(`{"t":`, nil), "not valid JSON"},
		{"not an object", rawFile(`[1,2]`, nil), "not a JSON object"},
		{"trailing data", rawFile(`{} {}`, nil), "data after"},
		{"metadata not string", rawFile(`{"__metadata__":{"a":1}}`, nil), "not a string"},
		{"metadata not object", rawFile(`{"__metadata__":[1]}`, nil), "not a JSON object"},
		{"duplicate name", rawFile(`{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"t":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, make([]byte, 2)), "duplicate tensor name"},
		{"empty name", rawFile(`{"":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), "empty name"},
		{"unknown dtype", rawFile(`{"t":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), "unknown dtype"},
		{"negative dim", rawFile(`{"t":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}`, make([]byte, 1)), "negative"},
		{"overflowing shape", rawFile(`{"t":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,1]}}`, make([]byte, 1)), "too many elements"},
		{"overflowing bytes", rawFile(`{"t":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,1]}}`, make([]byte, 1)), "too large"},
		{"reversed offsets", rawFile(`{"t":{"dtype":"U8","shape":[0],"data_offsets":[1,0]}}`, make([]byte, 1)), "reversed"},
		{"bytes not elements times size", rawFile(`{"t":{"dtype":"F16","shape":[3],"data_offsets":[0,4]}}`, make([]byte, 4)), "needs 6"},
		{"F4 bytes for the shape", rawFile(`{"t":{"dtype":"F4","shape":[2,4],"data_offsets":[0,8]}}`, make([]byte, 8)), "F4 [2 4] needs 4"},
		{"F4 odd elements", rawFile(`{"t":{"dtype":"F4","shape":[1,3],"data_offsets":[0,2]}}`, make([]byte, 2)), "not a whole number of bytes"},
		{"F6 per row rounding", rawFile(`{"t":{"dtype":"F6_E2M3","shape":[2,2],"data_offsets":[0,4]}}`, make([]byte, 4)), "needs 3"},
		{"F6 partial byte", rawFile(`{"t":{"dtype":"F6_E3M2","shape":[2],"data_offsets":[0,2]}}`, make([]byte, 2)), "not a whole number of bytes"},
		{"C64 as F32", rawFile(`{"t":{"dtype":"C64","shape":[2],"data_offsets":[0,8]}}`, make([]byte, 8)), "needs 16"},
		{"F8 two bytes", rawFile(`{"t":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,4]}}`, make([]byte, 4)), "needs 2"},
		{"dtype in lower case", rawFile(`{"t":{"dtype":"f8_e4m3","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), "unknown dtype"},
		{"gap", rawFile(`{"t":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, make([]byte, 2)), "gap"},
		{"overlap", rawFile(`{"t":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"u":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, make([]byte, 3)), "overlaps"},
		{"extra data at end", rawFile(t16(""), make([]byte, 9)), "holds 9 bytes"},
		{"truncated data", rawFile(t16(""), make([]byte, 7)), "truncated"},
		{"unknown key", rawFile(`{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}`, make([]byte, 1)), "unknown key"},
		{"missing shape", rawFile(`{"t":{"dtype":"U8","data_offsets":[0,1]}}`, make([]byte, 1)), "shape missing"},
		{"fractional dim", rawFile(`{"t":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}`, make([]byte, 1)), "not an integer"},
		// Duplicate and case-folded keys, wherever they are: encoding/json
		// would take the last one, or fold the case, and another reader not.
		{"duplicate dtype", rawFile(`{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,1],"dtype":"U8"}}`, make([]byte, 1)), `duplicate key "dtype"`},
		{"duplicate shape", rawFile(`{"t":{"dtype":"U8","shape":[4],"shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), `duplicate key "shape"`},
		{"duplicate offsets", rawFile(`{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,4],"data_offsets":[0,1]}}`, make([]byte, 1)), `duplicate key "data_offsets"`},
		{"key in upper case", rawFile(`{"t":{"DTYPE":"U8","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), `unknown key "DTYPE"`},
		{"duplicate metadata key", rawFile(`{"__metadata__":{"format":"pt","format":"np"}}`, nil), `duplicate key "format" in __metadata__`},
		{"duplicate __metadata__", rawFile(`{"__metadata__":{"a":"1"},"__metadata__":{"b":"2"}}`, nil), "duplicate"},
		{"name differs only by escape", rawFile(`{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"\u0074":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, make([]byte, 2)), `duplicate tensor name "t"`},
		{"invalid UTF-8 name", rawFile("{\"t\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", make([]byte, 1)), "not valid UTF-8"},
		{"lone surrogate", rawFile(`{"t\ud800":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, make([]byte, 1)), "surrogate"},
		{"control character", rawFile("{\"t\n\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", make([]byte, 1)), "control character"},
		{"leading zero", rawFile(`{"t":{"dtype":"U8","shape":[01],"data_offsets":[0,1]}}`, make([]byte, 1)), "not valid JSON"},
		{"trailing comma", rawFile(`{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1],}}`, make([]byte, 1)), "not valid JSON"},
		{"three offsets", rawFile(`{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`, make([]byte, 1)), "want two offsets"},
		{"offset too large", rawFile(`{"t":{"dtype":"U8","shape":[1],"data_offsets":[0,18446744073709551616]}}`, make([]byte, 1)), "fits 64 bits"},
		{"entry not object", rawFile(`{"t":[1]}`, nil), "not a JSON object"},
		{"unterminated", rawFile(`{"t":{"dtype":"U8`, nil), "not valid JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeTemp(t, "bad.safetensors", c.file)
			f, err := Open(p)
			if err == nil {
				f.Close()
				t.Fatalf("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, c.want) || !strings.HasPrefix(msg, p+": ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line starting with the path and containing %q", msg, c.want)
			}
		})
	}
}

// Every dtype of the specification is read, with the byte size the
// specification gives: elements times bits, in whole bytes, F4 and F6
// packed across the whole tensor.
func TestOpenEveryDType(t *testing.T) {
	var h strings.Builder
	h.WriteString("{")
	var off uint64
	want := map[string]uint64{}
	for i, d := range dtype.All() {
		// 8 elements fill whole bytes in every dtype: 4 bytes of F4, 6 of F6.
		size := 8 * d.Bits() / 8
		if i > 0 {
			h.WriteString(",")
		}
		fmt.Fprintf(&h, `"t.%v":{"dtype":"%v","shape":[2,4],"data_offsets":[%d,%d]}`, d, d, off, off+size)
		want["t."+d.String()] = size
		off += size
	}
	h.WriteString("}")
	p := writeTemp(t, "all.safetensors", rawFile(h.String(), make([]byte, off)))
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Tensors) != len(dtype.All()) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(dtype.All()))
	}
	for _, ti := range f.Tensors {
		if ti.Bytes() != want[ti.Name] || "t."+ti.DType.String() != ti.Name {
			t.Errorf("%s: %v of %d bytes, want %d", ti.Name, ti.DType, ti.Bytes(), want[ti.Name])
		}
	}
	// Encode writes them back as it read them.
	if back := Encode(nil, f.Tensors, 0); strings.TrimRight(string(back), " ") != h.String() {
		t.Errorf("Encode:\n%s\nwant\n%s", back, h.String())
	}
}

func TestErrorNamesTensor(t *testing.T) {
	p := writeTemp(t, "x.safetensors", rawFile(`{"w.1":{"dtype":"F16","shape":[3],"data_offsets":[0,4]}}`, make([]byte, 4)))
	_, err := Open(p)
	if err == nil || !strings.Contains(err.Error(), `tensor "w.1"`) {
		t.Fatalf("got %v, want the tensor named", err)
	}
}

func TestEncodeParsesBackAndMatchesLibrary(t *testing.T) {
	ts := []TensorInfo{
		{Name: "z", DType: dtype.F32, Shape: []uint64{2, 2}, Begin: 0, End: 16},
		{Name: "a \"quoted\" name", DType: dtype.I8, Shape: []uint64{3}, Begin: 16, End: 19},
		{Name: "scalar", DType: dtype.U8, Shape: []uint64{}, Begin: 19, End: 20},
	}
	meta := map[string]string{"format": "pt", "note": "ünïcode \\ \"x\""}
	h := Encode(meta, ts, 100)
	if len(h)%8 != 0 || len(h) < 100 {
		t.Fatalf("header length %d: want a multiple of 8, at least 100", len(h))
	}
	file := rawFile(string(h), make([]byte, 20))
	// The library reads what we write.
	st, err := safetensors.Deserialize(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Len() != 3 {
		t.Errorf("library sees %d tensors", st.Len())
	}
	back, err := ParseHeader(h, 20)
	if err != nil {
		t.Fatal(err)
	}
	if back.Metadata["note"] != meta["note"] || len(back.Tensors) != 3 || back.Tensors[1].Name != ts[1].Name {
		t.Errorf("round trip: %+v", back)
	}
}

func TestHeaderLen(t *testing.T) {
	names := []string{"w", "a \"quoted\" \\ name", "ctl\x01\x1f\b\f\n\r\t", "<html>&amp;", "ünïcode \u2028\u2029 ✓", "bad \xff\xfe utf8", "emoji 🙂"}
	for _, name := range names {
		js, _ := json.Marshal(name)
		if got := appendJSONString(nil, name); string(got) != string(js) {
			t.Errorf("appendJSONString(%q) = %s, json.Marshal gives %s", name, got, js)
		}
		if got := jsonStringLen(name); got != len(js) {
			t.Errorf("jsonStringLen(%q) = %d, json.Marshal gives %d bytes", name, got, len(js))
		}
	}
	var ts []TensorInfo
	for i, name := range names {
		ts = append(ts, TensorInfo{Name: name, DType: dtype.F32, Shape: []uint64{uint64(i), 3, 1000}})
	}
	ts = append(ts, TensorInfo{Name: "scalar", DType: dtype.U8, Shape: []uint64{}})
	// Encode takes the offsets as given: lay them out as HeaderLen does.
	var off uint64
	for i := range ts {
		ts[i].Begin, ts[i].End = off, off+ts[i].Elements()*ts[i].DType.Size()
		off = ts[i].End
	}
	for _, meta := range []map[string]string{nil, {"format": "pt"}, {"qins:<x>": `{"a":"\u2028"}`, "b": "\xff"}} {
		got, ok := headerLen(meta, ts)
		// Encode pads with spaces after the closing brace.
		if want := len(strings.TrimRight(string(Encode(meta, ts, 0)), " ")); !ok || got != want {
			t.Errorf("metadata %v: HeaderLen = %d, %v; Encode gives %d bytes", meta, got, ok, want)
		}
		if got, _ := headerLen(meta, nil); got != len(strings.TrimRight(string(Encode(meta, nil, 0)), " ")) {
			t.Errorf("metadata %v, no tensors: HeaderLen = %d, Encode gives %q", meta, got, Encode(meta, nil, 0))
		}
	}
	if _, ok := headerLen(nil, []TensorInfo{{Name: "x", DType: dtype.U8, Shape: []uint64{1 << 40, 1 << 40}}}); ok {
		t.Error("an overflowing shape is ok")
	}
}
