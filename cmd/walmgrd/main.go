// Command walmgrd is the WAL archiving, backup and restore tool. See docs/walmgrd.md.
package main

import (
	"context"
	"os"

	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/walmgr"
)

func main() {
	os.Exit(cli.Main(context.Background(), walmgr.Tool(), os.Args[1:], os.Stdout, os.Stderr))
}
