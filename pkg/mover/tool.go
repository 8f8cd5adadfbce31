package mover

import (
	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/relay"
	"go.uber.org/zap"
)

// Tool is the queue-mover command line: the daemon and its admin commands.
func Tool() cli.Tool {
	return relay.Tool[Config]{
		Name:    "queue-mover",
		Summary: "moves events from a queue in one database to a queue in another, exactly once",
		Help: `Config keys (TOML): src_db, dst_db, queue, dst_queue, consumer, min_count, min_interval,
min_lag, fetch_size, sort_buffer_mb, loop_delay, position_table, metrics_listen, log_level.
The commands read the config file given with -c. See docs/queue-mover.md.`,
		Load:  LoadConfig,
		Relay: func(c *Config) *relay.Config { return &c.Config },
		NewHandler: func(c *Config, _ *zap.Logger, tally *relay.Tally) (pgq.Handler, error) {
			return NewHandler(c.DstQueue, tally), nil
		},
	}.CLI()
}
