package relaytest

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// BenchEvents is the backlog size of the benchmarks: SKYTOOLS_BENCH_EVENTS, default
// 1,000,000.
func BenchEvents() int {
	if v, err := strconv.Atoi(os.Getenv("SKYTOOLS_BENCH_EVENTS")); err == nil && v > 0 {
		return v
	}
	return 1_000_000
}

// BenchCluster starts a server of the benchmark's own, set up as a queue or
// warehouse server would be: shared_buffers large enough for the backlog
// (SKYTOOLS_BENCH_SHARED_BUFFERS, default 1GB), our PgQ in its databases' template.
func BenchCluster(b *testing.B, name string) *pgtest.Cluster {
	b.Helper()
	sb := os.Getenv("SKYTOOLS_BENCH_SHARED_BUFFERS")
	if sb == "" {
		sb = "1GB"
	}
	c := pgtest.NewCluster(b, pgtest.Name(name), pgtest.Conf("shared_buffers = '"+sb+"'"))
	conn, err := c.Connect(context.Background(), "template1")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := InstallOurs(context.Background(), conn); err != nil {
		b.Fatal(err)
	}
	return c
}

// Backlog writes n events made by gen (gen(i) is event i) into queue with COPY, a
// tick every per events (what pgqd's one-second ticks make of a producer writing per
// events a second), and returns the last tick. It reads the queue once so that every
// consumer finds it in the cache.
func Backlog(b *testing.B, pool *pgxpool.Pool, queue string, n, per int, gen func(i int) pgq.Event) int64 {
	b.Helper()
	ctx := context.Background()
	var last int64
	evs := make([]pgq.Event, 0, per)
	for done := 0; done < n; done += per {
		evs = evs[:0]
		for i := done; i < min(done+per, n); i++ {
			evs = append(evs, gen(i))
		}
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := pgq.InsertEvents(ctx, tx, queue, evs)
			return err
		}); err != nil {
			b.Fatal(err)
		}
		t, ok, err := pgq.Tick(ctx, pool, queue)
		if err != nil || !ok {
			b.Fatalf("tick: %v %v", ok, err)
		}
		last = t
	}
	if _, err := pool.Exec(ctx, "SELECT count(*) FROM pgq.event_template"); err != nil {
		b.Fatal(err)
	}
	return last
}

// ConsumeAll runs an exactly-once consumer (cfg with Queue, Consumer and Target) with
// handler h until it has finished the batch ending at tick last, and returns the
// events it read and the time it took.
func ConsumeAll(b *testing.B, src *pgxpool.Pool, cfg pgq.Config, h pgq.Handler, last int64) (int64, time.Duration) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var events int64
	cfg.Observer.Batch = func(r pgq.BatchResult) {
		events += r.Events
		if r.Tick >= last {
			cancel()
		}
	}
	if cfg.FetchSize == 0 {
		cfg.FetchSize = 1000
	}
	cfg.LoopDelay = 10 * time.Millisecond
	c, err := pgq.NewConsumer(src, cfg, h)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := c.Run(ctx); err != nil {
		b.Fatal(err)
	}
	return events, time.Since(start)
}
