// Command dispatcher applies the trigger events of a queue to tables in another
// database, exactly once: into time partitions, per-period cubes, or as bulk loads.
// See docs/dispatcher.md.
package main

import (
	"context"
	"os"

	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/dispatch"
)

func main() {
	os.Exit(cli.Main(context.Background(), dispatch.Tool(), os.Args[1:], os.Stdout, os.Stderr))
}
