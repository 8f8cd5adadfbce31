package pgq_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/pgq"
)

// childEnv carries a crashSpec to the test binary re-executed as a consumer process
// that a test kills at a chosen point.
const childEnv = "PGQ_TEST_CRASH_CHILD"

type crashSpec struct {
	Src     string // the queue's database
	Dst     string // the target database; "" applies the work in the source database
	Queue   string
	CrashAt string // a consumer hook point, or "events:N" (inside the handler)
	Fetch   int
	Sort    int    // Config.SortBuffer (-1: PostgreSQL sorts, the batch is streamed)
	Sub     string // a subconsumer name for cooperative consuming
}

// applyHandler writes every event's id and data into table applied of Batch.Tx, one
// COPY per block; killAfter > 0 kills the process once that many events are written
// (still uncommitted).
func applyHandler(killAfter int) pgq.Handler {
	return pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
		n := 0
		for {
			evs, err := b.Fetch(ctx)
			if err != nil || len(evs) == 0 {
				return err
			}
			_, err = b.Tx.CopyFrom(ctx, pgx.Identifier{"applied"}, []string{"ev_id", "data"},
				pgx.CopyFromSlice(len(evs), func(i int) ([]any, error) { return []any{evs[i].ID, evs[i].Data}, nil }))
			if err != nil {
				return err
			}
			n += len(evs)
			if killAfter > 0 && n >= killAfter {
				killSelf()
			}
		}
	})
}

func killSelf() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// TestCrashChild is not a test: it is the consumer process of the crash tests.
func TestCrashChild(t *testing.T) {
	raw := os.Getenv(childEnv)
	if raw == "" {
		t.Skip("the consumer process of the crash tests; runs only when re-executed by them")
	}
	var spec crashSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, err := pgxpool.New(ctx, spec.Src)
	if err != nil {
		t.Fatal(err)
	}
	cfg := crashConfig(spec.Queue, spec.Fetch)
	cfg.Subconsumer, cfg.SortBuffer = spec.Sub, spec.Sort
	if spec.Dst != "" {
		if cfg.Target, err = pgxpool.New(ctx, spec.Dst); err != nil {
			t.Fatal(err)
		}
	}
	killAfter := 0
	if n, ok := strings.CutPrefix(spec.CrashAt, "events:"); ok {
		killAfter, _ = strconv.Atoi(n)
	}
	c, err := pgq.NewConsumer(src, cfg, applyHandler(killAfter))
	if err != nil {
		t.Fatal(err)
	}
	pgq.SetHook(c, func(point string) {
		if point == spec.CrashAt {
			killSelf()
		}
	})
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	err = c.Run(rctx)
	t.Fatalf("consumer was not killed at %s; Run returned %v", spec.CrashAt, err)
}

func crashConfig(queue string, fetch int) pgq.Config {
	cfg := fastConfig(queue, "c")
	cfg.FetchSize = fetch
	cfg.StopGrace = -1
	return cfg
}

// runCrashChild runs the consumer process and checks that it was killed.
func runCrashChild(t *testing.T, spec crashSpec) {
	t.Helper()
	raw, _ := json.Marshal(spec)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+string(raw))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("consumer process was not killed (err %v):\n%s", err, out)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("consumer process ended with %v, not killed at %s:\n%s", err, spec.CrashAt, out)
	}
}

