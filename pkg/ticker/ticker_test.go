package ticker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/skytools-go/skytools/pkg/lifecycle"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/pgtest"
	"github.com/skytools-go/skytools/pkg/schema"
	"go.uber.org/zap/zaptest"
)

// flavour is one PgQ implementation pgqd must drive.
type flavour struct {
	name    string
	install func(ctx context.Context, conn *pgx.Conn) error
	shared  *pgtest.Shared
}

func newFlavour(name string, install func(context.Context, *pgx.Conn) error) flavour {
	return flavour{name: name, install: install, shared: pgtest.NewShared().WithTemplate(install)}
}

var flavours = []flavour{
	newFlavour("ours", installOurs),
	newFlavour("original", pgtest.CreateExtension("pgq")),
}

// installOurs installs skytools' PgQ as `pgqd install` does.
func installOurs(ctx context.Context, conn *pgx.Conn) error {
	_, err := schema.InstallPgQ(ctx, conn)
	return err
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, f := range flavours {
		if err := f.shared.Close(); err != nil {
			fmt.Println(err)
			code = 1
		}
	}
	os.Exit(code)
}

// eachFlavour runs the test once per PgQ implementation.
func eachFlavour(t *testing.T, fn func(t *testing.T, f flavour)) {
	for _, f := range flavours {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			fn(t, f)
		})
	}
}

// baseConnstr is the connection string of a cluster without dbname.
func baseConnstr(c *pgtest.Cluster) string {
	return fmt.Sprintf("host=%s port=%d user=postgres sslmode=disable", c.SockDir, c.Port)
}

func testConfig(c *pgtest.Cluster, dbs ...string) Config {
	cfg := DefaultConfig()
	cfg.Connstr = baseConnstr(c)
	cfg.Databases = dbs
	cfg.TickerPeriod = lifecycle.Duration(20 * time.Millisecond)
	cfg.MaintPeriod = lifecycle.Duration(time.Second)
	cfg.RetryPeriod = lifecycle.Duration(time.Second)
	cfg.CheckPeriod = lifecycle.Duration(time.Second)
	return cfg
}

type running struct {
	d      *Daemon
	cancel context.CancelFunc
	errc   chan error
	ended  bool  // Run has returned, with err
	err    error // what Run returned
}

// wait waits up to timeout for Run to return; ended is false when it has not. Once
// it has, wait returns its error again at once.
func (r *running) wait(timeout time.Duration) (ended bool, err error) {
	if !r.ended {
		select {
		case r.err = <-r.errc:
			r.ended = true
		case <-time.After(timeout):
			return false, nil
		}
	}
	return true, r.err
}

// runDaemon runs pgqd in-process until the test ends.
func runDaemon(t *testing.T, cfg Config) *running {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	log := zaptest.NewLogger(t)
	h := &lifecycle.Host{Log: log, Notify: lifecycle.NewNotifier(log), Watchdog: lifecycle.NewWatchdog(log), Metrics: prometheus.NewRegistry()}
	d, err := New(&cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, cancel: cancel, errc: make(chan error, 1)}
	go func() { r.errc <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if r.ended {
			return // the test saw Run return, and checked its error
		}
		if ended, err := r.wait(30 * time.Second); !ended {
			t.Error("pgqd did not stop within 30s")
		} else if err != nil {
			t.Errorf("pgqd Run: %v", err)
		}
	})
	return r
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last error: %v)", what, timeout, lastErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func exec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// createFastQueue creates a queue that ticks on every ticker call.
func createFastQueue(t *testing.T, conn *pgx.Conn, q string) {
	t.Helper()
	exec(t, conn, "SELECT pgq.create_queue($1)", q)
	exec(t, conn, "SELECT pgq.set_queue_config($1, 'ticker_max_lag', '0')", q)
	exec(t, conn, "SELECT pgq.set_queue_config($1, 'ticker_idle_period', '0')", q)
}

func lastTick(conn *pgx.Conn, q string) (int64, error) {
	var id *int64
	err := conn.QueryRow(context.Background(), "SELECT last_tick_id FROM pgq.get_queue_info($1)", q).Scan(&id)
	if err != nil || id == nil {
		return 0, err
	}
	return *id, nil
}

func ticksPast(t *testing.T, conn *pgx.Conn, q string, past int64) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("queue %s ticks past %d", q, past), func() (bool, error) {
		id, err := lastTick(conn, q)
		return id > past, err
	})
}

