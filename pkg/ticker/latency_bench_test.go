package ticker

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// BenchmarkTickLatency measures end-to-end latency (producer's COMMIT returned ->
// consumer holds the event) and the idle CPU cost of the ticker at ticker periods of
// 100ms and 10ms, for:
//
//   - the original pgqd (Debian package, C) on the original PgQ extension, with a
//     consumer polling next_batch every millisecond (the original has no wake-up);
//   - our pgqd on the same extension with the same consumer: only the daemon differs;
//   - our pgqd on our PgQ with a pkg/pgq consumer woken by pgqd's NOTIFY: the product.
//
// The queue has ticker_max_lag = 0 (tick whenever there are events), one event is
// committed every 20ms.
//
//	go test -run '^$' -bench TickLatency -benchtime 1x ./pkg/ticker
//
// SKYTOOLS_LATENCY_SECONDS sets the measuring time per case (default 20).
func BenchmarkTickLatency(b *testing.B) {
	seconds := 20
	if s := os.Getenv("SKYTOOLS_LATENCY_SECONDS"); s != "" {
		seconds, _ = strconv.Atoi(s)
	}
	for _, period := range []time.Duration{100 * time.Millisecond, 10 * time.Millisecond} {
		for _, c := range []latencySetup{
			{daemon: "original", sql: "original", consumer: "poll1ms"},
			{daemon: "ours", sql: "original", consumer: "poll1ms"},
			{daemon: "ours", sql: "ours", consumer: "pkg-pgq"},
		} {
			b.Run(fmt.Sprintf("%s-pgqd/%s-sql/%s/consumer=%s", c.daemon, c.sql, period, c.consumer), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					latencyCase(b, c, period, time.Duration(seconds)*time.Second)
				}
			})
		}
	}
}

// latencySetup is one combination of daemon, PgQ SQL and consumer.
type latencySetup struct {
	daemon   string // "original" (Debian pgqd) or "ours"
	sql      string // "original" (C extension) or "ours"
	consumer string // "poll1ms" (next_batch every ms) or "pkg-pgq" (NOTIFY-woken pkg/pgq)
}

// benchDB makes a cluster with database bench holding the setup's PgQ, and returns a
// connection to it.
func benchDB(b *testing.B, sql string) (*pgtest.Cluster, *pgx.Conn) {
	ctx := context.Background()
	c := pgtest.NewCluster(b)
	admin, err := c.Connect(ctx, "postgres")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE bench"); err != nil {
		b.Fatal(err)
	}
	admin.Close(ctx)
	conn, err := c.Connect(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	install := installOurs
	if sql == "original" {
		install = pgtest.CreateExtension("pgq")
	}
	if err := install(ctx, conn); err != nil {
		b.Skipf("PgQ (%s): %v", sql, err)
	}
	return c, conn
}

// startTicker runs the original pgqd (Debian's, C) or ours on database bench and
// returns its process; it is stopped when the benchmark ends.
func startTicker(b *testing.B, daemon string, c *pgtest.Cluster, period time.Duration) *os.Process {
	dir := b.TempDir()
	var cmd *osexec.Cmd
	base := fmt.Sprintf("host=%s port=%d user=postgres", c.SockDir, c.Port)
	switch daemon {
	case "original":
		bin, err := osexec.LookPath("pgqd")
		if err != nil || !strings.HasPrefix(bin, "/usr/") {
			b.Skip("the original pgqd (Debian package pgqd) is not installed")
		}
		ini := filepath.Join(dir, "pgqd.ini")
		text := fmt.Sprintf("[pgqd]\nbase_connstr = %s\ninitial_database = postgres\ndatabase_list = bench\nticker_period = %g\nlogfile = %s\nsyslog = 0\n",
			base, period.Seconds(), filepath.Join(dir, "pgqd.log"))
		if err := os.WriteFile(ini, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
		cmd = osexec.Command("/usr/bin/pgqd", ini)
	case "ours":
		bin := pgtest.Build(b, "pgqd")
		cfg := filepath.Join(dir, "pgqd.toml")
		text := fmt.Sprintf("connstr = %q\ndatabases = [\"bench\"]\nticker_period = %q\nlog_level = \"warn\"\n", base, period.String())
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			b.Fatal(err)
		}
		cmd = osexec.Command(bin, "-c", cfg)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	})
	return cmd.Process
}

