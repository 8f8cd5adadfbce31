// Package relaytest is what the tests of queue-mover and dispatcher share: a source
// and a destination database on two separate PostgreSQL servers, with this project's
// PgQ or the original extension, a ticker, the daemons run as real processes under a
// systemd-like notify socket, and ways to stop them with kill -9 at chosen points of
// a batch.
package relaytest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/pgtest"
	"github.com/skytools-go/skytools/pkg/schema"
)

// InstallOurs installs this project's PgQ, as `pgqd install` does.
func InstallOurs(ctx context.Context, conn *pgx.Conn) error {
	_, err := schema.InstallPgQ(ctx, conn)
	return err
}

// Flavor is one PgQ implementation.
type Flavor struct {
	Name     string
	Original bool // the C extension (CREATE EXTENSION pgq)
}

var (
	// Ours is this project's PgQ.
	Ours = Flavor{Name: "ours"}
	// Original is the PgQ 3.5 extension as Debian packages it.
	Original = Flavor{Name: "original", Original: true}
)

// Servers are the two PostgreSQL servers of a test package: sources live on one,
// destinations on the other. Both templates carry our PgQ.
type Servers struct {
	Src, Dst *pgtest.Shared
}

// NewServers describes the servers; nothing starts until a test needs them.
func NewServers() *Servers {
	return &Servers{
		Src: pgtest.NewShared(pgtest.Name("src")).WithTemplate(InstallOurs),
		Dst: pgtest.NewShared(pgtest.Name("dst")).WithTemplate(InstallOurs),
	}
}

// Main runs the package's tests and stops both servers; call it from TestMain.
func (s *Servers) Main(m *testing.M) int {
	code := m.Run()
	for _, sh := range []*pgtest.Shared{s.Src, s.Dst} {
		if err := sh.Close(); err != nil {
			fmt.Println(err)
			code = 1
		}
	}
	return code
}

// DB returns a fresh database on sh with PgQ of the flavor.
func DB(t *testing.T, sh *pgtest.Shared, fl Flavor) *pgtest.Database {
	t.Helper()
	if !fl.Original {
		return sh.DB(t)
	}
	c := sh.Cluster(t)
	db := c.DB(t)
	conn := db.Conn(t)
	pgtest.RequireExtension(t, conn, "pgq")
	if err := pgtest.CreateExtension("pgq")(context.Background(), conn); err != nil {
		t.Fatal(err)
	}
	return db
}

// EachFlavor runs f as a parallel subtest per PgQ implementation.
func EachFlavor(t *testing.T, f func(t *testing.T, fl Flavor)) {
	for _, fl := range []Flavor{Ours, Original} {
		t.Run(fl.Name, func(t *testing.T) {
			t.Parallel()
			f(t, fl)
		})
	}
}

// Queue creates queue in db, ticking as soon as it has an event (ticker_max_lag 0),
// and registers consumer on it unless consumer is "".
func Queue(t testing.TB, db *pgxpool.Pool, queue, consumer string) {
	t.Helper()
	ctx := context.Background()
	if _, err := pgq.CreateQueue(ctx, db, queue); err != nil {
		t.Fatal(err)
	}
	if err := pgq.SetQueueParam(ctx, db, queue, pgq.ParamTickerMaxLag, "0"); err != nil {
		t.Fatal(err)
	}
	if consumer != "" {
		if _, err := pgq.Register(ctx, db, queue, consumer); err != nil {
			t.Fatal(err)
		}
	}
}

// Ticker ticks queue every 20ms (when it has new events) until the test ends, as pgqd
// would.
func Ticker(t testing.TB, db *pgxpool.Pool, queue string) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			_, _, _ = pgq.Tick(ctx, db, queue) // errors while a server restarts pass
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// WaitFor polls cond until it holds, failing the test after timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Val runs a one-value query and fails the test on error.
func Val[T any](t testing.TB, db pgq.Querier, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// Exec runs SQL and fails the test on error.
func Exec(t testing.TB, db pgq.Querier, sql string, args ...any) {
	t.Helper()
	if _, err := db.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Drained returns a condition that holds once consumer has finished a tick made after
// the call, so every event committed before the call is consumed. It forces that
// tick (pgq.force_tick): a Ticker must be running. (A tick that ran while a producer
// transaction was still open leaves that transaction's events for the next tick, and
// with no further events none may come soon: waiting for the newest tick alone can
// miss them.)
func Drained(t testing.TB, db *pgxpool.Pool, queue, consumer string) func() bool {
	t.Helper()
	last, err := pgq.ForceTick(context.Background(), db, queue)
	if err != nil {
		t.Fatal(err)
	}
	return func() bool {
		ci, err := pgq.GetConsumerInfo(context.Background(), db, queue, consumer)
		if err != nil {
			t.Logf("consumer info: %v", err)
			return false
		}
		return ci.LastTick > last
	}
}

// QueueDone reports whether consumer has finished every tick of queue that exists now
// and has no batch open. Use it where the test makes the ticks itself, after the
// events it waits for were committed; with a Ticker running, use Drained.
func QueueDone(t testing.TB, db *pgxpool.Pool, queue, consumer string) func() bool {
	return func() bool {
		ctx := context.Background()
		qi, err := pgq.GetQueueInfo(ctx, db, queue)
		if err != nil {
			t.Logf("queue info: %v", err)
			return false
		}
		ci, err := pgq.GetConsumerInfo(ctx, db, queue, consumer)
		if err != nil {
			t.Logf("consumer info: %v", err)
			return false
		}
		return ci.LastTick >= qi.LastTick && ci.CurrentBatch == 0 && qi.NewEvents == 0
	}
}
