// Command queue-mover is the queue mover. See docs/queue-mover.md.
package main

import (
	"context"
	"os"

	"github.com/skytools-go/skytools/pkg/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), cli.Tool{
		Name:    "queue-mover",
		Summary: "moves events from a queue in one database to a queue in another",
		Daemon:  cli.NotImplemented("queue moving"),
	}, os.Args[1:], os.Stdout, os.Stderr))
}