// batchEvents takes the consumer's next batch, returns its event data and finishes it.
// ok is false when there was no batch.
func batchEvents(t *testing.T, conn *pgx.Conn, q, c string) (data []string, ok bool) {
	t.Helper()
	ctx := context.Background()
	var batch *int64
	if err := conn.QueryRow(ctx, "SELECT pgq.next_batch($1, $2)", q, c).Scan(&batch); err != nil {
		t.Fatalf("next_batch: %v", err)
	}
	if batch == nil {
		return nil, false
	}
	rows, err := conn.Query(ctx, "SELECT ev_data FROM pgq.get_batch_events($1)", *batch)
	if err != nil {
		t.Fatal(err)
	}
	data, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	exec(t, conn, "SELECT pgq.finish_batch($1)", *batch)
	return data, true
}

func TestTicksQueuesAndNotifiesConsumers(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		ctx := context.Background()
		db := f.shared.DB(t)
		conn := db.Conn(t)
		createFastQueue(t, conn, "orders")
		exec(t, conn, "SELECT pgq.register_consumer('orders', 'c1')")

		listener := db.Conn(t)
		exec(t, listener, "LISTEN "+pgx.Identifier{pgq.TickChannel("orders")}.Sanitize())

		r := runDaemon(t, testConfig(db.Cluster, db.Name))
		exec(t, conn, "SELECT pgq.insert_event('orders', 'order', 'first')")

		// Every new tick is announced on the queue's channel with its id.
		nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		n, err := listener.WaitForNotification(nctx)
		if err != nil {
			t.Fatalf("no tick notification: %v", err)
		}
		tick, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil || n.Channel != "pgq_tick.orders" {
			t.Fatalf("notification %+v", n)
		}
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pgq.tick t JOIN pgq.queue q ON q.queue_id = t.tick_queue WHERE q.queue_name = 'orders' AND t.tick_id = $1)", tick).Scan(&exists); err != nil || !exists {
			t.Fatalf("notified tick %d does not exist (%v)", tick, err)
		}

		var got []string
		waitFor(t, 30*time.Second, "the event in a batch", func() (bool, error) {
			evs, _ := batchEvents(t, conn, "orders", "c1")
			got = append(got, evs...)
			return len(got) > 0, nil
		})
		if strings.Join(got, ",") != "first" {
			t.Fatalf("events %q", got)
		}
		// Ticks are counted when the burst that made them reports back.
		waitFor(t, 10*time.Second, "pgqd_ticks_total counting the tick", func() (bool, error) {
			return testutil.ToFloat64(r.d.m.ticks.WithLabelValues(db.Name, "orders")) >= 1, nil
		})
		waitFor(t, 10*time.Second, "status line naming the queue", func() (bool, error) {
			return strings.HasPrefix(r.d.status(), "ticking 1 queues in 1 of 1 databases"), nil
		})
	})
}

func TestQueueCreatedWhileRunningStartsTicking(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		db := f.shared.DB(t)
		conn := db.Conn(t)
		createFastQueue(t, conn, "first")
		runDaemon(t, testConfig(db.Cluster, db.Name))
		ticksPast(t, conn, "first", 2)
		createFastQueue(t, conn, "later")
		ticksPast(t, conn, "later", 3)
		// Pausing a queue stops its ticks; dropping one does not disturb the others.
		exec(t, conn, "SELECT pgq.set_queue_config('first', 'ticker_paused', 'true')")
		exec(t, conn, "SELECT pgq.drop_queue('later')")
		createFastQueue(t, conn, "third")
		ticksPast(t, conn, "third", 3)
	})
}

