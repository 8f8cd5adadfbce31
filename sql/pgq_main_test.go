package sql_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/skytools-go/skytools/pkg/pgtest"
	"github.com/skytools-go/skytools/pkg/schema"
)

// pg is the package's cluster; its template database has our pgq and pgq_coop.
// Autovacuum is off: its ANALYZE transactions take txids, which would move tick
// snapshots' xmin and with it rotation decisions the tests compare.
var pg = pgtest.NewShared(pgtest.Conf("autovacuum = off")).WithTemplate(func(ctx context.Context, conn *pgx.Conn) error {
	_, err := schema.InstallPgQ(ctx, conn)
	return err
})

func TestMain(m *testing.M) { os.Exit(pg.Main(m)) }

// ext is a second template database in the same cluster with the original C extension
// (CREATE EXTENSION pgq), made on first use.
var ext = pg.Template("pgtest_ext_template", pgtest.CreateExtension("pgq"))

// extDB returns a fresh database with the original PgQ extension, for differential
// tests. It skips (fails under PGTEST_REQUIRE=1) when the extension is not installed.
func extDB(t testing.TB) *pgtest.Database {
	t.Helper()
	return ext.DB(t)
}

// q runs one statement and fails the test on error.
func q(t testing.TB, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// val returns the single value of a query.
func val[T any](t testing.TB, conn *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// pgErr runs sql and returns the PostgreSQL error it raised; the test fails when the
// statement succeeds or fails otherwise.
func pgErr(t testing.TB, conn *pgx.Conn, sql string, args ...any) *pgconn.PgError {
	t.Helper()
	_, err := conn.Exec(context.Background(), sql, args...)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		t.Fatalf("%s: want a PostgreSQL error, got %v", sql, err)
	}
	return pe
}

// wantErr checks that sql fails with exactly this message.
func wantErr(t testing.TB, conn *pgx.Conn, msg, sql string, args ...any) {
	t.Helper()
	if got := pgErr(t, conn, sql, args...).Message; got != msg {
		t.Fatalf("%s: error %q, want %q", sql, got, msg)
	}
}

// fastTicks makes every pgq.ticker() call tick the queue.
func fastTicks(t testing.TB, conn *pgx.Conn, queue string) {
	t.Helper()
	q(t, conn, `UPDATE pgq.queue SET queue_ticker_max_lag = '0', queue_ticker_idle_period = '0' WHERE queue_name = $1`, queue)
}

// event is one row of get_batch_events.
type event struct {
	ID      int64
	Retry   *int32
	Type    *string
	Data    *string
	Extra1  *string
	Extra2  *string
	Extra3  *string
	Extra4  *string
	TxID    int64
	EvTime  time.Time
	Comment string
}

func (e event) String() string {
	s := func(p *string) string {
		if p == nil {
			return "<NULL>"
		}
		return *p
	}
	r := "<NULL>"
	if e.Retry != nil {
		r = fmt.Sprint(*e.Retry)
	}
	return fmt.Sprintf("%d retry=%s type=%s data=%s e1=%s e2=%s e3=%s e4=%s",
		e.ID, r, s(e.Type), s(e.Data), s(e.Extra1), s(e.Extra2), s(e.Extra3), s(e.Extra4))
}

// batchEvents returns the events of an open batch.
func batchEvents(t testing.TB, conn *pgx.Conn, batch int64) []event {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		`SELECT ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4
		   FROM pgq.get_batch_events($1)`, batch)
	if err != nil {
		t.Fatalf("get_batch_events(%d): %v", batch, err)
	}
	var out []event
	for rows.Next() {
		var e event
		if err := rows.Scan(&e.ID, &e.EvTime, &e.TxID, &e.Retry, &e.Type, &e.Data, &e.Extra1, &e.Extra2, &e.Extra3, &e.Extra4); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("get_batch_events(%d): %v", batch, err)
	}
	return out
}

// consume runs ticker, next_batch, get_batch_events, finish_batch once and returns the
// batch id (0 when none) and its events.
func consume(t testing.TB, conn *pgx.Conn, queue, consumer string) (int64, []event) {
	t.Helper()
	var batch *int64
	if err := conn.QueryRow(context.Background(), "SELECT pgq.next_batch($1, $2)", queue, consumer).Scan(&batch); err != nil {
		t.Fatalf("next_batch: %v", err)
	}
	if batch == nil {
		return 0, nil
	}
	evs := batchEvents(t, conn, *batch)
	if n := val[int32](t, conn, "SELECT pgq.finish_batch($1)", *batch); n != 1 {
		t.Fatalf("finish_batch(%d) = %d", *batch, n)
	}
	return *batch, evs
}

// drain ticks and consumes until a batch comes back empty-handed after a tick that
// follows every committed event; it returns all events seen.
func drain(t testing.TB, conn *pgx.Conn, queue, consumer string) []event {
	t.Helper()
	var all []event
	q(t, conn, "SELECT pgq.ticker($1)", queue)
	for i := 0; i < 1000; i++ {
		b, evs := consume(t, conn, queue, consumer)
		if b == 0 {
			return all
		}
		all = append(all, evs...)
	}
	t.Fatal("drain: too many batches")
	return nil
}
