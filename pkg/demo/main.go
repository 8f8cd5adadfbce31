// Command demo is `make demo`: the PgQ quick start on one machine. It starts a
// throwaway PostgreSQL cluster under demo/ (as the postgres user when run as root),
// installs PgQ, starts bin/pgqd, creates a queue, runs a producer and a consumer
// written with pkg/pgq, prints live progress for a few seconds, then `pgqd status`,
// and stops everything. Ctrl-C stops it cleanly at any point.
//
// DEMO_DIR overrides where the cluster lives; DEMO_SECONDS how long events flow.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

const (
	queue    = "demo_events"
	consumer = "demo_consumer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		if ctx.Err() != nil {
			fmt.Println("\ninterrupted; everything stopped")
			return
		}
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	dir := os.Getenv("DEMO_DIR")
	if dir == "" {
		dir = filepath.Join(wd, "demo")
	}
	seconds := 8
	if s := os.Getenv("DEMO_SECONDS"); s != "" {
		if seconds, err = strconv.Atoi(s); err != nil || seconds < 1 {
			return fmt.Errorf("DEMO_SECONDS=%q: want a whole number of seconds", s)
		}
	}
	pgqd := filepath.Join(wd, "bin", "pgqd")
	if _, err := os.Stat(pgqd); err != nil {
		return fmt.Errorf("%s not built: run make demo (it builds first)", pgqd)
	}
	if os.Geteuid() == 0 {
		if blocked := unreachableBy("postgres", dir); blocked != "" {
			return fmt.Errorf("the PostgreSQL server runs as user postgres, which cannot enter %s; "+
				"run with DEMO_DIR=/var/tmp/skytools-demo make demo", blocked)
		}
	}

	step("starting a throwaway PostgreSQL cluster in %s", dir)
	os.Setenv(pgtest.EnvBaseDir, dir)
	cluster, err := pgtest.Start(ctx, pgtest.Name("demo"))
	if err != nil {
		return err
	}
	defer func() {
		step("stopping PostgreSQL and removing the cluster")
		if err := cluster.Destroy(); err != nil {
			fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		}
	}()
	admin, err := cluster.Connect(ctx, "postgres")
	if err != nil {
		return err
	}
	_, err = admin.Exec(ctx, "CREATE DATABASE demo")
	admin.Close(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	connstr := cluster.ConnString("demo")

	step("installing PgQ (pgqd -d demo install)")
	if out, err := exec.CommandContext(ctx, pgqd, "-d", connstr, "install").CombinedOutput(); err != nil {
		return fmt.Errorf("pgqd install: %v\n%s", err, out)
	}
	pool, err := pgxpool.New(ctx, connstr)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := pgq.CreateQueue(ctx, pool, queue); err != nil {
		return err
	}
	// Tick as soon as events arrive (instead of after 500 events or 3 seconds).
	if err := pgq.SetQueueParam(ctx, pool, queue, pgq.ParamTickerMaxLag, "0"); err != nil {
		return err
	}
	if _, err := pgq.Register(ctx, pool, queue, consumer); err != nil {
		return err
	}
	step("queue %s created, consumer %s registered", queue, consumer)

	step("starting pgqd (ticker_period 100ms)")
	stopPgqd, err := startPgqd(ctx, pgqd, dir, cluster)
	if err != nil {
		return err
	}
	defer stopPgqd()

	var produced, consumed, duplicates atomic.Int64
	var lastLag atomic.Int64
	var seenMu sync.Mutex
	seen := map[int]bool{}
	c, err := pgq.NewConsumer(pool, pgq.Config{Queue: queue, Consumer: consumer, LoopDelay: time.Second},
		pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
			for ev, err := range b.Events(ctx) {
				if err != nil {
					return err
				}
				var n int
				if _, err := fmt.Sscanf(ev.Data.String, `{"n": %d}`, &n); err != nil {
					return fmt.Errorf("event %d: unexpected payload %q", ev.ID, ev.Data.String)
				}
				seenMu.Lock()
				if seen[n] {
					duplicates.Add(1)
				}
				seen[n] = true
				seenMu.Unlock()
				consumed.Add(1)
				lastLag.Store(int64(time.Since(ev.Time)))
			}
			return nil
		}))
	if err != nil {
		return err
	}
	cctx, stopConsumer := context.WithCancel(ctx)
	consumerDone := make(chan error, 1)
	go func() { consumerDone <- c.Run(cctx) }()
	defer func() {
		stopConsumer()
		<-consumerDone
	}()

	step("producing ~400 events/s for %ds, consuming them as pgqd ticks (NOTIFY wakes the consumer)", seconds)
	pctx, stopProducer := context.WithTimeout(ctx, time.Duration(seconds)*time.Second)
	defer stopProducer()
	producerDone := make(chan error, 1)
	go func() { producerDone <- produce(pctx, pool, &produced) }()

	fmt.Printf("\n  %5s  %9s  %9s  %8s  %s\n", "time", "produced", "consumed", "behind", "event age at consumer")
	start := time.Now()
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	report := func() {
		p, cn := produced.Load(), consumed.Load()
		fmt.Printf("  %4.0fs  %9d  %9d  %8d  %s\n", time.Since(start).Seconds(), p, cn, p-cn,
			time.Duration(lastLag.Load()).Round(time.Millisecond))
	}
	producing := true
	for producing {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-producerDone:
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("producer: %w", err)
			}
			producing = false
		case <-progress.C:
			report()
		}
	}
	// Let the consumer catch up with the last events.
	deadline := time.Now().Add(10 * time.Second)
	for consumed.Load() < produced.Load() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	report()
	seenMu.Lock()
	distinct := len(seen)
	seenMu.Unlock()
	if int64(distinct) != produced.Load() || duplicates.Load() != 0 {
		return fmt.Errorf("the consumer saw %d distinct events of %d produced, %d twice", distinct, produced.Load(), duplicates.Load())
	}
	fmt.Println()

	step("pgqd -d demo status")
	out, err := exec.CommandContext(ctx, pgqd, "-d", connstr, "status").CombinedOutput()
	fmt.Println(string(out))
	if err != nil {
		return fmt.Errorf("pgqd status: %w", err)
	}
	step("all %d events produced were consumed, none twice; stopping", produced.Load())
	return nil
}

