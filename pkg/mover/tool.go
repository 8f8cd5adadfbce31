package mover

import (
	"context"

	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/lifecycle"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/relay"
	"go.uber.org/zap"
)

// relayTool is queue-mover as a relay daemon.
func relayTool() relay.Tool[Config] {
	return relay.Tool[Config]{
		Name:  "queue-mover",
		Relay: func(c *Config) *relay.Config { return &c.Config },
		NewHandler: func(c *Config, _ *zap.Logger, tally *relay.Tally) (pgq.Handler, error) {
			return NewHandler(c.DstQueue, tally), nil
		},
	}
}

// Tool is the queue-mover command line: the daemon and its admin commands.
func Tool() cli.Tool {
	rt := relayTool()
	return cli.Tool{
		Name:        "queue-mover",
		Summary:     "moves events from a queue in one database to a queue in another, exactly once",
		CheckConfig: cli.CheckConfig(LoadConfig),
		Daemon: func(ctx context.Context, env *cli.Env) error {
			return cli.RunDaemon(ctx, env, cli.DaemonSpec[Config]{
				Load:   LoadConfig,
				Common: func(c *Config) lifecycle.Common { return c.Common },
				New: func(cfg *Config, h *lifecycle.Host) (lifecycle.Daemon[Config], error) {
					return relay.New(rt, cfg, h)
				},
			})
		},
		Commands: relay.Commands(rt, LoadConfig),
		Help: `Config keys (TOML): src_db, dst_db, queue, dst_queue, consumer, min_count, min_interval,
min_lag, fetch_size, loop_delay, position_table, metrics_listen, log_level.
The commands read the config file given with -c. See docs/queue-mover.md.`,
	}
}