// An insert that took its event id before a tick but committed after it is ticked on
// the next pass, even when PgQ's own rules would call the queue idle for an hour.
func TestInFlightInsertIsTickedPromptly(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		ctx := context.Background()
		db := f.shared.DB(t)
		conn := db.Conn(t)
		exec(t, conn, "SELECT pgq.create_queue('q')")
		exec(t, conn, "SELECT pgq.set_queue_config('q', 'ticker_max_count', '1')")
		exec(t, conn, "SELECT pgq.set_queue_config('q', 'ticker_max_lag', '1 hour')")
		exec(t, conn, "SELECT pgq.set_queue_config('q', 'ticker_idle_period', '1 hour')")
		runDaemon(t, testConfig(db.Cluster, db.Name))
		ticksPast(t, conn, "q", 1)
		exec(t, conn, "SELECT pgq.register_consumer('q', 'c')")
		// A fresh sequence's first nextval leaves last_value where it was, so PgQ never
		// counts the first insert as activity: only the committed-events check can tick
		// it. It also warms the sequence up for the in-flight insert below.
		exec(t, conn, "SELECT pgq.insert_event('q', 't', 'warm-up')")
		var warm []string
		waitFor(t, 30*time.Second, "the warm-up event delivered", func() (bool, error) {
			evs, _ := batchEvents(t, conn, "q", "c")
			warm = append(warm, evs...)
			return len(warm) > 0, nil
		})
		before, err := lastTick(conn, "q")
		if err != nil {
			t.Fatal(err)
		}

		producer := db.Conn(t)
		tx, err := producer.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT pgq.insert_event('q', 't', 'in flight')"); err != nil {
			t.Fatal(err)
		}
		// The sequence moved, so the ticker ticks while the insert is uncommitted...
		ticksPast(t, conn, "q", before)
		if evs, ok := batchEvents(t, conn, "q", "c"); !ok || len(evs) != 0 {
			t.Fatalf("batch before commit: %q %v", evs, ok)
		}
		inFlightTick, _ := lastTick(conn, "q")
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		// ...and, now that it committed, once more although the sequence did not move.
		ticksPast(t, conn, "q", inFlightTick)
		var got []string
		waitFor(t, 10*time.Second, "the in-flight event delivered", func() (bool, error) {
			evs, _ := batchEvents(t, conn, "q", "c")
			got = append(got, evs...)
			return len(got) > 0, nil
		})
		if strings.Join(got, ",") != "in flight" {
			t.Fatalf("events %q", got)
		}
	})
}

func TestRotationFollowsConsumersAndStopsForAStalledOne(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		ctx := context.Background()
		db := f.shared.DB(t)
		conn := db.Conn(t)
		for _, q := range []string{"active", "stalled"} {
			createFastQueue(t, conn, q)
			exec(t, conn, "SELECT pgq.set_queue_config($1, 'rotation_period', '1 second')", q)
			exec(t, conn, "SELECT pgq.register_consumer($1, 'c')", q)
		}
		runDaemon(t, testConfig(db.Cluster, db.Name))
		curTable := func(q string) (int, error) {
			var n int
			err := conn.QueryRow(ctx, "SELECT queue_cur_table FROM pgq.get_queue_info($1)", q).Scan(&n)
			return n, err
		}
		changes, last := 0, 0
		waitFor(t, 60*time.Second, "two rotations of the consumed queue", func() (bool, error) {
			exec(t, conn, "SELECT pgq.insert_event('active', 't', 'x')")
			batchEvents(t, conn, "active", "c")
			n, err := curTable("active")
			if err != nil {
				return false, err
			}
			if n != last {
				changes, last = changes+1, n
			}
			return changes >= 2, nil
		})
		if n, err := curTable("stalled"); err != nil || n != 0 {
			t.Fatalf("queue with a stalled consumer rotated to table %d (%v)", n, err)
		}
	})
}

func TestRetryEventsComeBack(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		ctx := context.Background()
		db := f.shared.DB(t)
		conn := db.Conn(t)
		createFastQueue(t, conn, "q")
		exec(t, conn, "SELECT pgq.register_consumer('q', 'c')")
		r := runDaemon(t, testConfig(db.Cluster, db.Name))
		exec(t, conn, "SELECT pgq.insert_event('q', 't', 'again')")
		var batch int64
		waitFor(t, 30*time.Second, "a batch with the event", func() (bool, error) {
			var b *int64
			if err := conn.QueryRow(ctx, "SELECT pgq.next_batch('q', 'c')").Scan(&b); err != nil || b == nil {
				return false, err
			}
			var id *int64
			if err := conn.QueryRow(ctx, "SELECT ev_id FROM pgq.get_batch_events($1)", *b).Scan(&id); err != nil {
				if errors.Is(err, pgx.ErrNoRows) {
					exec(t, conn, "SELECT pgq.finish_batch($1)", *b)
					return false, nil
				}
				return false, err
			}
			exec(t, conn, "SELECT pgq.event_retry($1, $2, 0)", *b, *id)
			exec(t, conn, "SELECT pgq.finish_batch($1)", *b)
			batch = *b
			return true, nil
		})
		var retried []string
		waitFor(t, 30*time.Second, "the retried event back in a batch", func() (bool, error) {
			var b *int64
			if err := conn.QueryRow(ctx, "SELECT pgq.next_batch('q', 'c')").Scan(&b); err != nil || b == nil {
				return false, err
			}
			rows, err := conn.Query(ctx, "SELECT ev_data || ':' || ev_retry FROM pgq.get_batch_events($1)", *b)
			if err != nil {
				return false, err
			}
			evs, err := pgx.CollectRows(rows, pgx.RowTo[string])
			exec(t, conn, "SELECT pgq.finish_batch($1)", *b)
			retried = append(retried, evs...)
			return len(retried) > 0, err
		})
		if strings.Join(retried, ",") != "again:1" || batch == 0 {
			t.Fatalf("retried events %q", retried)
		}
		waitFor(t, 10*time.Second, "pgqd_retry_events_total counting the move", func() (bool, error) {
			return testutil.ToFloat64(r.d.m.retried.WithLabelValues(db.Name)) == 1, nil
		})
	})
}

