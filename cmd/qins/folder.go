package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/qins-dev/qins/convert"
)

// maxShardFlag is the --max-shard-size flag of convert and restore.
func maxShardFlag() cli.Flag {
	return &cli.StringFlag{Name: "max-shard-size", Usage: "for a folder output, split the weights into shards of at most `SIZE` (5GB, 500MB, 2GiB or bytes; default 5GB)"}
}

// maxShardBytes returns the value of --max-shard-size in bytes, 0 when it
// is not given.
func maxShardBytes(c *cli.Context) (int64, error) {
	if !c.IsSet("max-shard-size") {
		return 0, nil
	}
	n, err := convert.ParseSize(c.String("max-shard-size"))
	if err != nil {
		return 0, usageError{fmt.Errorf("--max-shard-size: %v", err)}
	}
	return n, nil
}
