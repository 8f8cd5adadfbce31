package ticker

import (
	"context"
	"fmt"

	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/lifecycle"
	"github.com/skytools-go/skytools/pkg/schema"
)

// Tool is the pgqd command line: the daemon and its admin commands.
func Tool() cli.Tool {
	return cli.Tool{
		Name:        "pgqd",
		Summary:     "PgQ ticker and maintenance daemon",
		CheckConfig: cli.CheckConfig(LoadConfig),
		Daemon: func(ctx context.Context, env *cli.Env) error {
			return cli.RunDaemon(ctx, env, cli.DaemonSpec[Config]{
				Load:   LoadConfig,
				Common: func(c *Config) lifecycle.Common { return c.Common },
				New: func(cfg *Config, h *lifecycle.Host) (lifecycle.Daemon[Config], error) {
					return New(cfg, h)
				},
			})
		},
		Commands: adminCommands(),
		Help: `Config keys (TOML): connstr, initial_database, databases, ticker_period, maint_period,
retry_period, check_period, stats_period, connection_lifetime, fail_after, metrics_listen,
log_level. See docs/pgqd.md.`,
	}
}

func installCommand() *cli.Command {
	return &cli.Command{
		Name:    "install",
		Summary: "install or upgrade the pgq and pgq_coop schemas in the database",
		Help: `Installs skytools' PgQ (plain SQL and PL/pgSQL, no C extension) into the database
named by -d, or upgrades an older installation in place, keeping queues, events and
subscriptions. Runs in one transaction under an advisory lock; a second run changes
nothing. Refuses to touch a pgq schema that belongs to the C extension (CREATE
EXTENSION pgq): pgqd works with that one as it is.`,
		Run: func(ctx context.Context, env *cli.Env, _ []string) error {
			conn, err := env.Connect(ctx)
			if err != nil {
				return err
			}
			defer conn.Close(context.WithoutCancel(ctx))
			results, err := schema.InstallPgQ(ctx, conn)
			if err != nil {
				return fmt.Errorf("install into database %s: %w", conn.Config().Database, err)
			}
			for _, r := range results {
				fmt.Fprintln(env.Stdout, r)
			}
			return nil
		},
	}
}