// A low-latency queue (ticker_max_lag <= ticker_period) that is active gets its events
// ticked as soon as they commit, between regular ticker calls; a queue with PgQ's
// default thresholds never does.
func TestLowLatencyQueueIsTickedAsSoonAsEventsCommit(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		db := f.shared.DB(t)
		conn := db.Conn(t)
		// Low latency: tick whenever there are events. No idle ticks: one right after an
		// event's tick would start a new ticker_period spacing, and the event after it
		// would wait for the regular call.
		exec(t, conn, "SELECT pgq.create_queue('fast')")
		exec(t, conn, "SELECT pgq.set_queue_config('fast', 'ticker_max_lag', '0')")
		exec(t, conn, "SELECT pgq.set_queue_config('fast', 'ticker_idle_period', '1 hour')")
		exec(t, conn, "SELECT pgq.create_queue('batched')")
		cfg := testConfig(db.Cluster, db.Name)
		cfg.TickerPeriod = lifecycle.Duration(300 * time.Millisecond)
		r := runDaemon(t, cfg)
		early := func(q string) float64 { return testutil.ToFloat64(r.d.m.earlyTicks.WithLabelValues(db.Name, q)) }
		// Events 400ms apart: past each tick's 300ms spacing, and well within the
		// second in which the queue counts as active after its sequence moved (even on
		// a loaded machine). A regular call comes at a random moment in the next 300ms;
		// the watch, every 30ms, almost always ticks first.
		for i := 0; i < 5; i++ {
			before, _ := lastTick(conn, "fast")
			exec(t, conn, "SELECT pgq.insert_event('fast', 't', 'x')")
			exec(t, conn, "SELECT pgq.insert_event('batched', 't', 'x')")
			ticksPast(t, conn, "fast", before)
			time.Sleep(400 * time.Millisecond) // spacing the events, not waiting for a result
		}
		waitFor(t, 10*time.Second, "early ticks counted", func() (bool, error) { return early("fast") >= 1, nil })
		if n := early("batched"); n != 0 {
			t.Fatalf("queue with default thresholds got %v early ticks", n)
		}
	})
}

// A tick's time is when it was taken: a tick covering an event is never stamped
// earlier than the event's transaction began. (Inside a burst PostgreSQL starts each
// transaction at the previous COMMIT; a pass that slept in that transaction once
// stamped ticks up to a ticker_period too early, which also skewed PgQ's lag rules.)
func TestTickTimeIsWhenTheTickWasTaken(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		ctx := context.Background()
		db := f.shared.DB(t)
		conn := db.Conn(t)
		exec(t, conn, "SELECT pgq.create_queue('q')")
		exec(t, conn, "SELECT pgq.set_queue_config('q', 'ticker_max_lag', '0')")
		exec(t, conn, "SELECT pgq.register_consumer('q', 'c')")
		cfg := testConfig(db.Cluster, db.Name)
		cfg.TickerPeriod = lifecycle.Duration(400 * time.Millisecond)
		runDaemon(t, cfg)
		for i := 0; i < 4; i++ {
			exec(t, conn, "SELECT pgq.insert_event('q', 't', $1)", strconv.Itoa(i))
			var got bool
			waitFor(t, 30*time.Second, "event in a batch", func() (bool, error) {
				var batch *int64
				if err := conn.QueryRow(ctx, "SELECT pgq.next_batch('q', 'c')").Scan(&batch); err != nil || batch == nil {
					return false, err
				}
				var early int
				err := conn.QueryRow(ctx, `SELECT count(*) FROM pgq.get_batch_events($1) e, pgq.get_batch_info($1) b
					WHERE b.batch_end < e.ev_time`, *batch).Scan(&early)
				if err != nil {
					return false, err
				}
				if early > 0 {
					t.Fatalf("batch %d: its end tick is stamped before %d of its events began", *batch, early)
				}
				var n int
				if err := conn.QueryRow(ctx, "SELECT count(*) FROM pgq.get_batch_events($1)", *batch).Scan(&n); err != nil {
					return false, err
				}
				exec(t, conn, "SELECT pgq.finish_batch($1)", *batch)
				got = got || n > 0
				return got, nil
			})
			time.Sleep(150 * time.Millisecond) // spread the events over the period, not waiting for a result
		}
	})
}

