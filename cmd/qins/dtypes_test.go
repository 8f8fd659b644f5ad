package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const newDTypes = "../../testdata/newdtypes"

// The fixture with one tensor of each dtype the codec does not encode
// (FP8, FP6, FP4, E8M0, FNUZ, C64, BOOL) goes through every command, as a
// folder.
func TestNewDTypesCommands(t *testing.T) {
	dir := t.TempDir()
	q, r := filepath.Join(dir, "m.qins"), filepath.Join(dir, "m.restored")
	code, out, errs := runQINS(t, "convert", newDTypes, "-o", q)
	if code != 0 || !strings.Contains(out, "2 encoded, 11 copied (10 of them for their dtype: BOOL, C64, F4, F6_E2M3, F6_E3M2, F8_E4M3, F8_E4M3FNUZ, F8_E5M2, F8_E5M2FNUZ, F8_E8M0)") {
		t.Fatalf("convert: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = runQINS(t, "inspect", q)
	for _, dt := range []string{"F4 ", "F6_E2M3", "F6_E3M2", "F8_E4M3 ", "F8_E5M2 ", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64", "BOOL"} {
		if code != 0 || !strings.Contains(out, dt) {
			t.Errorf("inspect: exit %d, no %q:\n%s", code, dt, out)
		}
	}
	if code, _, errs := runQINS(t, "restore", q, "-o", r, "--dtype", "bf16", "-q"); code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errs)
	}
	for _, b := range []string{q, r} {
		code, out, errs := runQINS(t, "diff", newDTypes, b, "--top", "-1", "--min-snr-db", "30", "--min-cosine", "0.999", "--max-rel-rmse", "0.05")
		if code != 0 || !strings.HasSuffix(out, "OK\n") || strings.Contains(out, "NaN") {
			t.Errorf("diff %s: exit %d\n%s%s", b, code, out, errs)
		}
	}
	code, _, errs = runQINS(t, "eval", newDTypes, r)
	if code != 2 || !strings.Contains(errs, `tensor "model.layers.0.self_attn.q_proj.weight": is F8_E4M3, block-scaled by`) {
		t.Errorf("eval: exit %d: %s", code, errs)
	}
}

// A packed tensor of the wrong byte size: one line naming the file and
// the tensor, exit 1 (2 for diff, whose 1 means "different"), nothing
// written.
func TestNewDTypesMalformed(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, stFile(`{"w":{"dtype":"F6_E3M2","shape":[2,2],"data_offsets":[0,4]}}`, make([]byte, 4)), 0o644)
	out := filepath.Join(dir, "out.safetensors")
	for _, args := range [][]string{
		{"convert", bad, "-o", out},
		{"inspect", bad},
		{"diff", bad, bad},
		{"restore", bad, "-o", out},
	} {
		code, _, errs := runQINS(t, args...)
		want := "qins: error: " + bad + `: tensor "w": holds 4 bytes, but F6_E3M2 [2 2] needs 3` + "\n"
		if wantCode := map[bool]int{true: 2, false: 1}[args[0] == "diff"]; code != wantCode || errs != want {
			t.Errorf("%s: exit %d, stderr %q; want %q", args[0], code, errs, want)
		}
	}
	if got := files(t, dir); len(got) != 1 {
		t.Errorf("left behind: %v", got)
	}
}
