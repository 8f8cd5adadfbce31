// Command queue-mover moves events from a queue in one database to a queue in
// another, exactly once. See docs/queue-mover.md.
package main

import (
	"context"
	"os"

	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/mover"
)

func main() {
	os.Exit(cli.Main(context.Background(), mover.Tool(), os.Args[1:], os.Stdout, os.Stderr))
}
