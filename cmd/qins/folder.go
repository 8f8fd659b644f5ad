package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/qins-dev/qins/convert"
)

// folderFlags are the flags of convert and restore for a folder output.
func folderFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "max-shard-size", Usage: "for a folder output, split the weights into shards of at most `SIZE` (5GB, 500MB, 2GiB or bytes; default 5GB)"},
		&cli.BoolFlag{Name: "skip-outside-links", Usage: "for a folder output, leave out (with a warning) the side files that are symbolic links leading outside the model folder, instead of failing"},
		&cli.StringFlag{Name: "max-side-file", Usage: "for a folder output, refuse a side file (config, tokenizer...) larger than `SIZE` (default 1GiB)"},
		&cli.StringFlag{Name: "max-side-total", Usage: "for a folder output, refuse side files larger than `SIZE` together (default 4GiB)"},
	}
}

// folderOptions reads the folder flags into o.
func folderOptions(c *cli.Context, o *convert.WriteOptions) error {
	o.SkipOutsideLinks = c.Bool("skip-outside-links")
	for _, f := range []struct {
		name string
		to   *int64
	}{{"max-shard-size", &o.MaxShardBytes}, {"max-side-file", &o.MaxSideFile}, {"max-side-total", &o.MaxSideTotal}} {
		if !c.IsSet(f.name) {
			continue
		}
		n, err := parseSize(c.String(f.name))
		if err != nil {
			return usageError{fmt.Errorf("--%s: %v", f.name, err)}
		}
		*f.to = n
	}
	return nil
}
