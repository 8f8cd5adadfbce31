package pgq_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// Benchmarks (not run by plain go test):
//
//	go test ./pkg/pgq -run '^$' -bench . -benchtime 1x
//
// PGQ_BENCH_EVENTS sets the backlog size (default 1,000,000) and PGQ_BENCH_TICK the
// events per tick (default 10,000, what pgqd's one-second ticks make of a producer
// writing 10,000 events per second). Each benchmark reports events/s; the
// comparison with Python runs both consumers on the same backlog in the same run.

// benchDB returns a database with our PgQ in a cluster of the benchmark's own, set up
// as a queue server would be: shared_buffers large enough for the backlog (the
// tests' clusters have 64MB, so a 1M-event backlog would be read through the
// operating system's cache, page by page, with checksums verified each time).
// PGQ_BENCH_SHARED_BUFFERS overrides the size (default "1GB").
func benchDB(b *testing.B) *pgtest.Database {
	b.Helper()
	sb := os.Getenv("PGQ_BENCH_SHARED_BUFFERS")
	if sb == "" {
		sb = "1GB"
	}
	cl := pgtest.NewCluster(b, pgtest.Name("bench"), pgtest.Conf("shared_buffers = '"+sb+"'"))
	db := cl.DB(b)
	conn := db.Conn(b)
	if err := installOurs(context.Background(), conn); err != nil {
		b.Fatal(err)
	}
	return db
}

func benchEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// backlog fills queue with n events of ~100 bytes, a tick every per events, and
// returns the last tick. Consumers registered before see all of it.
func backlog(b *testing.B, pool *pgxpool.Pool, queue string, n, per int) int64 {
	b.Helper()
	ctx := context.Background()
	payload := fmt.Sprintf("%0100d", 0)
	evs := make([]pgq.Event, per)
	for i := range evs {
		evs[i] = pgq.Event{Type: pgq.Text("bench"), Data: pgq.Text(payload), Extra1: pgq.Text("public.bench")}
	}
	var last int64
	for done := 0; done < n; done += per {
		chunk := evs[:min(per, n-done)]
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := pgq.InsertEvents(ctx, tx, queue, chunk)
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
	// Read it once so every consumer finds it in the cache.
	if _, err := pool.Exec(ctx, "SELECT count(*) FROM pgq.event_template"); err != nil {
		b.Fatal(err)
	}
	return last
}

// benchQueue makes a queue that ticks on every Tick call, with the consumers
// registered at its start.
func benchQueue(b *testing.B, pool *pgxpool.Pool, consumers ...string) {
	b.Helper()
	ctx := context.Background()
	if _, err := pgq.CreateQueue(ctx, pool, "bench"); err != nil {
		b.Fatal(err)
	}
	for _, p := range []string{pgq.ParamTickerMaxLag, pgq.ParamTickerIdlePeriod} {
		if err := pgq.SetQueueParam(ctx, pool, "bench", p, "0"); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range consumers {
		if _, err := pgq.Register(ctx, pool, "bench", c); err != nil {
			b.Fatal(err)
		}
	}
}

// benchBacklog makes the benchmark's database with queue "bench", the consumers
// registered at its start, and a backlog of PGQ_BENCH_EVENTS events (default
// 1,000,000), a tick every PGQ_BENCH_TICK (default 10,000). It returns the database,
// a pool on it, the tick the consumers start from and the backlog's last tick.
func benchBacklog(b *testing.B, consumers ...string) (db *pgtest.Database, pool *pgxpool.Pool, first, last int64) {
	b.Helper()
	db = benchDB(b)
	pool = db.Pool(b)
	benchQueue(b, pool, consumers...)
	start, err := pgq.GetConsumerInfo(context.Background(), pool, "bench", consumers[0])
	if err != nil {
		b.Fatal(err)
	}
	n, per := benchEnv("PGQ_BENCH_EVENTS", 1_000_000), benchEnv("PGQ_BENCH_TICK", 10_000)
	return db, pool, start.LastTick, backlog(b, pool, "bench", n, per)
}

// consumeAll runs a consumer with handler h until it has finished the batch ending at
// last, and returns the events it read and the time it took.
func consumeAll(b *testing.B, pool *pgxpool.Pool, cfg pgq.Config, h pgq.Handler, last int64) (int64, time.Duration) {
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
	c, err := pgq.NewConsumer(pool, cfg, h)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := c.Run(ctx); err != nil {
		b.Fatal(err)
	}
	return events, time.Since(start)
}

// noop reads every event and does nothing with it.
var noop = pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
	for _, err := range b.Events(ctx) {
		if err != nil {
			return err
		}
	}
	return nil
})

func BenchmarkConsume(b *testing.B) {
	_, pool, first, last := benchBacklog(b, "go")
	ctx := context.Background()
	var total int64
	var elapsed time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := pgq.RegisterAt(ctx, pool, "bench", "go", first); err != nil {
			b.Fatal(err)
		}
		events, d := consumeAll(b, pool, pgq.Config{Queue: "bench", Consumer: "go"}, noop, last)
		total += events
		elapsed += d
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
}

