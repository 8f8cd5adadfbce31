package ticker

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/pgq"
)

// adminCommands are pgqd's commands on one database (-d).
func adminCommands() []*cli.Command {
	return []*cli.Command{
		installCommand(),
		statusCommand(),
		{
			Name: "create-queue", Args: "QUEUE", MinArgs: 1, MaxArgs: 1,
			Summary: "create a queue (its event tables and first tick)",
			Run: withConn(func(ctx context.Context, env *cli.Env, conn *pgx.Conn, args []string) error {
				created, err := pgq.CreateQueue(ctx, conn, args[0])
				if err != nil {
					return err
				}
				say(env, created, "queue %s created", "queue %s already exists", args[0])
				return nil
			}),
		},
		dropQueueCommand(),
		{
			Name: "register", Args: "QUEUE CONSUMER", MinArgs: 2, MaxArgs: 2,
			Summary: "register a consumer on a queue at its latest tick",
			Run: withConn(func(ctx context.Context, env *cli.Env, conn *pgx.Conn, args []string) error {
				created, err := pgq.Register(ctx, conn, args[0], args[1])
				if err != nil {
					return err
				}
				say(env, created, "consumer %[2]s registered on queue %[1]s", "consumer %[2]s was already registered on queue %[1]s (position unchanged)", args[0], args[1])
				return nil
			}),
		},
		{
			Name: "unregister", Args: "QUEUE CONSUMER", MinArgs: 2, MaxArgs: 2,
			Summary: "unregister a consumer (drops its position and pending retries)",
			Run: withConn(func(ctx context.Context, env *cli.Env, conn *pgx.Conn, args []string) error {
				removed, err := pgq.Unregister(ctx, conn, args[0], args[1])
				if err != nil {
					return err
				}
				say(env, removed, "consumer %[2]s unregistered from queue %[1]s", "consumer %[2]s was not registered on queue %[1]s", args[0], args[1])
				return nil
			}),
		},
		{
			Name: "set-queue", Args: "QUEUE PARAM VALUE", MinArgs: 3, MaxArgs: 3,
			Summary: "change a queue setting (ticker_max_count, ticker_max_lag, ...)",
			Help: `PARAM is one of ticker_max_count (events), ticker_max_lag, ticker_idle_period,
rotation_period (intervals such as "3 seconds"), ticker_paused, external_ticker
(true/false). For example, to tick as soon as an event arrives:

  pgqd -d app set-queue orders ticker_max_lag 0`,
			Run: withConn(func(ctx context.Context, env *cli.Env, conn *pgx.Conn, args []string) error {
				param := strings.TrimPrefix(args[1], "queue_")
				if err := pgq.SetQueueParam(ctx, conn, args[0], param, args[2]); err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "queue %s: %s = %s\n", args[0], param, args[2])
				return nil
			}),
		},
		tickCommand(),
	}
}

// withConn opens the -d connection around a command.
func withConn(run func(ctx context.Context, env *cli.Env, conn *pgx.Conn, args []string) error) func(context.Context, *cli.Env, []string) error {
	return func(ctx context.Context, env *cli.Env, args []string) error {
		conn, err := env.Connect(ctx)
		if err != nil {
			return err
		}
		defer conn.Close(context.WithoutCancel(ctx))
		return run(ctx, env, conn, args)
	}
}

func say(env *cli.Env, did bool, yes, no string, args ...any) {
	msg := no
	if did {
		msg = yes
	}
	fmt.Fprintf(env.Stdout, msg+"\n", args...)
}

