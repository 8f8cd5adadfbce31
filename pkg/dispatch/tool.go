package dispatch

import (
	"context"

	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/lifecycle"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/relay"
	"go.uber.org/zap"
)

// relayTool is the dispatcher as a relay daemon.
func relayTool() relay.Tool[Config] {
	return relay.Tool[Config]{
		Name:  "dispatcher",
		Relay: func(c *Config) *relay.Config { return &c.Config },
		NewHandler: func(c *Config, log *zap.Logger, tally *relay.Tally) (pgq.Handler, error) {
			return NewHandler(c, log, tally), nil
		},
	}
}

// Tool is the dispatcher command line: the daemon and its admin commands.
func Tool() cli.Tool {
	rt := relayTool()
	return cli.Tool{
		Name:        "dispatcher",
		Summary:     "applies trigger events of a queue to tables in another database: partitions, cubes or bulk loads",
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
		Help: `Config keys (TOML): mode (table, cube, bulk), on_bad_event, src_db, dst_db, queue,
consumer, min_count, min_interval, min_lag, fetch_size, loop_delay, position_table,
metrics_listen, log_level, and one [[table]] per source table with name, target,
part_field, part_period, part_template, keep. The commands read the config file
given with -c. See docs/dispatcher.md.`,
	}
}
