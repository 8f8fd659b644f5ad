package qins

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/qins-dev/qins/format/dtype"
	"github.com/qins-dev/qins/quant"
)

// FuzzEncodedMeta checks the "qins:NAME" parser: what it accepts has
// exactly the known keys in lower case, each once, finite numbers, and
// reads the same with encoding/json; what MarshalEncodedMeta (or
// MarshalRationalMeta) writes reads back.
func FuzzEncodedMeta(f *testing.F) {
	for _, s := range []string{
		`{"log_min":-10.74,"log_max":1.55,"dtype":"F32"}`,
		`{"log_min":-10.74,"log_max":1.55,"dtype":"F32","LOG_MAX":50}`,
		`{"log_min":-10.74,"log_max":1.55,"dtype":"F32","log_max":50}`,
		`{"Log_Min":-1,"log_max":0,"dtype":"BF16"}`,
		`{"log_min":-1e308,"log_max":1e308,"dtype":"F64"}`,
		`{"log_min":-1e999,"log_max":0,"dtype":"F16"}`,
		`{"log_min":-3,"log_max":1000,"dtype":"F32","layout":"packed","range":"mse"}`,
		`{"log_min":-3,"log_max":0,"dtype":"F32","layout":"u8+i8","layout":"packed"}`,
		`{"log_min":-3,"log_max":0,"dtype":"F32"} `,
		`{"log_min":-3,"log_max":0,"dtype":"F\u0033\u0032"}`,
		`{"log_min":-3,"log_max":0,"dtype":"BF16","layout":"packed","range":"mse","granularity":"row"}`,
		`{"log_min":-3,"log_max":0,"dtype":"BF16","granularity":"tensor"}`,
		`{"log_min":-3,"log_max":0,"dtype":"BF16","granularity":"block"}`,
		`{"log_min":-3,"log_max":0,"dtype":"BF16","granularity":"row","granularity":"row"}`,
		`{"log_min":-3,"log_max":0,"dtype":"BF16","layout":"","range":"","granularity":""}`,
		// Version 3: the rational codec.
		`{"codec":"rational","alpha":1,"dtype":"BF16"}`,
		`{"codec":"rational","alpha":0.0123,"dtype":"F32"}`,
		`{"codec":"rational","alpha":-1,"dtype":"F32"}`,
		`{"codec":"rational","alpha":0,"dtype":"F16"}`,
		`{"codec":"rational","alpha":1e999,"dtype":"F16"}`,
		`{"codec":"rational","dtype":"F16"}`,
		`{"codec":"rational","alpha":1,"dtype":"F16","log_min":-1,"log_max":0}`,
		`{"codec":"rational","alpha":1,"dtype":"F16","layout":"packed"}`,
		`{"codec":"log","log_min":-3,"log_max":0,"dtype":"F32"}`,
		`{"codec":"log","log_min":-3,"log_max":0,"dtype":"F32","alpha":2}`,
		`{"codec":"zip","alpha":1,"dtype":"F16"}`,
		`{"codec":"rational","codec":"rational","alpha":1,"dtype":"F16"}`,
		// Version 3: the i8 layout.
		`{"log_min":-3,"log_max":0,"dtype":"BF16","layout":"i8"}`,
		`{"log_min":-3,"log_max":0,"dtype":"F32","layout":"i8","range":"mse"}`,
		`{"log_min":-3,"log_max":0,"dtype":"F32","layout":"I8"}`,
		`{"log_min":-3,"log_max":0,"dtype":"F32","layout":"i8","granularity":"row"}`,
		`{"codec":"rational","alpha":1,"dtype":"F16","layout":"i8"}`,
		// Version 4: the rational codec with one alpha per row.
		`{"codec":"rational","alpha":0.75,"dtype":"BF16","granularity":"row"}`,
		`{"codec":"rational","alpha":0.75,"dtype":"F32","granularity":"tensor"}`,
		`{"codec":"rational","alpha":0.75,"dtype":"F32","granularity":""}`,
		`{"codec":"rational","alpha":0.75,"dtype":"F32","granularity":"block"}`,
		`{"codec":"rational","alpha":0.75,"dtype":"F32","granularity":"row","granularity":"row"}`,
		`{"codec":"rational","dtype":"F32","granularity":"row"}`,
		`{"codec":"rational","alpha":0.75,"dtype":"F32","granularity":"row","range":"mse"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseEncodedMeta(s)
		if err != nil {
			return
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(s), &raw); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", s, err)
		}
		for k := range raw {
			switch k {
			case "log_min", "log_max", "dtype", "layout", "range", "granularity", "codec", "alpha":
			default:
				t.Fatalf("accepted %q with key %q", s, k)
			}
		}
		if m.Codec == CodecRational {
			for k := range raw {
				if k != "codec" && k != "alpha" && k != "dtype" && k != "granularity" {
					t.Fatalf("accepted %q, rational with key %q", s, k)
				}
			}
			if m.Layout != LayoutU8I8 || m.Range != RangeMinMax {
				t.Fatalf("%q: accepted a layout or range for the rational codec", s)
			}
			if !(m.Alpha > 0) || math.IsInf(m.Alpha, 0) {
				t.Fatalf("%q: accepted alpha %v", s, m.Alpha)
			}
			dt, _ := dtype.Parse(m.DType)
			back, err := ParseEncodedMeta(MarshalRationalMeta(m.Alpha, dt, m.Granularity))
			if err != nil || back != m {
				t.Fatalf("%q: %+v marshals and reads back as %+v, %v", s, m, back, err)
			}
			return
		}
		if _, ok := raw["alpha"]; ok {
			t.Fatalf("accepted %q: alpha for the log codec", s)
		}
		var std EncodedMeta
		if err := json.Unmarshal([]byte(s), &std); err != nil || std.LogMin != m.LogMin || std.LogMax != m.LogMax || std.DType != m.DType || std.Encoding != m.Encoding {
			t.Fatalf("%q: read as %+v, encoding/json reads %+v (%v)", s, m, std, err)
		}
		if math.IsInf(m.LogMin, 0) || math.IsInf(m.LogMax, 0) || m.LogMin > m.LogMax {
			t.Fatalf("%q: accepted range [%v, %v]", s, m.LogMin, m.LogMax)
		}
		dt, _ := dtype.Parse(m.DType)
		p := quant.Params{LogMin: m.LogMin, LogMax: m.LogMax}
		back, err := ParseEncodedMeta(MarshalEncodedMeta(p, dt, m.Encoding))
		if err != nil || back != m {
			t.Fatalf("%q: %+v marshals and reads back as %+v, %v", s, m, back, err)
		}
	})
}