// tickerCPU measures the CPU share of the ticker process and its backends (those of
// database bench with application_name "" or "pgqd") over d.
func tickerCPU(ctx context.Context, conn *pgx.Conn, ticker *os.Process, d time.Duration) float64 {
	pids := []int{ticker.Pid}
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = 'bench' AND pid <> pg_backend_pid()
		AND backend_type = 'client backend' AND coalesce(application_name, '') IN ('', 'pgqd')`)
	if err == nil {
		backends, _ := pgx.CollectRows(rows, pgx.RowTo[int32])
		for _, p := range backends {
			pids = append(pids, int(p))
		}
	}
	before := cpuTime(pids)
	time.Sleep(d)
	return 100 * (cpuTime(pids) - before).Seconds() / d.Seconds()
}

// BenchmarkIdleCPU measures what keeping idle queues ticking costs: three queues with
// a registered consumer each and no events, CPU of the ticker process and its backend
// over SKYTOOLS_IDLE_SECONDS (default 30) after a warm-up, for the original pgqd and
// ours, at ticker periods of 10ms, 100ms and 1s.
//
//	go test -run '^$' -bench IdleCPU -benchtime 1x ./pkg/ticker
func BenchmarkIdleCPU(b *testing.B) {
	seconds := 30
	if s := os.Getenv("SKYTOOLS_IDLE_SECONDS"); s != "" {
		seconds, _ = strconv.Atoi(s)
	}
	for _, period := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, time.Second} {
		for _, c := range []latencySetup{{daemon: "original", sql: "original"}, {daemon: "ours", sql: "original"}, {daemon: "ours", sql: "ours"}} {
			b.Run(fmt.Sprintf("%s-pgqd/%s-sql/%s", c.daemon, c.sql, period), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					ctx := context.Background()
					cl, conn := benchDB(b, c.sql)
					for _, q := range []string{"a", "b", "c"} {
						for _, sql := range []string{"SELECT pgq.create_queue($1)", "SELECT pgq.register_consumer($1, 'c')"} {
							if _, err := conn.Exec(ctx, sql, q); err != nil {
								b.Fatal(err)
							}
						}
					}
					ticker := startTicker(b, c.daemon, cl, period)
					time.Sleep(5 * time.Second) // warm-up: connections made, first ticks done
					b.ResetTimer()
					b.ReportMetric(tickerCPU(ctx, conn, ticker, time.Duration(seconds)*time.Second), "idle-cpu-%")
				}
			})
		}
	}
}

func latencyCase(b *testing.B, setup latencySetup, period, measure time.Duration) {
	ctx := context.Background()
	c, conn := benchDB(b, setup.sql)
	for _, q := range []string{
		"SELECT pgq.create_queue('lat')",
		"SELECT pgq.set_queue_config('lat', 'ticker_max_lag', '0')",
		"SELECT pgq.register_consumer('lat', 'c')",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	ticker := startTicker(b, setup.daemon, c, period)

	// Wait for the daemon's first tick after tick 1.
	deadline := time.Now().Add(30 * time.Second)
	for {
		id, _ := lastTick(conn, "lat")
		if id > 1 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no tick from the daemon")
		}
		time.Sleep(10 * time.Millisecond)
	}

	var mu sync.Mutex
	// An event can reach the consumer before the producer's COMMIT has returned to it,
	// so samples are matched whichever side comes first.
	committed := map[int]time.Time{}
	seenAt := map[int]time.Time{}
	var lat []time.Duration

	cctx, stopConsumer := context.WithCancel(ctx)
	consumerDone := make(chan error, 1)
	go func() {
		consumerDone <- consume(cctx, c.ConnString("bench"), setup.consumer, func(data string, seen time.Time) {
			n, _ := strconv.Atoi(data)
			mu.Lock()
			if t, ok := committed[n]; ok {
				lat = append(lat, seen.Sub(t))
			} else {
				seenAt[n] = seen
			}
			mu.Unlock()
		})
	}()

	producer, err := c.Connect(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	defer producer.Close(ctx)
	b.ResetTimer()
	const every = 20 * time.Millisecond
	tick := time.NewTicker(every)
	end := time.Now().Add(measure)
	n := 0
	for time.Now().Before(end) {
		<-tick.C
		n++
		if _, err := producer.Exec(ctx, "SELECT pgq.insert_event('lat', 'lat', $1)", strconv.Itoa(n)); err != nil {
			b.Fatal(err)
		}
		now := time.Now()
		mu.Lock()
		if seen, ok := seenAt[n]; ok {
			lat = append(lat, max(seen.Sub(now), 0)) // seen before COMMIT returned here
		} else {
			committed[n] = now
		}
		mu.Unlock()
	}
	tick.Stop()
	// Let the last events arrive (stragglers of the original can take seconds).
	waitUntil := time.Now().Add(10 * time.Second)
	for time.Now().Before(waitUntil) {
		mu.Lock()
		got := len(lat)
		mu.Unlock()
		if got >= n {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.StopTimer()
	stopConsumer()
	if err := <-consumerDone; err != nil && cctx.Err() == nil {
		b.Fatal(err)
	}
	mu.Lock()
	samples := append([]time.Duration(nil), lat...)
	mu.Unlock()
	if len(samples) < n {
		b.Errorf("%d of %d events never arrived", n-len(samples), n)
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	pct := func(p float64) float64 {
		if len(samples) == 0 {
			return 0
		}
		return float64(samples[int(p*float64(len(samples)-1))].Microseconds()) / 1000
	}
	over1s := 0
	for _, s := range samples {
		if s > time.Second {
			over1s++
		}
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(1), "max-ms")
	b.ReportMetric(float64(over1s), "over1s")
	b.ReportMetric(float64(len(samples)), "events")

	// Idle cost after the traffic (noisy over 10 s; BenchmarkIdleCPU measures it
	// properly).
	time.Sleep(2 * time.Second)
	b.ReportMetric(tickerCPU(ctx, conn, ticker, 10*time.Second), "idle-cpu-%")
}

// consume takes batches until ctx ends, calling seen for each event as it arrives.
// "poll1ms" asks for a batch every millisecond; "pkg-pgq" is a pkg/pgq consumer, woken
// by pgqd's tick NOTIFY (falling back to polling every second).
func consume(ctx context.Context, connstr, kind string, seen func(string, time.Time)) error {
	if kind == "pkg-pgq" {
		pool, err := pgxpool.New(ctx, connstr+" application_name=bench")
		if err != nil {
			return err
		}
		defer pool.Close()
		c, err := pgq.NewConsumer(pool, pgq.Config{Queue: "lat", Consumer: "c", LoopDelay: time.Second},
			pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
				for ev, err := range b.Events(ctx) {
					if err != nil {
						return err
					}
					seen(ev.Data.String, time.Now())
				}
				return nil
			}))
		if err != nil {
			return err
		}
		err = c.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	conn, err := pgx.Connect(ctx, connstr+" application_name=bench")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for ctx.Err() == nil {
		var batch *int64
		if err := conn.QueryRow(ctx, "SELECT pgq.next_batch('lat', 'c')").Scan(&batch); err != nil {
			return err
		}
		if batch == nil {
			time.Sleep(time.Millisecond)
			continue
		}
		rows, err := conn.Query(ctx, "SELECT ev_data FROM pgq.get_batch_events($1)", *batch)
		if err != nil {
			return err
		}
		data, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		now := time.Now()
		for _, d := range data {
			seen(d, now)
		}
		if _, err := conn.Exec(ctx, "SELECT pgq.finish_batch($1)", *batch); err != nil {
			return err
		}
	}
	return nil
}

// cpuTime sums the time the processes (all their threads) spent on a CPU, from
// /proc/PID/task/*/schedstat: exact, unlike the tick-sampled utime and stime, which
// miss most of a process that wakes often for a few microseconds.
func cpuTime(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			if f := strings.Fields(string(b)); len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				total += time.Duration(ns)
			}
		}
	}
	return total
}
