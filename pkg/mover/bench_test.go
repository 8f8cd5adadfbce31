package mover_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/skytools-go/skytools/pkg/mover"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/relay/relaytest"
)

// BenchmarkMove moves a backlog of SKYTOOLS_BENCH_EVENTS events (default 1,000,000,
// ~100 bytes of data, a tick every 10,000) from a queue on one server into a queue on
// another, exactly once, as queue-mover does, and reports events/s. Not run by plain
// go test:
//
//	go test ./pkg/mover -run '^$' -bench Move -benchtime 1x
func BenchmarkMove(b *testing.B) {
	n := relaytest.BenchEvents()
	ctx := context.Background()
	src := relaytest.BenchCluster(b, "bench-src").DB(b).Pool(b)
	dst := relaytest.BenchCluster(b, "bench-dst").DB(b).Pool(b)
	relaytest.Queue(b, src, "bench", "")
	relaytest.Queue(b, dst, "moved", "")
	if _, err := pgq.Register(ctx, src, "bench", "mover"); err != nil {
		b.Fatal(err)
	}
	start, err := pgq.GetConsumerInfo(ctx, src, "bench", "mover")
	if err != nil {
		b.Fatal(err)
	}
	payload := fmt.Sprintf("%0100d", 0)
	last := relaytest.Backlog(b, src, "bench", n, 10_000, func(i int) pgq.Event {
		return pgq.Event{Type: pgq.Text("bench"), Data: pgq.Text(payload), Extra1: pgq.Text("public.bench"), Extra2: pgq.Text(fmt.Sprint(i))}
	})
	var total int64
	var elapsed float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := pgq.RegisterAt(ctx, src, "bench", "mover", start.LastTick); err != nil {
			b.Fatal(err)
		}
		relaytest.Exec(b, dst, "DROP TABLE IF EXISTS pgq_position")
		events, d := relaytest.ConsumeAll(b, src, pgq.Config{Queue: "bench", Consumer: "mover", Target: dst}, mover.NewHandler("moved", nil), last)
		if events != int64(n) {
			b.Fatalf("moved %d events, backlog %d", events, n)
		}
		total += events
		elapsed += d.Seconds()
	}
	b.StopTimer()
	if got := relaytest.Val[int64](b, dst, "SELECT count(*) FROM pgq.event_template"); got != int64(n*b.N) {
		b.Fatalf("destination queue has %d events, want %d", got, n*b.N)
	}
	b.ReportMetric(float64(total)/elapsed, "events/s")
}
