package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// copyTiny copies the tiny checkpoint folder into dir/name.
func copyTiny(t *testing.T, dir, name string) string {
	t.Helper()
	dst := filepath.Join(dir, name)
	os.Mkdir(dst, 0o755)
	for _, n := range files(t, tiny) {
		b, err := os.ReadFile(filepath.Join(tiny, n))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dst, n), b, 0o644)
	}
	return dst
}

func TestFolderCommands(t *testing.T) {
	dir := t.TempDir()
	src := copyTiny(t, dir, "phi")
	// OUT omitted: a folder beside the source.
	code, out, errs := runQINS(t, "convert", src, "--max-shard-size", "60kB", "--granularity", "row")
	if code != 0 {
		t.Fatalf("convert: exit %d: %s", code, errs)
	}
	q := filepath.Join(dir, "phi.qins")
	if !strings.Contains(out, "weight file(s) and their index, 1 other file(s) copied") || !strings.Contains(out, q) {
		t.Errorf("summary:\n%s", out)
	}
	want := []string{"config.json", "model.qins-00001-of-00003.safetensors", "model.qins-00002-of-00003.safetensors",
		"model.qins-00003-of-00003.safetensors", "model.qins.safetensors.index.json"}
	if got := files(t, q); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("QINS folder holds %v", got)
	}
	if code, out, _ := runQINS(t, "inspect", q); code != 0 || !strings.Contains(out, "QINS version 2, 3 file(s)") {
		t.Errorf("inspect: exit %d\n%s", code, out)
	}
	if code, _, errs := runQINS(t, "restore", q, "--dtype", "bf16", "-q"); code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errs)
	}
	r := filepath.Join(dir, "phi.restored")
	if got := files(t, r); strings.Join(got, " ") != "config.json model.safetensors" {
		t.Errorf("restored folder holds %v", got)
	}
	cfg, _ := os.ReadFile(filepath.Join(r, "config.json"))
	if !strings.Contains(string(cfg), `"torch_dtype": "bfloat16"`) {
		t.Errorf("config.json:\n%s", cfg)
	}
	if code, out, errs := runQINS(t, "diff", src, r, "--min-snr-db", "30", "--top", "0"); code != 0 {
		t.Errorf("diff: exit %d: %s%s", code, out, errs)
	}

	// Again without --force: refused, with the hint.
	code, _, errs = runQINS(t, "convert", src)
	if code != 1 || !strings.Contains(errs, "output exists") || !strings.Contains(errs, "--force") {
		t.Errorf("existing folder: exit %d, %q", code, errs)
	}
	// Into the input: refused even with --force.
	code, _, errs = runQINS(t, "convert", src, "-o", filepath.Join(src, "x.qins"), "--force")
	if code != 1 || !strings.Contains(errs, "inside the input folder") {
		t.Errorf("output inside input: exit %d, %q", code, errs)
	}
	// -o FILE.safetensors: one file, as before.
	f := filepath.Join(dir, "one.safetensors")
	if code, _, errs := runQINS(t, "convert", src, "-o", f, "-q"); code != 0 {
		t.Errorf("file output: exit %d: %s", code, errs)
	}
	if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
		t.Errorf("%s: %v", f, err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"convert", src, "-o", filepath.Join(dir, "b.qins"), "--max-shard-size", "lots"}, 2, "--max-shard-size"},
		{[]string{"convert", src, "-o", filepath.Join(dir, "b.safetensors"), "--max-shard-size", "1MB"}, 1, "folder output"},
		{[]string{"restore", f}, 2, "needs -o OUT"},
	} {
		code, _, errs := runQINS(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, %q", tc.args, code, errs)
		}
	}
}

// TestFolderSignalAndFullDisk interrupts a folder convert, and runs one
// onto a full disk: nothing is left beside the output either way.
func TestFolderSignalAndFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildQins(t)
	t.Run("SIGINT", func(t *testing.T) {
		dir := t.TempDir()
		src := filepath.Join(dir, "big")
		os.Mkdir(src, 0o755)
		sparseF32(t, filepath.Join(src, "model.safetensors"), 1<<30) // seconds of work
		os.WriteFile(filepath.Join(src, "config.json"), []byte("{}"), 0o644)
		out := filepath.Join(dir, "out")
		os.Mkdir(out, 0o755)
		cmd := exec.Command(bin, "convert", src, "-o", filepath.Join(out, "big.qins"), "--max-shard-size", "1GB")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the temporary folder exists: its shard being written
		// has no name until it is complete (O_TMPFILE), so give it time
		// to start.
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if m, _ := filepath.Glob(filepath.Join(out, ".big.qins.tmp-*")); len(m) > 0 {
				time.Sleep(200 * time.Millisecond)
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("exit %v, want 130; stderr %q", err, stderr.String())
		}
		if got := files(t, out); len(got) != 0 {
			t.Errorf("left behind: %v", got)
		}
	})
	t.Run("full disk", func(t *testing.T) {
		full := t.TempDir()
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", full).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", full).Run() })
		src := filepath.Join(t.TempDir(), "m")
		os.Mkdir(src, 0o755)
		vals := make([]float32, 1<<19) // 1 MiB of codes and signs (u8+i8): more than fits
		for i := range vals {
			vals[i] = float32(i%1000+1) * 1e-4
		}
		writeF32(t, filepath.Join(src, "model.safetensors"), "w", []uint64{512, 1024}, vals)
		os.WriteFile(filepath.Join(src, "config.json"), []byte("{}"), 0o644)
		code, _, errs := runQINS(t, "convert", src, "-o", filepath.Join(full, "m.qins"), "--reference")
		want := filepath.Join(full, "m.qins", "model.qins.safetensors") + ": "
		if code != 1 || !strings.Contains(errs, "no space left on device") || !strings.Contains(errs, want) {
			t.Errorf("exit %d, %q", code, errs)
		}
		if got := files(t, full); len(got) != 0 {
			t.Errorf("left on the full disk: %v", got)
		}
	})
}