// TestCrashAtAnyPointNeitherLosesNorRepeats kills a consumer process at each step of
// a batch, restarts the consumer and checks that every event was applied exactly
// once: in the queue's own database (the handler's work and finish_batch in one
// transaction) and in another database (Config.Target). Mid-stream crashes are
// tried with the batch sorted by the consumer and streamed sorted by PostgreSQL.
func TestCrashAtAnyPointNeitherLosesNorRepeats(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		target  bool
		crashAt string
		sort    int
	}{
		{"same-db/mid-batch", false, "events:1500", 0},
		{"same-db/mid-stream", false, "events:1500", -1},
		{"same-db/after-handler-before-finish", false, "before-finish", 0},
		{"same-db/after-commit", false, "after-commit", 0},
		{"target/mid-batch", true, "events:1500", 0},
		{"target/mid-stream", true, "events:1500", -1},
		{"target/before-target-commit", true, "before-target-commit", 0},
		{"target/between-target-commit-and-source-finish", true, "after-target-commit", 0},
		{"target/after-source-finish", true, "after-commit", 0},
	}
	bothFlavors(t, func(t *testing.T, fl flavor) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				testCrash(t, fl, tc.target, tc.crashAt, tc.sort)
			})
		}
	})
}

func testCrash(t *testing.T, fl flavor, target bool, crashAt string, sort int) {
	e := setup(t, fl)
	ctx := context.Background()
	e.register("c")
	const big, small = 3000, 700
	e.produce(big)
	t1 := e.tick()
	e.produce(small)
	t2 := e.tick()

	spec := crashSpec{Src: e.db.ConnString, Queue: e.queue, CrashAt: crashAt, Fetch: 500, Sort: sort}
	applied := e.pool
	if target {
		dst := pg.DB(t)
		spec.Dst = dst.ConnString
		applied = dst.Pool(t)
	}
	if _, err := applied.Exec(ctx, "CREATE TABLE applied (ev_id bigint, data text)"); err != nil {
		t.Fatal(err)
	}
	runCrashChild(t, spec)

	// The state the crash left behind proves where it happened.
	info, err := pgq.GetConsumerInfo(ctx, e.pool, e.queue, "c")
	if err != nil {
		t.Fatal(err)
	}
	rows := queryVal[int64](t, applied, "SELECT count(*) FROM applied")
	switch crashAt {
	case "after-commit":
		if info.LastTick != t1 || rows != big {
			t.Fatalf("after the crash: position %d, %d rows applied; want %d and %d", info.LastTick, rows, t1, big)
		}
	case "after-target-commit":
		if info.CurrentBatch == 0 || rows != big {
			t.Fatalf("after the crash: batch %d open, %d rows applied; want the batch open and %d rows", info.CurrentBatch, rows, big)
		}
	default:
		if rows != 0 {
			t.Fatalf("after a crash at %s, %d rows were applied: want the work rolled back", crashAt, rows)
		}
	}

	// Restart: a consumer in this process carries on to the end.
	cfg := crashConfig(e.queue, 500)
	if target {
		cfg.Target = applied
	}
	var skipped []int64
	cfg.Observer.Batch = func(r pgq.BatchResult) {
		if r.Skipped {
			skipped = append(skipped, r.ID)
		}
	}
	c, err := pgq.NewConsumer(e.pool, cfg, applyHandler(0))
	if err != nil {
		t.Fatal(err)
	}
	r := runConsumer(t, c)
	r.waitFor(time.Minute, "the restarted consumer to reach the last tick", func() bool { return c.Stats().LastTick >= t2 })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}

	var n, distinct, wrong int64
	err = applied.QueryRow(ctx, `SELECT count(*), count(DISTINCT ev_id),
	    count(*) FILTER (WHERE data::int NOT BETWEEN 0 AND $1) FROM applied`, big-1).Scan(&n, &distinct, &wrong)
	if err != nil {
		t.Fatal(err)
	}
	if n != big+small || distinct != n || wrong != 0 {
		t.Fatalf("applied %d rows, %d distinct events, %d out of range: want each of %d events exactly once", n, distinct, wrong, big+small)
	}
	if crashAt == "after-target-commit" && len(skipped) != 1 {
		t.Errorf("restart after the target commit: %d batches skipped as already applied, want 1", len(skipped))
	}
	if target {
		tick, ok, err := c.Position(ctx)
		if err != nil || !ok || tick != t2 {
			t.Fatalf("target position %d (%v, %v), want %d", tick, ok, err, t2)
		}
	}

}