// BenchmarkConsumeSortSide drains the same backlog with the consumer sorting each
// batch (the default Config.SortBuffer) and with PostgreSQL sorting it (SortBuffer
// -1), alternating, PGQ_BENCH_ROUNDS rounds each (default 3). It reports each side's
// best rate, their ratio, and the CPU time per event of the consumer and of the
// server on each side.
func BenchmarkConsumeSortSide(b *testing.B) {
	n, rounds := benchEnv("PGQ_BENCH_EVENTS", 1_000_000), benchEnv("PGQ_BENCH_ROUNDS", 3)
	db, pool, first, last := benchBacklog(b, "go")
	ctx := context.Background()
	server := newServerCPU(b, db.Cluster)
	sides := []struct {
		name   string
		buffer int
	}{{"consumer", 0}, {"postgres", -1}}
	best := make([]float64, len(sides))
	cli, srv := make([]time.Duration, len(sides)), make([]time.Duration, len(sides))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			for s, side := range sides {
				if _, err := pgq.RegisterAt(ctx, pool, "bench", "go", first); err != nil {
					b.Fatal(err)
				}
				s0, c0 := server.read(), processCPU()
				events, d := consumeAll(b, pool, pgq.Config{Queue: "bench", Consumer: "go", SortBuffer: side.buffer}, noop, last)
				s1, c1 := server.read(), processCPU()
				if events != int64(n) {
					b.Fatalf("%s sorting: read %d events of %d", side.name, events, n)
				}
				rate := float64(events) / d.Seconds()
				best[s] = max(best[s], rate)
				cli[s] += c1 - c0
				srv[s] += s1 - s0
				b.Logf("round %d, %s sorts: %.0f events/s", r+1, side.name, rate)
			}
		}
	}
	perEvent := func(d time.Duration) float64 {
		return float64(d.Nanoseconds()) / 1000 / float64(n*rounds*b.N)
	}
	for s, side := range sides {
		b.ReportMetric(best[s], side.name+"-sorts-events/s")
		b.ReportMetric(perEvent(cli[s]), side.name+"-sorts-client-µs/event")
		b.ReportMetric(perEvent(srv[s]), side.name+"-sorts-server-µs/event")
	}
	b.ReportMetric(best[0]/best[1], "ratio")
}

// BenchmarkConsumeVsPython drains the same backlog with this package and with the
// Python framework (python3-pgq), side by side: PGQ_BENCH_ROUNDS rounds (default 3),
// each consumer rewound to the start of the backlog before each round, the two
// alternating. It reports each side's best rate and the ratio of the bests (on a
// shared machine the best round is the least disturbed one), and the CPU time per
// event of the consumer process and of the PostgreSQL server, which other load on
// the machine does not inflate. Skipped when python3-pgq is not installed.
func BenchmarkConsumeVsPython(b *testing.B) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import pgq").Run(); err != nil {
		b.Skipf("python3-pgq is not installed: %v", err)
	}
	n, rounds := benchEnv("PGQ_BENCH_EVENTS", 1_000_000), benchEnv("PGQ_BENCH_ROUNDS", 3)
	db, pool, first, last := benchBacklog(b, "go", "py")
	ctx := context.Background()
	server := newServerCPU(b, db.Cluster)
	var goBest, pyBest float64
	var goCPU, pyCPU, goSrv, pySrv time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for r := 0; r < rounds; r++ {
			for _, c := range []string{"go", "py"} {
				if _, err := pgq.RegisterAt(ctx, pool, "bench", c, first); err != nil {
					b.Fatal(err)
				}
			}
			s0, c0 := server.read(), processCPU()
			goEvents, goTime := consumeAll(b, pool, pgq.Config{Queue: "bench", Consumer: "go"}, noop, last)
			s1, c1 := server.read(), processCPU()
			out, err := exec.Command(py, "testdata/python_consumer.py", db.ConnString, "bench", "py").Output()
			if err != nil {
				b.Fatalf("python consumer: %v\n%s", err, out)
			}
			s2 := server.read()
			var res struct {
				Events, Batches int64
				Seconds, CPU    float64
			}
			if err := json.Unmarshal(out, &res); err != nil {
				b.Fatalf("python consumer output %q: %v", out, err)
			}
			if res.Events != goEvents || goEvents != int64(n) {
				b.Fatalf("go read %d events, python %d; backlog %d", goEvents, res.Events, n)
			}
			goRate, pyRate := float64(goEvents)/goTime.Seconds(), float64(res.Events)/res.Seconds
			goBest, pyBest = max(goBest, goRate), max(pyBest, pyRate)
			goCPU += c1 - c0
			pyCPU += time.Duration(res.CPU * float64(time.Second))
			goSrv += s1 - s0
			pySrv += s2 - s1
			b.Logf("round %d: %d events in %d batches: go %.2fs (%.0f events/s), python %.2fs (%.0f events/s), ratio %.1f",
				r+1, n, res.Batches, goTime.Seconds(), goRate, res.Seconds, pyRate, goRate/pyRate)
		}
	}
	perEvent := func(d time.Duration) float64 {
		return float64(d.Nanoseconds()) / 1000 / float64(n*rounds*b.N)
	}
	b.ReportMetric(goBest, "go-events/s")
	b.ReportMetric(pyBest, "python-events/s")
	b.ReportMetric(goBest/pyBest, "ratio")
	b.ReportMetric(perEvent(goCPU), "go-client-µs/event")
	b.ReportMetric(perEvent(goSrv), "go-server-µs/event")
	b.ReportMetric(perEvent(pyCPU), "python-client-µs/event")
	b.ReportMetric(perEvent(pySrv), "python-server-µs/event")
}

