package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"qins": main})
}

// TestScripts runs the sessions in testdata/script: qins as a user types
// it, with its exit status, its output and the files it leaves. Each
// script starts with in.safetensors, a shard of the tiny checkpoint.
func TestScripts(t *testing.T) {
	shard, err := os.ReadFile(filepath.Join(tiny, "model-00002-of-00002.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(e *testscript.Env) error {
			return os.WriteFile(filepath.Join(e.WorkDir, "in.safetensors"), shard, 0o644)
		},
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"status": cmdStatus,
			"sleep": func(ts *testscript.TestScript, neg bool, args []string) {
				d, err := time.ParseDuration(args[0])
				ts.Check(err)
				time.Sleep(d)
			},
			// newdtypes DIR copies the fixture with every dtype into DIR.
			"newdtypes": func(ts *testscript.TestScript, neg bool, args []string) {
				dir := ts.MkAbs(args[0])
				ts.Check(os.MkdirAll(dir, 0o755))
				for _, n := range []string{"config.json", "model.safetensors"} {
					b, err := os.ReadFile(filepath.Join(newDTypes, n))
					ts.Check(err)
					ts.Check(os.WriteFile(filepath.Join(dir, n), b, 0o644))
				}
			},
			"mkfifo": func(ts *testscript.TestScript, neg bool, args []string) {
				for _, a := range args {
					ts.Check(syscall.Mkfifo(ts.MkAbs(a), 0o644))
				}
			},
		},
	})
}

// cmdStatus runs `status N [>FILE] PROGRAM ARGS...` and fails unless the
// program exits with status N; >FILE sends its standard output to FILE
// (such as /dev/full) instead of the script's stdout.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N [>FILE] PROGRAM ARGS...")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	args = args[1:]
	var stdout bytes.Buffer
	cmd := exec.Command("")
	cmd.Stdout = &stdout
	if len(args[0]) > 1 && args[0][0] == '>' {
		f, err := os.OpenFile(ts.MkAbs(args[0][1:]), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		ts.Check(err)
		defer f.Close()
		cmd.Stdout = f
		args = args[1:]
	}
	path, err := exec.LookPath(args[0])
	if p := ts.Getenv("PATH"); err != nil || p != "" {
		for _, dir := range filepath.SplitList(p) {
			if _, serr := os.Stat(filepath.Join(dir, args[0])); serr == nil {
				path, err = filepath.Join(dir, args[0]), nil
				break
			}
		}
	}
	ts.Check(err)
	var stderr bytes.Buffer
	cmd.Path, cmd.Args, cmd.Dir, cmd.Stderr = path, args, ts.MkAbs("."), &stderr
	cmd.Env = append(os.Environ(), "PATH="+ts.Getenv("PATH"))
	err = cmd.Run()
	got := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		got = ee.ExitCode()
	} else {
		ts.Check(err)
	}
	ts.Stdout().Write(stdout.Bytes())
	ts.Stderr().Write(stderr.Bytes())
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[0], got, want)
	}
}
