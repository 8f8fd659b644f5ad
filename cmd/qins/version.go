package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
)

// addVersion gives app `qins --version` and `qins version`.
func addVersion(app *cli.App, stdout io.Writer) {
	show := func(c *cli.Context) error {
		if c.NArg() > 0 {
			return usageError{fmt.Errorf("version takes no arguments; got %q", c.Args().First())}
		}
		info, _ := debug.ReadBuildInfo()
		_, err := io.WriteString(stdout, versionText(info))
		return err
	}
	app.Commands = append(app.Commands, &cli.Command{
		Name:        "version",
		Usage:       "print the version of qins, of Go, and the commit it was built from",
		Description: versionHelp,
		Action:      show,
	})
	app.Flags = append(app.Flags, &cli.BoolFlag{Name: "version", Aliases: []string{"V"}, Usage: "print the version"})
	app.Action = func(c *cli.Context) error {
		if c.Bool("version") {
			return show(c)
		}
		return cli.ShowAppHelp(c)
	}
}

// versionText describes the build: the module version, the Go version
// and platform, and the VCS revision when the build recorded one, with
// "+dirty" when the tree had changes. info may be nil.
func versionText(info *debug.BuildInfo) string {
	version, goVersion := "(unknown)", runtime.Version()
	settings := map[string]string{}
	if info != nil {
		if info.Main.Version != "" {
			version = info.Main.Version
		}
		if info.GoVersion != "" {
			goVersion = info.GoVersion
		}
		for _, s := range info.Settings {
			settings[s.Key] = s.Value
		}
	}
	text := fmt.Sprintf("qins %s\n%s %s/%s\n", version, goVersion, runtime.GOOS, runtime.GOARCH)
	if rev := settings["vcs.revision"]; rev != "" {
		if settings["vcs.modified"] == "true" {
			rev += "+dirty"
		}
		if t := settings["vcs.time"]; t != "" {
			rev += " (" + t + ")"
		}
		text += "commit " + rev + "\n"
	}
	return text
}