// Queues can be dropped under a running pgqd: a tick pass never holds a queue's event
// tables while it ticks that queue, so pgq.drop_queue (queue row, then tables) cannot
// deadlock with it.
func TestDropQueueWhileTickingDoesNotDeadlock(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		ctx := context.Background()
		db := f.shared.DB(t)
		conn := db.Conn(t)
		producer := db.Conn(t)
		cfg := testConfig(db.Cluster, db.Name)
		cfg.TickerPeriod = lifecycle.Duration(10 * time.Millisecond)
		r := runDaemon(t, cfg)
		for i := 0; i < 15; i++ {
			q := fmt.Sprintf("churn_%d", i)
			exec(t, conn, "SELECT pgq.create_queue($1)", q)
			exec(t, conn, "SELECT pgq.set_queue_config($1, 'ticker_max_lag', '0')", q)
			exec(t, conn, "SELECT pgq.register_consumer($1, 'c')", q)
			// Keep the queue busy so that the millisecond watch probes its tables.
			for j := 0; j < 20; j++ {
				exec(t, producer, "SELECT pgq.insert_event($1, 't', 'x')", q)
			}
			before, _ := lastTick(conn, q)
			ticksPast(t, conn, q, before)
			if _, err := conn.Exec(ctx, "SELECT pgq.drop_queue($1, true)", q); err != nil {
				t.Fatalf("drop_queue(%s) under a running pgqd: %v", q, err)
			}
		}
		if n := testutil.ToFloat64(r.d.m.errors.WithLabelValues(db.Name)); n != 0 {
			t.Fatalf("pgqd had %v errors while queues were dropped", n)
		}
	})
}

// pgqd ticks through a temporary procedure, compiled once per set of queues; a role
// that may not create temporary objects still ticks, with DO blocks.
func TestTicksWithAndWithoutTemporaryProcedure(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		ctx := context.Background()
		db := f.shared.DB(t)
		conn := db.Conn(t)
		createFastQueue(t, conn, "q")
		role := "pgqd_" + strings.ReplaceAll(db.Name, "-", "_")
		exec(t, conn, "CREATE ROLE "+role+" LOGIN IN ROLE pgq_admin")
		exec(t, conn, "REVOKE TEMP ON DATABASE "+db.Name+" FROM PUBLIC")
		t.Cleanup(func() {
			c, err := db.Cluster.Connect(context.Background(), "postgres")
			if err == nil {
				_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db.Name+" WITH (FORCE)")
				_, _ = c.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
				c.Close(context.Background())
			}
		})
		activity := func() (string, error) {
			var q string
			err := conn.QueryRow(ctx, `SELECT left(query, 40) FROM pg_stat_activity
				WHERE datname = current_database() AND application_name = 'pgqd' AND query LIKE ANY (ARRAY['CALL %', 'DO %'])
				ORDER BY backend_start DESC LIMIT 1`).Scan(&q)
			return q, err
		}
		for _, c := range []struct {
			user, want string
		}{{"postgres", "CALL pg_temp.pgqd_burst("}, {role, "DO $pgqd$"}} {
			cfg := testConfig(db.Cluster, db.Name)
			cfg.Connstr = strings.Replace(cfg.Connstr, "user=postgres", "user="+c.user, 1)
			r := runDaemon(t, cfg)
			before, _ := lastTick(conn, "q")
			ticksPast(t, conn, "q", before+2)
			waitFor(t, 10*time.Second, "burst form "+c.want, func() (bool, error) {
				q, err := activity()
				return strings.HasPrefix(q, c.want), err
			})
			r.cancel()
			if ended, err := r.wait(30 * time.Second); !ended {
				t.Fatal("pgqd did not stop")
			} else if err != nil {
				t.Fatal(err)
			}
		}
	})
}
