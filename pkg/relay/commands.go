package relay

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/skytools-go/skytools/pkg/cli"
	"github.com/skytools-go/skytools/pkg/pgq"
)

// Commands are the admin commands of a relay tool. They read src_db, dst_db, queue
// and consumer from the config file given with -c.
func Commands[C any](tool Tool[C]) []*cli.Command {
	load := tool.Load
	with := func(run func(ctx context.Context, env *cli.Env, a *admin) error) func(context.Context, *cli.Env, []string) error {
		return func(ctx context.Context, env *cli.Env, _ []string) error {
			if env.ConfigPath == "" {
				return cli.Usagef("no config file: run %s -c FILE COMMAND", env.Tool)
			}
			cfg, err := load(env.ConfigPath)
			if err != nil {
				return err
			}
			a, err := newAdmin(tool.Name, tool.Relay(cfg))
			if err != nil {
				return err
			}
			defer a.close()
			return run(ctx, env, a)
		}
	}
	var asJSON bool
	return []*cli.Command{
		{
			Name: "register", MaxArgs: 0,
			Summary: "register the consumer on the source queue, starting at its latest tick",
			Help: `Registers the consumer (consumer key, default the config file's base name) on the
source queue. A new registration starts at the queue's latest tick: events before it
are not moved. The destination's stored position, left over from an earlier
registration, is cleared with it, since it no longer means anything.`,
			Run: with(func(ctx context.Context, env *cli.Env, a *admin) error {
				created, err := a.consumer.Register(ctx)
				if err != nil {
					return err
				}
				if !created {
					fmt.Fprintf(env.Stdout, "consumer %s was already registered on queue %s (position unchanged)\n", a.cfg.Consumer, a.cfg.Queue)
					return nil
				}
				if err := a.consumer.ResetPosition(ctx); err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "consumer %s registered on queue %s\n", a.cfg.Consumer, a.cfg.Queue)
				return nil
			}),
		},
		{
			Name: "unregister", MaxArgs: 0,
			Summary: "unregister the consumer and forget its position in the destination",
			Help: `Removes the consumer's registration from the source queue (PgQ stops keeping events
for it) and its stored position from the destination database.`,
			Run: with(func(ctx context.Context, env *cli.Env, a *admin) error {
				removed, err := a.consumer.Unregister(ctx)
				if err != nil {
					return err
				}
				if err := a.consumer.ResetPosition(ctx); err != nil {
					return err
				}
				if removed {
					fmt.Fprintf(env.Stdout, "consumer %s unregistered from queue %s\n", a.cfg.Consumer, a.cfg.Queue)
				} else {
					fmt.Fprintf(env.Stdout, "consumer %s was not registered on queue %s\n", a.cfg.Consumer, a.cfg.Queue)
				}
				return nil
			}),
		},
		{
			Name: "status", Args: "[--json]", MaxArgs: 0,
			Summary: "show the consumer's lag and pending events, and whether source and destination agree",
			Flags: func(fs *flag.FlagSet) {
				fs.BoolVar(&asJSON, "json", false, "print JSON for scripts")
			},
			Run: with(func(ctx context.Context, env *cli.Env, a *admin) error {
				s, err := a.status(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(env.Stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(s)
				}
				return s.write(env.Stdout)
			}),
		},
		{
			Name: "rewind", MaxArgs: 0,
			Summary: "move the source position back to the tick stored in the destination",
			Help: `The repair for "lost position" when the destination is right, for example after it
was restored from a backup: the consumer is re-registered on the source at the tick
the destination has applied, so the batches after it are applied again. The source
must still have that tick.`,
			Run: with(func(ctx context.Context, env *cli.Env, a *admin) error {
				if err := a.consumer.Rewind(ctx); err != nil {
					return err
				}
				tick, _, err := a.consumer.Position(ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "consumer %s on queue %s rewound to tick %d\n", a.cfg.Consumer, a.cfg.Queue, tick)
				return nil
			}),
		},
		{
			Name: "reset", MaxArgs: 0,
			Summary: "forget the position stored in the destination",
			Help: `The repair for "lost position" when the source is right: the destination forgets its
tick, and the next batch is applied from wherever the consumer stands in the source.
Events between the two positions are neither applied again nor recovered.`,
			Run: with(func(ctx context.Context, env *cli.Env, a *admin) error {
				if err := a.consumer.ResetPosition(ctx); err != nil {
					return err
				}
				fmt.Fprintf(env.Stdout, "destination position of consumer %s on queue %s cleared\n", a.cfg.Consumer, a.cfg.Queue)
				return nil
			}),
		},
	}
}

