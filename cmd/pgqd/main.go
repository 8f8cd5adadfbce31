// Command pgqd is the PgQ ticker and maintenance daemon. See docs/pgqd.md.
package main

import (
	"context"
	"os"

	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/ticker"
)

func main() {
	os.Exit(cli.Main(context.Background(), ticker.Tool(), os.Args[1:], os.Stdout, os.Stderr))
}
