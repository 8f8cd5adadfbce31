package dispatch

import (
	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/relay"
	"go.uber.org/zap"
)

// Tool is the dispatcher command line: the daemon and its admin commands.
func Tool() cli.Tool {
	return relay.Tool[Config]{
		Name:    "dispatcher",
		Summary: "applies trigger events of a queue to tables in another database: partitions, cubes or bulk loads",
		Help: `Config keys (TOML): mode (table, cube, bulk), on_bad_event, src_db, dst_db, queue,
consumer, min_count, min_interval, min_lag, fetch_size, sort_buffer_mb, loop_delay,
position_table, metrics_listen, log_level, and one [[table]] per source table with name, target,
part_field, part_period, part_template, keep. The commands read the config file
given with -c. See docs/dispatcher.md.`,
		Load:  LoadConfig,
		Relay: func(c *Config) *relay.Config { return &c.Config },
		NewHandler: func(c *Config, log *zap.Logger, tally *relay.Tally) (pgq.Handler, error) {
			return NewHandler(c, log, tally), nil
		},
	}.CLI()
}