// produce inserts 20 events every 50ms, each batch in one transaction, until ctx ends.
func produce(ctx context.Context, pool *pgxpool.Pool, produced *atomic.Int64) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			for i := 0; i < 20; i++ {
				n++
				if _, err := pgq.Insert(ctx, tx, queue, pgq.NewEvent("demo", fmt.Sprintf(`{"n": %d}`, n))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		produced.Add(20)
	}
}

// startPgqd runs bin/pgqd on the demo database and returns how to stop it.
func startPgqd(ctx context.Context, bin, dir string, c *pgtest.Cluster) (func(), error) {
	cfg := filepath.Join(dir, "pgqd.toml")
	text := fmt.Sprintf("connstr = \"host=%s port=%d user=postgres\"\ndatabases = [\"demo\"]\nticker_period = \"100ms\"\nstats_period = \"5s\"\n", c.SockDir, c.Port)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "pgqd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "-c", cfg)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	fmt.Printf("    pgqd pid %d, config %s, log %s\n", cmd.Process.Pid, cfg, logPath)
	return func() {
		step("stopping pgqd")
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
	}, nil
}

// unreachableBy returns the first directory on the way to dir (which may not exist
// yet) that user cannot enter, or "".
func unreachableBy(user, dir string) string {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err == nil && st.Mode().Perm()&0o001 == 0 {
			// Not open to others; the owner might still be user, but the demo cannot
			// know without looking up groups: be conservative only for root's dirs.
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && sys.Uid == 0 {
				return p
			}
		}
		if p == "/" || p == "." {
			return ""
		}
	}
}

func step(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}
