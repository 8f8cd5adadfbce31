package pgq_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// listener is the backend that LISTENs on the queue's tick channel (pid 0 if none)
// and when its LISTEN started.
func listener(t *testing.T, pool *pgxpool.Pool, queue string) (pid int32, since time.Time) {
	err := pool.QueryRow(context.Background(), `SELECT pid, query_start FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN ' || quote_ident($1)`, pgq.TickChannel(queue)).Scan(&pid, &since)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		t.Fatal(err)
	}
	return pid, since
}

// idleAfterListening waits until the consumer's listener is connected (a backend
// other than notOld) and the consumer has polled since, so that from now on only a
// notification (or its hour-long loop delay) can wake it.
func idleAfterListening(t *testing.T, e *env, r *consumerRun, c *pgq.Consumer, notOld int32) int32 {
	t.Helper()
	var pid int32
	var since time.Time
	r.waitFor(30*time.Second, "the tick listener", func() bool {
		pid, since = listener(t, e.pool, e.queue)
		return pid != 0 && pid != notOld
	})
	r.waitFor(30*time.Second, "a poll after LISTEN", func() bool { return c.Stats().LastPollAt.After(since) })
	return pid
}

// idleConsumer starts consumer "c" that would poll only once an hour and waits until
// it listens and idles; it returns the listener's backend pid.
func (e *env) idleConsumer() (*pgq.Consumer, *consumerRun, int32) {
	e.t.Helper()
	cfg := fastConfig(e.queue, "c")
	cfg.LoopDelay = time.Hour // polling alone would not find a batch within the test
	c, err := pgq.NewConsumer(e.pool, cfg, &collector{})
	if err != nil {
		e.t.Fatal(err)
	}
	r := runConsumer(e.t, c)
	return c, r, idleAfterListening(e.t, e, r, c, 0)
}

func TestTickNotificationWakesAnIdleConsumer(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		e.register("c")
		c, r, _ := e.idleConsumer()

		e.produce(1)
		start := time.Now()
		tick := e.tick() // ticks and notifies, as pgqd does
		r.waitFor(30*time.Second, "the notified batch", func() bool { return c.Stats().LastTick >= tick })
		t.Logf("%s: tick to finished batch in %s", fl.name, time.Since(start))
	})
}

func TestListenerReconnectsAfterItsConnectionIsKilled(t *testing.T) {
	t.Parallel()
	e := setup(t, ours)
	e.register("c")
	c, r, old := e.idleConsumer()
	e.exec("SELECT pg_terminate_backend($1)", old)
	idleAfterListening(t, e, r, c, old)

	e.produce(1)
	tick := e.tick()
	r.waitFor(30*time.Second, "the batch announced to the new listener", func() bool { return c.Stats().LastTick >= tick })
}

func TestWithoutNotifyTheConsumerPolls(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		e.register("c")
		cfg := fastConfig(e.queue, "c")
		cfg.NoNotify = true
		c, err := pgq.NewConsumer(e.pool, cfg, &collector{})
		if err != nil {
			t.Fatal(err)
		}
		r := runConsumer(t, c)
		e.produce(1)
		tick := queryVal[int64](t, e.pool, "SELECT pgq.ticker('q')") // a tick without NOTIFY
		r.waitFor(30*time.Second, "the polled batch", func() bool { return c.Stats().LastTick >= tick })
		if pid, _ := listener(t, e.pool, e.queue); pid != 0 {
			t.Fatalf("NoNotify consumer has a listener (pid %d)", pid)
		}
	})
}

func TestConsumerSurvivesKilledConnections(t *testing.T) {
	t.Parallel()
	e := setup(t, ours)
	e.register("c")
	c, err := pgq.NewConsumer(e.pool, fastConfig(e.queue, "c"), &collector{})
	if err != nil {
		t.Fatal(err)
	}
	r := runConsumer(t, c)
	r.waitFor(30*time.Second, "the first poll", func() bool { return c.Stats().Ready })
	e.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
	e.produce(1)
	tick := e.tick()
	r.waitFor(30*time.Second, "a batch after the connections were killed", func() bool { return c.Stats().LastTick >= tick })
}

func TestConsumerReconnectsAfterServerRestart(t *testing.T) {
	t.Parallel()
	cl := pgtest.NewCluster(t, pgtest.Name("restart"))
	db := cl.DB(t)
	ctx := context.Background()
	conn := db.Conn(t)
	if err := installOurs(ctx, conn); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, pool: db.Pool(t), queue: "q"}
	if _, err := pgq.CreateQueue(ctx, e.pool, e.queue); err != nil {
		t.Fatal(err)
	}
	e.exec("SELECT pgq.set_queue_config('q', 'ticker_max_lag', '0'), pgq.set_queue_config('q', 'ticker_idle_period', '0')")
	e.register("c")
	var errs atomic.Int64
	cfg := fastConfig(e.queue, "c")
	cfg.Observer.Error = func(error) { errs.Add(1) }
	c, err := pgq.NewConsumer(e.pool, cfg, &collector{})
	if err != nil {
		t.Fatal(err)
	}
	r := runConsumer(t, c)
	r.waitFor(30*time.Second, "the first poll", func() bool { return c.Stats().Ready })
	if err := cl.Stop(); err != nil {
		t.Fatal(err)
	}
	r.waitFor(30*time.Second, "failed attempts while the server is down", func() bool { return errs.Load() >= 2 })
	if err := cl.StartAgain(ctx); err != nil {
		t.Fatal(err)
	}
	e.produce(1)
	tick := e.tick()
	r.waitFor(time.Minute, "a batch after the restart", func() bool { return c.Stats().LastTick >= tick })
	if s := c.Stats(); s.LastError == nil || s.Errors < 2 {
		t.Fatalf("stats after the outage: %d errors, last %v", s.Errors, s.LastError)
	}
}

// TestPgqdWakesTheConsumer runs the real pgqd (this project's, built from cmd/pgqd)
// against the queue: its NOTIFY after each tick is what brings the event to a
// consumer that would otherwise poll only once an hour.
func TestPgqdWakesTheConsumer(t *testing.T) {
	t.Parallel()
	bin := pgtest.Build(t, "pgqd")
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		e.register("c")
		ctx := context.Background()
		// Tick as soon as there is an event; idle ticks at the usual pace.
		if err := pgq.SetQueueParam(ctx, e.pool, e.queue, pgq.ParamTickerIdlePeriod, "1 minute"); err != nil {
			t.Fatal(err)
		}
		cl := e.db.Cluster
		cfgPath := filepath.Join(t.TempDir(), "pgqd.toml")
		conf := fmt.Sprintf("connstr = %q\ndatabases = [%q]\nticker_period = \"10ms\"\n",
			fmt.Sprintf("host=%s port=%d user=postgres sslmode=disable", cl.SockDir, cl.Port), e.db.Name)
		if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		pctx, stop := context.WithCancel(ctx)
		cmd := exec.CommandContext(pctx, bin, "-c", cfgPath)
		var out pgtest.Output
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			stop()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("pgqd output:\n%s", out.String())
			}
		})

		c, r, _ := e.idleConsumer()
		before := c.Stats().Batches
		start := time.Now()
		if _, err := pgq.Insert(ctx, e.pool, e.queue, pgq.NewEvent("t", "x")); err != nil {
			t.Fatal(err)
		}
		r.waitFor(30*time.Second, "pgqd's tick to bring the event", func() bool { return c.Stats().Events >= 1 })
		t.Logf("%s: insert to handled event in %s (%d batches meanwhile)", fl.name, time.Since(start), c.Stats().Batches-before)
	})
}