// processCPU is the CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU measures the CPU time of a cluster's processes: the postmaster with its
// exited children (cutime, cstime) plus its live children.
type serverCPU struct {
	b   *testing.B
	pid int
}

func newServerCPU(b *testing.B, c *pgtest.Cluster) *serverCPU {
	raw, err := os.ReadFile(filepath.Join(c.DataDir, "postmaster.pid"))
	if err != nil {
		b.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.SplitN(string(raw), "\n", 2)[0])
	if err != nil {
		b.Fatal(err)
	}
	return &serverCPU{b: b, pid: pid}
}

func (s *serverCPU) read() time.Duration {
	ticks := func(pid int, children bool) (ppid int, t int64) {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, 0
		}
		// The fields after the command name, which is in parentheses.
		f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
		ppid, _ = strconv.Atoi(f[1])
		for i, field := range f[11:15] { // utime stime cutime cstime
			if i < 2 || children {
				v, _ := strconv.ParseInt(field, 10, 64)
				t += v
			}
		}
		return ppid, t
	}
	_, total := ticks(s.pid, true)
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == s.pid {
			continue
		}
		if ppid, t := ticks(pid, false); ppid == s.pid {
			total += t
		}
	}
	return time.Duration(total) * time.Second / 100 // USER_HZ
}

// BenchmarkMoveExactlyOnce moves the backlog into a queue of another database,
// exactly once (Config.Target), copying each block with CopyEvents in the target
// transaction: what queue-mover does.
func BenchmarkMoveExactlyOnce(b *testing.B) {
	n, per := benchEnv("PGQ_BENCH_EVENTS", 1_000_000), benchEnv("PGQ_BENCH_TICK", 10_000)
	srcDB := benchDB(b)
	src := srcDB.Pool(b)
	dstDB := srcDB.Cluster.DB(b)
	if err := installOurs(context.Background(), dstDB.Conn(b)); err != nil {
		b.Fatal(err)
	}
	dst := dstDB.Pool(b)
	ctx := context.Background()
	benchQueue(b, src, "mover")
	if _, err := pgq.CreateQueue(ctx, dst, "moved"); err != nil {
		b.Fatal(err)
	}
	last := backlog(b, src, "bench", n, per)
	move := pgq.HandlerFunc(func(ctx context.Context, bt *pgq.Batch) error {
		for {
			evs, err := bt.Fetch(ctx)
			if err != nil || len(evs) == 0 {
				return err
			}
			if _, err := pgq.CopyEvents(ctx, bt.Tx, "moved", evs); err != nil {
				return err
			}
		}
	})
	b.ResetTimer()
	var total int64
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		if i > 0 {
			b.Fatal("run with -benchtime 1x")
		}
		events, d := consumeAll(b, src, pgq.Config{Queue: "bench", Consumer: "mover", Target: dst}, move, last)
		total += events
		elapsed += d
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "events/s")
	b.StopTimer()
	var moved int64
	if err := dst.QueryRow(ctx, "SELECT count(*) FROM pgq.event_template").Scan(&moved); err != nil || moved != int64(n) {
		b.Fatalf("target queue has %d events (%v), want %d", moved, err, n)
	}
}

// BenchmarkProduceCopy inserts events with InsertEvents, 10,000 per transaction.
func BenchmarkProduceCopy(b *testing.B) {
	pool := benchDB(b).Pool(b)
	ctx := context.Background()
	if _, err := pgq.CreateQueue(ctx, pool, "bench"); err != nil {
		b.Fatal(err)
	}
	payload := fmt.Sprintf("%0100d", 0)
	evs := make([]pgq.Event, 10_000)
	for i := range evs {
		evs[i] = pgq.Event{Type: pgq.Text("bench"), Data: pgq.Text(payload), Extra1: pgq.Text("public.bench")}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			_, err := pgq.InsertEvents(ctx, tx, "bench", evs)
			return err
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkProduceInsert inserts one event per pgq.Insert call, 100 per transaction.
func BenchmarkProduceInsert(b *testing.B) {
	pool := benchDB(b).Pool(b)
	ctx := context.Background()
	if _, err := pgq.CreateQueue(ctx, pool, "bench"); err != nil {
		b.Fatal(err)
	}
	ev := pgq.NewEvent("bench", fmt.Sprintf("%0100d", 0))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			for j := 0; j < 100; j++ {
				if _, err := pgq.Insert(ctx, tx, "bench", ev); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}
