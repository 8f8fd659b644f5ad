package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildQins builds the binary, for tests that need a real process.
func buildQins(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "qins")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// sparseF32 writes a one-tensor F32 file of n zeros without using disk.
func sparseF32(t *testing.T, path string, n int64) {
	t.Helper()
	h := `{"w":{"dtype":"F32","shape":[` + itoa(int(n)) + `],"data_offsets":[0,` + itoa(int(4*n)) + `]}}`
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(binary.LittleEndian.AppendUint64(nil, uint64(len(h))))
	f.Write([]byte(h))
	if err := f.Truncate(8 + int64(len(h)) + 4*n); err != nil {
		t.Fatal(err)
	}
}

func TestSignalsLeaveNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildQins(t)
	for _, c := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(c.sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "big.safetensors")
			sparseF32(t, in, 1<<30) // 4 GiB of zeros: seconds of work
			cmd := exec.Command(bin, "convert", in, "-o", filepath.Join(dir, "out.safetensors"))
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until the temporary output exists: the work has begun.
			deadline := time.Now().Add(20 * time.Second)
			for len(files(t, dir)) < 2 && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
			}
			cmd.Process.Signal(c.sig)
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != c.code {
				t.Fatalf("exit %v, want status %d; stderr %q", err, c.code, stderr.String())
			}
			if got := files(t, dir); len(got) != 1 {
				t.Errorf("left behind: %v", got)
			}
			if !strings.Contains(stderr.String(), "interrupted") || strings.Contains(stderr.String(), "goroutine") {
				t.Errorf("stderr %q", stderr.String())
			}
		})
	}
}

// TestDiskFull converts onto a 1 MiB tmpfs: a clear error, nothing left.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	full := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", full).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", full).Run() })
	bin := buildQins(t)
	in := filepath.Join(t.TempDir(), "w.safetensors")
	vals := make([]float32, 1<<20) // 2 MiB of codes and signs: more than fits
	r := rand.New(rand.NewPCG(1, 1))
	for i := range vals {
		vals[i] = float32(r.NormFloat64() * 0.02)
	}
	writeF32(t, in, "w", []uint64{1024, 1024}, vals)
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "convert", in, "-o", filepath.Join(full, "out.safetensors"))
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1; stderr %q", err, stderr.String())
	}
	msg := stderr.String()
	if !strings.Contains(msg, "no space left on device") || !strings.Contains(msg, full) || strings.Count(msg, "\n") != 1 {
		t.Errorf("stderr %q: want one line naming the output and the full disk", msg)
	}
	if got := files(t, full); len(got) != 0 {
		t.Errorf("left on the full disk: %v", got)
	}
}
