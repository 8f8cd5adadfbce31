// Command londisted is the Londiste 3 replication daemon. See docs/londisted.md.
package main

import (
	"context"
	"os"

	"github.com/skytools-go/skytools/pkg/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), cli.Tool{
		Name:    "londisted",
		Summary: "Londiste replication daemon",
		Daemon:  cli.NotImplemented("replication"),
	}, os.Args[1:], os.Stdout, os.Stderr))
}
