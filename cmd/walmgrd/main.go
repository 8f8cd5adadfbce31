// Command walmgrd is the WAL archiving, backup and restore tool. See docs/walmgrd.md.
package main

import (
	"context"
	"os"

	"github.com/skytools-go/skytools/pkg/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), cli.Tool{
		Name:    "walmgrd",
		Summary: "WAL archiving, base backup and restore daemon",
		Daemon:  cli.NotImplemented("WAL management"),
	}, os.Args[1:], os.Stdout, os.Stderr))
}
