// Command dispatcher is the table/cube/bulk dispatcher. See docs/dispatcher.md.
package main

import (
	"context"
	"os"

	"github.com/skytools-go/skytools/pkg/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), cli.Tool{
		Name:    "dispatcher",
		Summary: "reshapes queue events into partitioned, cube or bulk-loaded tables",
		Daemon:  cli.NotImplemented("dispatching"),
	}, os.Args[1:], os.Stdout, os.Stderr))
}
