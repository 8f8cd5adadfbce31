// Command pgqd is the PgQ ticker and maintenance daemon. See docs/pgqd.md.
package main

import (
	"context"
	"os"

	"github.com/skytools-go/skytools/pkg/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), cli.Tool{
		Name:    "pgqd",
		Summary: "PgQ ticker and maintenance daemon",
		Daemon:  cli.NotImplemented("the ticker"),
	}, os.Args[1:], os.Stdout, os.Stderr))
}
