package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionText(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "qins (unknown)\n" + runtime.Version() + " " + platform + "\n"},
		{"module version", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}},
			"qins v1.2.3\ngo1.26.8 " + platform + "\n"},
		{"dirty checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "3a037cbd"}, {Key: "vcs.modified", Value: "true"}, {Key: "vcs.time", Value: "2026-12-02T02:10:00Z"}}},
			"qins (devel)\ngo1.26.8 " + platform + "\ncommit 3a037cbd+dirty (2026-12-02T02:10:00Z)\n"},
		{"clean checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261202021000-3a037cbd0000"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "3a037cbd"}, {Key: "vcs.modified", Value: "false"}}},
			"qins v0.0.0-20261202021000-3a037cbd0000\ngo1.26.8 " + platform + "\ncommit 3a037cbd\n"},
	} {
		if got := versionText(tc.info); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-V"}, {"version"}} {
		code, out, errs := runQINS(t, args...)
		if code != 0 || !strings.HasPrefix(out, "qins ") || !strings.Contains(out, runtime.Version()) || errs != "" {
			t.Errorf("%v: exit %d, out %q, err %q", args, code, out, errs)
		}
	}
	// Without a command or flag, help as before.
	if code, out, _ := runQINS(t); code != 0 || !strings.Contains(out, "COMMANDS") {
		t.Errorf("no arguments: exit %d, %q", code, out)
	}
}