func dropQueueCommand() *cli.Command {
	var force bool
	return &cli.Command{
		Name: "drop-queue", Args: "QUEUE [--force]", MinArgs: 1, MaxArgs: 1,
		Summary: "drop a queue and all its events",
		Help:    "Refuses while consumers are registered, unless --force, which unregisters them.",
		Flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&force, "force", false, "unregister the queue's consumers first")
		},
		Run: withConn(func(ctx context.Context, env *cli.Env, conn *pgx.Conn, args []string) error {
			if err := pgq.DropQueue(ctx, conn, args[0], force); err != nil {
				if errors.Is(err, pgq.ErrQueueInUse) {
					return fmt.Errorf("%w (use --force to unregister them)", err)
				}
				return err
			}
			fmt.Fprintf(env.Stdout, "queue %s dropped\n", args[0])
			return nil
		}),
	}
}

func tickCommand() *cli.Command {
	timeout := 30 * time.Second
	return &cli.Command{
		Name: "tick", Args: "QUEUE [--timeout 30s]", MinArgs: 1, MaxArgs: 1,
		Summary: "force a tick now and wait until pgqd has made it",
		Help: `Asks for a tick regardless of the queue's ticker thresholds (pgq.force_tick) and
waits for the running pgqd to make it, then prints the new tick id. It never ticks by
itself: two tickers on one queue are unsafe. Fails after --timeout if no tick came (is
pgqd running for this database, and is the queue paused?).`,
		Flags: func(fs *flag.FlagSet) {
			fs.DurationVar(&timeout, "timeout", timeout, "how long to wait for the tick")
		},
		Run: withConn(func(ctx context.Context, env *cli.Env, conn *pgx.Conn, args []string) error {
			q := args[0]
			info, err := pgq.GetQueueInfo(ctx, conn, q)
			if err != nil {
				return err
			}
			if info.TickerPaused || info.ExternalTicker {
				return fmt.Errorf("queue %s: ticker is paused or external; no tick will come", q)
			}
			last, err := pgq.ForceTick(ctx, conn, q)
			if err != nil {
				return err
			}
			deadline := time.Now().Add(timeout)
			for {
				info, err := pgq.GetQueueInfo(ctx, conn, q)
				if err != nil {
					return err
				}
				if info.LastTick > last {
					fmt.Fprintf(env.Stdout, "queue %s: tick %d\n", q, info.LastTick)
					return nil
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("queue %s: no tick within %s: is pgqd running for this database?", q, timeout)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(10 * time.Millisecond):
				}
			}
		}),
	}
}

// statusReport is what `pgqd status` shows; its JSON form is for scripts.
type statusReport struct {
	Database  string           `json:"database"`
	PgQ       pgqReport        `json:"pgq"`
	Queues    []queueReport    `json:"queues"`
	Consumers []consumerReport `json:"consumers"`
}

type pgqReport struct {
	Flavor  string `json:"flavor"`
	Version string `json:"version"`
	Coop    bool   `json:"coop"`
}

type queueReport struct {
	Name             string  `json:"name"`
	TickerLagSeconds float64 `json:"ticker_lag_seconds"`
	EventsPerSecond  float64 `json:"events_per_second"`
	PendingEvents    int64   `json:"pending_events"`
	LastTick         int64   `json:"last_tick"`
	CurTable         int     `json:"cur_table"`
	NTables          int     `json:"ntables"`
	Paused           bool    `json:"ticker_paused"`
	External         bool    `json:"external_ticker"`
	Consumers        int     `json:"consumers"`
}

type consumerReport struct {
	Queue           string  `json:"queue"`
	Name            string  `json:"name"`
	LagSeconds      float64 `json:"lag_seconds"`
	LastSeenSeconds float64 `json:"last_seen_seconds"`
	PendingEvents   int64   `json:"pending_events"`
	LastTick        int64   `json:"last_tick"`
	CurrentBatch    int64   `json:"current_batch,omitempty"`
}

func statusCommand() *cli.Command {
	var asJSON bool
	return &cli.Command{
		Name: "status", Args: "[--json]", MaxArgs: 0,
		Summary: "show queues (ticker lag, ev/s, pending) and consumers (lag, last seen, pending)",
		Flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&asJSON, "json", false, "print JSON for scripts")
		},
		Run: withConn(func(ctx context.Context, env *cli.Env, conn *pgx.Conn, _ []string) error {
			r, err := buildStatus(ctx, conn)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(env.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			return r.write(env.Stdout)
		}),
	}
}

