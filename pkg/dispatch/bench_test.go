package dispatch_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/dispatch"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/relay/relaytest"
)

// Benchmarks (not run by plain go test):
//
//	go test ./pkg/dispatch -run '^$' -bench BulkVsRows -benchtime 1x
//
// SKYTOOLS_BENCH_EVENTS sets the backlog (default 1,000,000 events).

const benchAccounts = "(aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84))"

// accountEvent is event i of a pgbench-like stream of logutriga events on accounts,
// consistent as triggers would write it: the first events insert accounts
// 1..first; then updates of the balance of random existing accounts, every tenth
// event a delete of one, and every tenth a new account.
func accountEvent(first int) func(i int) pgq.Event {
	rnd := rand.New(rand.NewPCG(7, 7))
	var live []int                    // existing aids
	filler := strings.Repeat("+", 84) // 84 spaces, urlencoded
	next := 0
	return func(i int) pgq.Event {
		typ, aid := "I:aid", 0
		switch {
		case i < first || len(live) == 0 || i%10 == 5:
			next++
			aid = next
			live = append(live, aid)
		case i%10 == 0:
			k := rnd.IntN(len(live))
			typ, aid = "D:aid", live[k]
			live[k] = live[len(live)-1]
			live = live[:len(live)-1]
		default:
			typ, aid = "U:aid", live[rnd.IntN(len(live))]
		}
		data := fmt.Sprintf("aid=%d&bid=%d&abalance=%d&filler=%s", aid, aid%100, rnd.IntN(100000)-50000, filler)
		return pgq.Event{Type: pgq.Text(typ), Data: pgq.Text(data), Extra1: pgq.Text("public.accounts")}
	}
}

// rowByRow applies each event with a statement of its own (INSERT, UPDATE of every
// column by key, DELETE by key), as a plain replica would. pipelined sends the
// statements of a block of events in one round trip (the generous way; Londiste
// sends 200 at a time); otherwise each statement waits for its answer.
func rowByRow(pipelined bool) pgq.Handler {
	const (
		ins = `INSERT INTO accounts (aid, bid, abalance, filler) VALUES ($1::text::int, $2::text::int, $3::text::int, $4::text)`
		upd = `UPDATE accounts SET bid = $2::text::int, abalance = $3::text::int, filler = $4::text WHERE aid = $1::text::int`
		del = `DELETE FROM accounts WHERE aid = $1::text::int`
	)
	return pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
		for {
			evs, err := b.Fetch(ctx)
			if err != nil || len(evs) == 0 {
				return err
			}
			batch := &pgx.Batch{}
			for _, ev := range evs {
				ch, err := dispatch.ParseChange(ev.Type.String, ev.Data.String)
				if err != nil {
					return err
				}
				v := func(c string) pgtype.Text { x, _ := ch.Row.Get(c); return x }
				sql, args := del, []any{v("aid")}
				switch ch.Op {
				case dispatch.OpInsert:
					sql, args = ins, []any{v("aid"), v("bid"), v("abalance"), v("filler")}
				case dispatch.OpUpdate:
					sql, args = upd, []any{v("aid"), v("bid"), v("abalance"), v("filler")}
				}
				if !pipelined {
					if _, err := b.Tx.Exec(ctx, sql, args...); err != nil {
						return err
					}
					continue
				}
				batch.Queue(sql, args...)
			}
			if err := b.Tx.SendBatch(ctx, batch).Close(); err != nil {
				return err
			}
		}
	})
}

// BenchmarkBulkVsRows applies one backlog of account changes to three destination
// databases, in one run: with the dispatcher's bulk mode, row by row pipelined, and
// row by row one statement at a time. It reports the rates (events/s) and the ratios
// of bulk to each, and checks that the destinations end up equal. In "accounts" the
// first fifth of the events creates the accounts that the rest changes; in
// "hot-keys" the changes go to 1,000 accounts, as pgbench's branches and tellers
// get them, so a batch changes each key many times.
func BenchmarkBulkVsRows(b *testing.B) {
	n := relaytest.BenchEvents()
	b.Run("accounts", func(b *testing.B) { benchBulkVsRows(b, n, max(n/5, 1)) })
	b.Run("hot-keys", func(b *testing.B) { benchBulkVsRows(b, n, min(1000, n)) })
}

func benchBulkVsRows(b *testing.B, n, accounts int) {
	ctx := context.Background()
	src := relaytest.BenchCluster(b, "bench-src").DB(b).Pool(b)
	dstCluster := relaytest.BenchCluster(b, "bench-dst")
	names := []string{"bulk", "pipelined", "single"}
	dsts := map[string]*pgxpool.Pool{}
	for _, name := range names {
		dsts[name] = dstCluster.DB(b).Pool(b)
	}
	relaytest.Queue(b, src, "bench", "")
	starts := map[string]int64{}
	for _, name := range names {
		if _, err := pgq.Register(ctx, src, "bench", name); err != nil {
			b.Fatal(err)
		}
		info, err := pgq.GetConsumerInfo(ctx, src, "bench", name)
		if err != nil {
			b.Fatal(err)
		}
		starts[name] = info.LastTick
	}
	last := relaytest.Backlog(b, src, "bench", n, 10_000, accountEvent(accounts))
	cfg := &dispatch.Config{Mode: dispatch.ModeBulk, Tables: []dispatch.Table{{Name: "public.accounts", Target: "public.accounts"}}}
	handlers := map[string]pgq.Handler{"bulk": dispatch.NewHandler(cfg, nil, nil), "pipelined": rowByRow(true), "single": rowByRow(false)}
	rates := map[string]float64{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, name := range names {
			b.StopTimer()
			dst := dsts[name]
			relaytest.Exec(b, dst, "DROP TABLE IF EXISTS accounts, pgq_position; CREATE TABLE accounts "+benchAccounts)
			if _, err := pgq.RegisterAt(ctx, src, "bench", name, starts[name]); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			events, d := relaytest.ConsumeAll(b, src, pgq.Config{Queue: "bench", Consumer: name, Target: dst}, handlers[name], last)
			if events != int64(n) {
				b.Fatalf("%s: applied %d events, backlog %d", name, events, n)
			}
			rates[name] = max(rates[name], float64(events)/d.Seconds())
			b.Logf("%s: %d events in %s: %.0f events/s", name, events, d.Round(time.Millisecond), float64(events)/d.Seconds())
		}
	}
	b.StopTimer()
	sum := func(p *pgxpool.Pool) string {
		return relaytest.Val[string](b, p, "SELECT count(*) || ' ' || coalesce(md5(string_agg(a::text, ',' ORDER BY aid)), '') FROM accounts a")
	}
	want := sum(dsts["bulk"])
	for _, name := range names[1:] {
		if got := sum(dsts[name]); got != want {
			b.Fatalf("the destinations differ: bulk %s, %s %s", want, name, got)
		}
	}
	b.ReportMetric(rates["bulk"], "bulk-events/s")
	b.ReportMetric(rates["pipelined"], "pipelined-events/s")
	b.ReportMetric(rates["single"], "single-events/s")
	b.ReportMetric(rates["bulk"]/rates["pipelined"], "bulk/pipelined")
	b.ReportMetric(rates["bulk"]/rates["single"], "bulk/single")
}