// admin is a consumer handle for the commands (it never runs).
type admin struct {
	cfg      *Config
	src, dst *pgxpool.Pool
	consumer *pgq.Consumer
}

func newAdmin(tool string, cfg *Config) (*admin, error) {
	src, err := NewPool(cfg.SrcDB, tool)
	if err != nil {
		return nil, fmt.Errorf("src_db: %w", err)
	}
	dst, err := NewPool(cfg.DstDB, tool)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("dst_db: %w", err)
	}
	pc := cfg.consumerConfig()
	pc.Target = dst
	c, err := pgq.NewConsumer(src, pc, pgq.HandlerFunc(func(context.Context, *pgq.Batch) error {
		return errors.New("admin commands do not consume")
	}))
	if err != nil {
		src.Close()
		dst.Close()
		return nil, err
	}
	return &admin{cfg: cfg, src: src, dst: dst, consumer: c}, nil
}

func (a *admin) close() {
	a.src.Close()
	a.dst.Close()
}

// Status is what the status command reports.
type Status struct {
	Queue         string  `json:"queue"`
	Consumer      string  `json:"consumer"`
	Registered    bool    `json:"registered"`
	LagSeconds    float64 `json:"lag_seconds"`
	LastSeenSec   float64 `json:"last_seen_seconds"`
	PendingEvents int64   `json:"pending_events"`
	SourceTick    int64   `json:"source_tick"`
	CurrentBatch  int64   `json:"current_batch,omitempty"`
	BatchEndTick  int64   `json:"batch_end_tick,omitempty"`
	TargetTick    *int64  `json:"target_tick"`
	// State: "in sync", "batch applied, not yet finished", "no position yet",
	// "not registered" or "LOST POSITION: ...".
	State string `json:"state"`
}

// status reads the source, then the destination, then the source again: a running
// daemon may move on in between, but the destination's tick can only match the
// source's state before or after it moved.
func (a *admin) status(ctx context.Context) (Status, error) {
	first, err := a.sourceStatus(ctx)
	if err != nil {
		return first, err
	}
	tick, ok, err := a.consumer.Position(ctx)
	if err != nil {
		return first, err
	}
	second, err := a.sourceStatus(ctx)
	if err != nil {
		return second, err
	}
	var s Status
	for _, s = range []Status{second, first} {
		if ok {
			s.TargetTick = &tick
		}
		switch {
		case !s.Registered:
			s.State = "not registered"
		case !ok:
			s.State = "no position yet"
		case tick == s.SourceTick:
			s.State = "in sync"
		case s.CurrentBatch != 0 && tick == s.BatchEndTick:
			s.State = "batch applied, not yet finished"
		default:
			s.State = fmt.Sprintf("LOST POSITION: the destination has tick %d, the source is at tick %d; see rewind and reset", tick, s.SourceTick)
			continue
		}
		return s, nil
	}
	return s, nil // lost by both readings
}

func (a *admin) sourceStatus(ctx context.Context) (Status, error) {
	s := Status{Queue: a.cfg.Queue, Consumer: a.cfg.Consumer}
	info, err := pgq.GetConsumerInfo(ctx, a.src, a.cfg.Queue, a.cfg.Consumer)
	switch {
	case errors.Is(err, pgq.ErrNotSubscribed):
	case err != nil:
		return s, err
	default:
		s.Registered = true
		s.LagSeconds, s.LastSeenSec = info.Lag.Seconds(), info.LastSeen.Seconds()
		s.PendingEvents, s.SourceTick = info.PendingEvents, info.LastTick
		s.CurrentBatch, s.BatchEndTick = info.CurrentBatch, info.NextTick
	}
	return s, nil
}

func (s Status) write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "queue\t%s\n", s.Queue)
	fmt.Fprintf(tw, "consumer\t%s\n", s.Consumer)
	if s.Registered {
		fmt.Fprintf(tw, "lag\t%.1fs\n", s.LagSeconds)
		fmt.Fprintf(tw, "last seen\t%.1fs ago\n", s.LastSeenSec)
		fmt.Fprintf(tw, "pending events\t%d\n", s.PendingEvents)
		fmt.Fprintf(tw, "source tick\t%d\n", s.SourceTick)
		if s.CurrentBatch != 0 {
			fmt.Fprintf(tw, "current batch\t%d (to tick %d)\n", s.CurrentBatch, s.BatchEndTick)
		}
	}
	if s.TargetTick != nil {
		fmt.Fprintf(tw, "destination tick\t%d\n", *s.TargetTick)
	} else {
		fmt.Fprintf(tw, "destination tick\t-\n")
	}
	fmt.Fprintf(tw, "state\t%s\n", s.State)
	return tw.Flush()
}
