package relay

import (
	"context"

	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/lifecycle"
)

// CLI is the tool's command line: the daemon, --check-config and the admin commands.
func (t Tool[C]) CLI() cli.Tool {
	return cli.Tool{
		Name:        t.Name,
		Summary:     t.Summary,
		CheckConfig: cli.CheckConfig(t.Load),
		Daemon: func(ctx context.Context, env *cli.Env) error {
			return cli.RunDaemon(ctx, env, cli.DaemonSpec[C]{
				Load:   t.Load,
				Common: func(c *C) lifecycle.Common { return t.Relay(c).Common },
				New: func(cfg *C, h *lifecycle.Host) (lifecycle.Daemon[C], error) {
					return New(t, cfg, h)
				},
			})
		},
		Commands: Commands(t),
		Help:     t.Help,
	}
}
