package sql_test

import (
	"context"
	"testing"
)

// PgQ 3.5's ticker calls txid_current() on every call, so at a 10ms ticker_period an
// idle queue used up a hundred transaction ids a second, each with a commit record to
// flush. Ours gives a call that makes no tick no transaction id: it writes nothing.
func TestIdleTickerCallAssignsNoTransactionID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	conn := pg.DB(t).Conn(t)
	q(t, conn, "SELECT pgq.create_queue('idle')")
	q(t, conn, "SELECT pgq.ticker('idle')") // tick 2: the first call after create_queue ticks
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var tick *int64
	if err := tx.QueryRow(ctx, "SELECT pgq.ticker('idle')").Scan(&tick); err != nil {
		t.Fatal(err)
	}
	if tick != nil {
		t.Fatalf("idle queue ticked (%d); the test needs a call that makes no tick", *tick)
	}
	var assigned *int64
	if err := tx.QueryRow(ctx, "SELECT txid_current_if_assigned()").Scan(&assigned); err != nil {
		t.Fatal(err)
	}
	if assigned != nil {
		t.Fatalf("a ticker call that made no tick assigned transaction id %d", *assigned)
	}
}