func buildStatus(ctx context.Context, conn *pgx.Conn) (statusReport, error) {
	r := statusReport{Database: conn.Config().Database, Queues: []queueReport{}, Consumers: []consumerReport{}}
	inst, err := pgq.Detect(ctx, conn)
	if err != nil {
		return r, err
	}
	r.PgQ = pgqReport{Flavor: inst.Flavor.String(), Version: inst.Version, Coop: inst.Coop}
	if inst.Flavor == pgq.NotInstalled {
		return r, fmt.Errorf("database %s: no pgq schema (install it with: pgqd -d %s install)", r.Database, r.Database)
	}
	qs, err := pgq.Queues(ctx, conn)
	if err != nil {
		return r, err
	}
	cs, err := pgq.Consumers(ctx, conn, "")
	if err != nil {
		return r, err
	}
	perQueue := map[string]int{}
	for _, c := range cs {
		perQueue[c.Queue]++
		r.Consumers = append(r.Consumers, consumerReport{
			Queue: c.Queue, Name: c.Consumer, LagSeconds: c.Lag.Seconds(), LastSeenSeconds: c.LastSeen.Seconds(),
			PendingEvents: c.PendingEvents, LastTick: c.LastTick, CurrentBatch: c.CurrentBatch,
		})
	}
	for _, q := range qs {
		r.Queues = append(r.Queues, queueReport{
			Name: q.Name, TickerLagSeconds: q.TickerLag.Seconds(), EventsPerSecond: q.EventsPerSec,
			PendingEvents: q.NewEvents, LastTick: q.LastTick, CurTable: q.CurTable, NTables: q.NTables,
			Paused: q.TickerPaused, External: q.ExternalTicker, Consumers: perQueue[q.Name],
		})
	}
	return r, nil
}

// write prints the report as two aligned tables.
func (r statusReport) write(w io.Writer) error {
	coop := ""
	if r.PgQ.Coop {
		coop = ", pgq_coop"
	}
	version := r.PgQ.Version
	if version == "" {
		version = "version unknown"
	}
	fmt.Fprintf(w, "database %s: pgq %s (%s)%s\n\n", r.Database, version, r.PgQ.Flavor, coop)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(r.Queues) == 0 {
		fmt.Fprintln(tw, "no queues")
	} else {
		fmt.Fprintln(tw, "QUEUE\tTICKER LAG\tEV/S\tPENDING\tLAST TICK\tTABLE\tCONSUMERS\tTICKER")
		for _, q := range r.Queues {
			state := "running"
			switch {
			case q.Paused:
				state = "paused"
			case q.External:
				state = "external"
			}
			fmt.Fprintf(tw, "%s\t%s\t%.1f\t%d\t%d\t%d/%d\t%d\t%s\n", q.Name, seconds(q.TickerLagSeconds),
				q.EventsPerSecond, q.PendingEvents, q.LastTick, q.CurTable+1, q.NTables, q.Consumers, state)
		}
	}
	fmt.Fprintln(tw)
	if len(r.Consumers) == 0 {
		fmt.Fprintln(tw, "no consumers")
	} else {
		fmt.Fprintln(tw, "QUEUE\tCONSUMER\tLAG\tLAST SEEN\tPENDING\tBATCH")
		for _, c := range r.Consumers {
			batch := "-"
			if c.CurrentBatch != 0 {
				batch = fmt.Sprint(c.CurrentBatch)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", c.Queue, c.Name, seconds(c.LagSeconds), seconds(c.LastSeenSeconds), c.PendingEvents, batch)
		}
	}
	return tw.Flush()
}

// seconds formats a duration in seconds compactly: "0.4s", "12s", "3m20s", "5h1m".
func seconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
}
