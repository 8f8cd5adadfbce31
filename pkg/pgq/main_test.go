package pgq_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/pgtest"
	"github.com/skytools-go/skytools/pkg/schema"
)

// pg is the package's cluster. Its template database has our PgQ (pgq and pgq_coop);
// a second template with the original extension is made on first use (origDB).
var pg = pgtest.NewShared().WithTemplate(installOurs)

func installOurs(ctx context.Context, conn *pgx.Conn) error {
	_, err := schema.InstallPgQ(ctx, conn)
	return err
}

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(childEnv) == "" && !postgresAvailable() {
		// Examples cannot skip themselves; without PostgreSQL they are left out (the
		// tests skip, or fail under PGTEST_REQUIRE=1).
		_ = flag.Set("test.skip", "^Example")
	}
	code := pg.Main(m)
	examples.stop()
	os.Exit(code)
}

// flavor is one PgQ implementation the tests run against.
type flavor struct {
	name string
	db   func(t *testing.T) *pgtest.Database
}

var (
	ours     = flavor{"ours", func(t *testing.T) *pgtest.Database { return pg.DB(t) }}
	original = flavor{"original", origDB}
)

// bothFlavors runs f as a subtest against our PgQ and against the original extension
// (skipped when it is not installed, failed under PGTEST_REQUIRE=1).
func bothFlavors(t *testing.T, f func(t *testing.T, fl flavor)) {
	for _, fl := range []flavor{ours, original} {
		t.Run(fl.name, func(t *testing.T) {
			t.Parallel()
			f(t, fl)
		})
	}
}

// orig is a second template database with the original extension, made on first use.
var orig = pg.Template("pgq_orig_template", pgtest.CreateExtension("pgq"))

// origDB returns a fresh database with the original PgQ extension.
func origDB(t *testing.T) *pgtest.Database {
	t.Helper()
	return orig.DB(t)
}

// env is what most tests need: a database with a queue and a pool on it.
type env struct {
	t     *testing.T
	db    *pgtest.Database
	pool  *pgxpool.Pool
	queue string
}

// setup makes a database of the flavor with queue "q" that ticks on every Tick call.
func setup(t *testing.T, fl flavor) *env {
	t.Helper()
	db := fl.db(t)
	e := &env{t: t, db: db, pool: db.Pool(t), queue: "q"}
	ctx := context.Background()
	if _, err := pgq.CreateQueue(ctx, e.pool, e.queue); err != nil {
		t.Fatal(err)
	}
	for p, v := range map[string]string{pgq.ParamTickerMaxLag: "0", pgq.ParamTickerIdlePeriod: "0"} {
		if err := pgq.SetQueueParam(ctx, e.pool, e.queue, p, v); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// register registers consumer on the env's queue.
func (e *env) register(consumer string) {
	e.t.Helper()
	if _, err := pgq.Register(context.Background(), e.pool, e.queue, consumer); err != nil {
		e.t.Fatal(err)
	}
}

// tick makes a tick (and its NOTIFY) and returns its id.
func (e *env) tick() int64 {
	e.t.Helper()
	id, ok, err := pgq.Tick(context.Background(), e.pool, e.queue)
	if err != nil {
		e.t.Fatal(err)
	}
	if !ok {
		e.t.Fatal("no tick made")
	}
	return id
}

// produce inserts n events "0".."n-1" (type "t") in one transaction with COPY.
func (e *env) produce(n int) {
	e.t.Helper()
	evs := make([]pgq.Event, n)
	for i := range evs {
		evs[i] = pgq.NewEvent("t", fmt.Sprint(i))
	}
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		_, err := pgq.InsertEvents(ctx, tx, e.queue, evs)
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// exec runs SQL on the env's database and fails the test on error.
func (e *env) exec(sql string, args ...any) {
	e.t.Helper()
	if _, err := e.pool.Exec(context.Background(), sql, args...); err != nil {
		e.t.Fatalf("%s: %v", sql, err)
	}
}

func queryVal[T any](t testing.TB, db pgq.Querier, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := db.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// consumerRun is a consumer running in the background for a test.
type consumerRun struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's result, set when done is closed
	once   sync.Once
}

// runConsumer runs c in the background until the test ends or stop is called.
func runConsumer(t *testing.T, c *pgq.Consumer) *consumerRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &consumerRun{t: t, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = c.Run(ctx)
	}()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("consumer: %v", err)
		}
	})
	return r
}

// stop cancels Run and returns its result.
func (r *consumerRun) stop() error {
	r.once.Do(r.cancel)
	select {
	case <-r.done:
		return r.err
	case <-time.After(time.Minute):
		return errors.New("consumer did not stop within a minute")
	}
}

// waitFor waits until cond holds; it fails the test at once if Run returns first.
func (r *consumerRun) waitFor(timeout time.Duration, what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case <-r.done:
			r.t.Fatalf("consumer stopped (%v) while waiting for %s", r.err, what)
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// fastConfig is a consumer config for tests: short delays.
func fastConfig(queue, consumer string) pgq.Config {
	return pgq.Config{
		Queue: queue, Consumer: consumer,
		LoopDelay: 20 * time.Millisecond, BackoffMin: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
	}
}

func postgresAvailable() bool {
	for _, dir := range strings.Split(os.Getenv("PATH"), ":") {
		if _, err := os.Stat(dir + "/pg_config"); err == nil {
			return true
		}
	}
	if os.Getenv(pgtest.EnvBinDir) != "" {
		return true
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	return len(m) > 0
}
