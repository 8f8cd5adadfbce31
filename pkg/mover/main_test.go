package mover_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/pgtest"
	"github.com/skytools-go/skytools/pkg/relay/relaytest"
)

var servers = relaytest.NewServers()

func TestMain(m *testing.M) { os.Exit(servers.Main(m)) }

// env is a source database with queue "q" and a destination database with queue
// "moved" (and a reader consumer on it), on two servers.
type env struct {
	t        *testing.T
	src, dst *pgtest.Database
	srcPool  *pgxpool.Pool
	dstPool  *pgxpool.Pool
}

func setup(t *testing.T, fl relaytest.Flavor, consumer string) *env {
	t.Helper()
	e := setupStill(t, fl, consumer)
	relaytest.Ticker(t, e.srcPool, "q")
	return e
}

// setupStill is setup without a ticker: the test ticks.
func setupStill(t *testing.T, fl relaytest.Flavor, consumer string) *env {
	t.Helper()
	e := &env{t: t, src: relaytest.DB(t, servers.Src, fl), dst: relaytest.DB(t, servers.Dst, fl)}
	e.srcPool, e.dstPool = e.src.Pool(t), e.dst.Pool(t)
	relaytest.Queue(t, e.srcPool, "q", consumer)
	relaytest.Queue(t, e.dstPool, "moved", "reader")
	return e
}

// config is a queue-mover config for the env (consumer = the config file's name).
func (e *env) config(extra string) string {
	return fmt.Sprintf("src_db = %q\ndst_db = %q\nqueue = \"q\"\ndst_queue = \"moved\"\nloop_delay = \"50ms\"\nfetch_size = 300\n%s",
		e.src.ConnString, e.dst.ConnString, extra)
}

// row is an event as compared between the queues: everything but id and txid.
type row struct {
	Time               time.Time
	Type, Data         pgtype.Text
	Ex1, Ex2, Ex3, Ex4 pgtype.Text
}

// events returns a queue's events (from all its tables) in id order.
func events(t testing.TB, db *pgxpool.Pool, queue string) []row {
	t.Helper()
	ctx := context.Background()
	var table string
	if err := db.QueryRow(ctx, "SELECT queue_data_pfx FROM pgq.queue WHERE queue_name = $1", queue).Scan(&table); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query(ctx, "SELECT ev_time, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4 FROM "+table+" ORDER BY ev_id")
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var v row
		err := r.Scan(&v.Time, &v.Type, &v.Data, &v.Ex1, &v.Ex2, &v.Ex3, &v.Ex4)
		return v, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ids returns the event ids of a queue, in order.
func ids(t testing.TB, db *pgxpool.Pool, queue string) []int64 {
	t.Helper()
	table := relaytest.Val[string](t, db, "SELECT queue_data_pfx FROM pgq.queue WHERE queue_name = $1", queue)
	rows, err := db.Query(context.Background(), "SELECT ev_id FROM "+table+" ORDER BY ev_id")
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// produce inserts n events through pgq.insert_event in transactions of up to 50, with
// payloads that exercise the copy: NULL and empty extras, tabs, newlines,
// backslashes, non-ASCII text.
func produce(t testing.TB, db *pgxpool.Pool, queue string, from, n int) {
	t.Helper()
	produceTagged(t, db, queue, "", from, n)
}

// produceTagged is produce with ev_extra3 = tag on every event ("" leaves it NULL).
func produceTagged(t testing.TB, db *pgxpool.Pool, queue, tag string, from, n int) {
	t.Helper()
	ctx := context.Background()
	for i := from; i < from+n; {
		err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
			for j := 0; j < 50 && i < from+n; j, i = j+1, i+1 {
				ev := pgq.Event{
					Type: pgq.Text(fmt.Sprintf("type.%d", i%3)),
					Data: pgq.Text(fmt.Sprintf("%d\tdata\nline\\%s", i, "äö€")),
				}
				if tag != "" {
					ev.Extra3 = pgq.Text(tag)
				}
				switch i % 4 {
				case 0:
					ev.Extra1 = pgq.Text("")
				case 1:
					ev.Extra1, ev.Extra2 = pgq.Text("public.t"), pgq.Text("x")
				case 2:
					ev.Data = pgtype.Text{}
					ev.Extra4 = pgq.Text(`\N`)
				}
				if _, err := pgq.Insert(ctx, tx, queue, ev); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }
