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
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// BenchmarkTickLatency measures end-to-end latency (producer's COMMIT returned ->
// consumer holds the event) and the idle CPU cost of the ticker, for the original
// pgqd (Debian package, C) and ours, at ticker periods of 100ms and 10ms, on the same
// PgQ SQL (the original extension) so that only the daemons differ.
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
		for _, c := range []struct {
			daemon string
			wake   string // how the consumer learns of new ticks
		}{
			{"original", "poll1ms"},
			{"ours", "poll1ms"},
			{"ours", "notify"},
		} {
			b.Run(fmt.Sprintf("%s-pgqd/%s/consumer=%s", c.daemon, period, c.wake), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					latencyCase(b, c.daemon, c.wake, period, time.Duration(seconds)*time.Second)
				}
			})
		}
	}
}

func latencyCase(b *testing.B, daemon, wake string, period, measure time.Duration) {
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
	defer conn.Close(ctx)
	if err := pgtest.CreateExtension("pgq")(ctx, conn); err != nil {
		b.Skipf("original PgQ: %v", err)
	}
	for _, q := range []string{
		"SELECT pgq.create_queue('lat')",
		"SELECT pgq.set_queue_config('lat', 'ticker_max_lag', '0')",
		"SELECT pgq.register_consumer('lat', 'c')",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}

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
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}()

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
	committed := map[int]time.Time{}
	var lat []time.Duration

	cctx, stopConsumer := context.WithCancel(ctx)
	consumerDone := make(chan error, 1)
	go func() {
		consumerDone <- consume(cctx, c.ConnString("bench"), wake, func(data string, seen time.Time) {
			n, _ := strconv.Atoi(data)
			mu.Lock()
			if t, ok := committed[n]; ok {
				lat = append(lat, seen.Sub(t))
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
		mu.Lock()
		committed[n] = time.Now()
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

	// Idle cost: CPU of the daemon process and its ticker backend over a quiet spell.
	time.Sleep(2 * time.Second)
	pids := []int{cmd.Process.Pid}
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = 'bench' AND pid <> pg_backend_pid()
		AND backend_type = 'client backend' AND coalesce(application_name, '') IN ('', 'pgqd')`)
	if err == nil {
		backends, _ := pgx.CollectRows(rows, pgx.RowTo[int32])
		for _, p := range backends {
			pids = append(pids, int(p))
		}
	}
	const quiet = 10 * time.Second
	before := cpuTicks(pids)
	time.Sleep(quiet)
	used := cpuTicks(pids) - before
	b.ReportMetric(float64(used)/100/quiet.Seconds()*100, "idle-cpu-%")
}

// consume takes batches until ctx ends, calling seen for each event as it arrives.
// wake "notify" waits for pgqd's tick notification (falling back to 1s polls);
// "poll1ms" polls every millisecond.
func consume(ctx context.Context, connstr, wake string, seen func(string, time.Time)) error {
	conn, err := pgx.Connect(ctx, connstr+" application_name=bench")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if wake == "notify" {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{pgq.TickChannel("lat")}.Sanitize()); err != nil {
			return err
		}
	}
	for ctx.Err() == nil {
		var batch *int64
		if err := conn.QueryRow(ctx, "SELECT pgq.next_batch('lat', 'c')").Scan(&batch); err != nil {
			return err
		}
		if batch == nil {
			if wake == "notify" {
				wctx, cancel := context.WithTimeout(ctx, time.Second)
				_, err := conn.WaitForNotification(wctx)
				cancel()
				if err != nil && ctx.Err() != nil {
					return nil
				}
			} else {
				time.Sleep(time.Millisecond)
			}
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

// cpuTicks sums utime+stime (clock ticks, 1/100 s) of the processes.
func cpuTicks(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += u + st
	}
	return total
}
