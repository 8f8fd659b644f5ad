package dtype

import "testing"

func TestParseRoundTrip(t *testing.T) {
	for _, d := range All() {
		got, err := Parse(d.String())
		if err != nil || got != d {
			t.Errorf("Parse(%q) = %v, %v; want %v", d.String(), got, err, d)
		}
		if d.Size() == 0 {
			t.Errorf("%v has size 0", d)
		}
	}
	for _, s := range []string{"", "f32", "F8", "DType(0)", "bool"} {
		if d, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", s, d)
		}
	}
}

func TestZeroIsInvalid(t *testing.T) {
	var d DType
	if d != Invalid || d.Valid() || d.Size() != 0 {
		t.Errorf("zero DType: valid %v, size %d", d.Valid(), d.Size())
	}
	if s := d.String(); s != "DType(0)" {
		t.Errorf("zero DType prints %q", s)
	}
}
