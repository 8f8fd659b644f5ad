package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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
			waitWriting(t, cmd.Process.Pid, dir, in) // the work has begun
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

// waitWriting waits until process pid has a file open in dir other than
// the inputs, the output it writes, and returns what /proc names it: for
// an unnamed (O_TMPFILE) file, "DIR/#INODE (deleted)".
func waitWriting(t *testing.T, pid int, dir string, inputs ...string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && strings.HasPrefix(target, dir+"/") && !slices.Contains(inputs, target) {
				return target
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("process %d opened no output in %s within 20 s", pid, dir)
	return ""
}

// exitOf waits for cmd and returns its exit status, failing the test if
// it takes more than limit from now or was killed by a signal.
func exitOf(t *testing.T, cmd *exec.Cmd, limit time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err == nil {
			return 0
		}
		if errors.As(err, &ee) && ee.ExitCode() >= 0 {
			return ee.ExitCode()
		}
		t.Fatalf("%v: %v", cmd.Args, err)
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v still running %v after the signal", cmd.Args, limit)
	}
	return -1
}

// TestOutputAppearsDuringRun: a file that appears at OUT while convert
// runs is kept, and convert fails; with two converts to one new OUT, one
// wins and the other fails.
func TestOutputAppearsDuringRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildQins(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "big.safetensors")
	sparseF32(t, in, 1<<28) // 1 GiB of zeros: seconds of work
	out := filepath.Join(dir, "out.safetensors")
	cmd := exec.Command(bin, "convert", in, "-o", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitWriting(t, cmd.Process.Pid, dir, in)
	if err := os.WriteFile(out, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := exitOf(t, cmd, 2*time.Minute); code != 1 || !strings.Contains(stderr.String(), out) || !strings.Contains(stderr.String(), "--force") {
		t.Errorf("exit %d, stderr %q: want 1 naming the output and --force", code, stderr.String())
	}
	if b, _ := os.ReadFile(out); string(b) != "precious\n" {
		t.Errorf("the file that appeared was replaced: %.20q", b)
	}
	if got := files(t, dir); len(got) != 2 {
		t.Errorf("folder holds %v", got)
	}

	os.Remove(out)
	small := filepath.Join(dir, "small.safetensors")
	sparseF32(t, small, 1<<26)
	var cmds [2]*exec.Cmd
	var errs [2]bytes.Buffer
	for i := range cmds {
		cmds[i] = exec.Command(bin, "convert", "-q", small, "-o", out)
		cmds[i].Stderr = &errs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	codes := []int{exitOf(t, cmds[0], 2*time.Minute), exitOf(t, cmds[1], 2*time.Minute)}
	slices.Sort(codes)
	if codes[0] != 0 || codes[1] != 1 {
		t.Errorf("two converts to one new output: exits %v, want one 0 and one 1; stderr %q %q", codes, errs[0].String(), errs[1].String())
	}
	if code, _, errs := runQINS(t, "inspect", out); code != 0 {
		t.Errorf("the output is not a whole QINS file: %s", errs)
	}
}

// TestFIFOInputsRefusedAtOnce: a FIFO given as an input is refused at once
// with one line, never waited on (issue 23, round four; before, the run
// blocked in the open until a signal ended it).
func TestFIFOInputsRefusedAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildQins(t)
	for _, c := range []struct {
		args []string
		code int
	}{
		{[]string{"convert", "FIFO", "-o", "OUT"}, 1},
		{[]string{"restore", "FIFO", "-o", "OUT"}, 1},
		{[]string{"inspect", "FIFO"}, 1},
		{[]string{"diff", "FIFO", "FIFO"}, 2},
	} {
		t.Run(c.args[0], func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, "fifo")
			if err := syscall.Mkfifo(fifo, 0o644); err != nil {
				t.Fatal(err)
			}
			args := slices.Clone(c.args)
			for i, a := range args {
				args[i] = strings.NewReplacer("FIFO", fifo, "OUT", filepath.Join(dir, "out")).Replace(a)
			}
			cmd := exec.Command(bin, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if code := exitOf(t, cmd, 10*time.Second); code != c.code {
				t.Errorf("exit %d, want %d; stderr %q", code, c.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "is a FIFO, not a regular file") {
				t.Errorf("stderr %q", stderr.String())
			}
			if got := files(t, dir); len(got) != 1 {
				t.Errorf("left %v", got)
			}
		})
	}
}

// manyTensors writes a valid file of n one-element tensors: a header of
// about 75 bytes per tensor, that takes a while to parse.
func manyTensors(t *testing.T, path string, n int) int {
	t.Helper()
	var h strings.Builder
	h.WriteString(`{"__metadata__":{"format":"pt"}`)
	for i := range n {
		fmt.Fprintf(&h, `,"model.layers.%d.weight":{"dtype":"F32","shape":[1],"data_offsets":[%d,%d]}`, i, 4*i, 4*i+4)
	}
	h.WriteString("}")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(binary.LittleEndian.AppendUint64(nil, uint64(h.Len())))
	f.WriteString(h.String())
	if err := f.Truncate(8 + int64(h.Len()) + 4*int64(n)); err != nil {
		t.Fatal(err)
	}
	return h.Len()
}

// readBytes returns how many bytes process pid has read.
func readBytes(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// TestSignalDuringHeaderWork: a signal once a large header is read ends
// every command promptly with 143, leaving nothing. inspect's output goes
// to a pipe nobody reads, so that it cannot finish before the signal.
func TestSignalDuringHeaderWork(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildQins(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "many.safetensors")
	hlen := manyTensors(t, in, 150_000)
	for _, args := range [][]string{
		{"inspect", in},
		{"convert", in, "-o", filepath.Join(dir, "out")},
		{"diff", in, in},
	} {
		t.Run(args[0], func(t *testing.T) {
			cmd := exec.Command(bin, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if _, err := cmd.StdoutPipe(); err != nil { // never read
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for readBytes(cmd.Process.Pid) < int64(hlen) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			if code := exitOf(t, cmd, 10*time.Second); code != 143 {
				t.Errorf("exit %d, want 143; stderr %q", code, stderr.String())
			}
			if got := files(t, dir); len(got) != 1 {
				t.Errorf("left %v", got)
			}
		})
	}
}

// TestKillLeavesNothing: even SIGKILL leaves no temporary file where the
// output is an unnamed O_TMPFILE file.
func TestKillLeavesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildQins(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "big.safetensors")
	sparseF32(t, in, 1<<28)
	cmd := exec.Command(bin, "convert", in, "-o", filepath.Join(dir, "out"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	target := waitWriting(t, cmd.Process.Pid, dir, in)
	cmd.Process.Kill()
	cmd.Wait()
	if !strings.Contains(target, "/#") {
		t.Skipf("no O_TMPFILE on this file system (the output is %s): a kill leaves the temporary file", target)
	}
	if got := files(t, dir); len(got) != 1 {
		t.Errorf("left %v", got)
	}
}

// TestSourceRewrittenDuringRun: a source written in place during convert
// (same size, other bytes) makes it fail, with no output.
func TestSourceRewrittenDuringRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildQins(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "big.safetensors")
	sparseF32(t, in, 1<<28)
	st, _ := os.Stat(in)
	cmd := exec.Command(bin, "convert", in, "-o", filepath.Join(dir, "out"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitWriting(t, cmd.Process.Pid, dir, in)
	f, err := os.OpenFile(in, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0, 0, 0x80, 0x3f}, st.Size()-4) // the last element: 1.0
	f.Close()
	if code := exitOf(t, cmd, 2*time.Minute); code != 1 || !strings.Contains(stderr.String(), "changed while it was being read") {
		t.Errorf("exit %d, stderr %q: want 1, the source changed", code, stderr.String())
	}
	if got := files(t, dir); len(got) != 1 {
		t.Errorf("left %v", got)
	}
}
