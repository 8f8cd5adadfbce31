package pgq_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgq"
)

// blockingHandler writes its events into table work of Batch.Tx, tells started, then
// waits for release (or for its context to end, returning the context's error).
func blockingHandler(started chan<- struct{}, release <-chan struct{}) pgq.Handler {
	return pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
		for ev, err := range b.Events(ctx) {
			if err != nil {
				return err
			}
			if _, err := b.Tx.Exec(ctx, "INSERT INTO work VALUES ($1)", ev.Data); err != nil {
				return err
			}
		}
		close(started)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

func TestStopLetsTheBatchInProgressFinish(t *testing.T) {
	t.Parallel()
	e := setup(t, ours)
	e.register("c")
	e.exec("CREATE TABLE work (data text)")
	e.produce(3)
	tick := e.tick()
	started, release := make(chan struct{}), make(chan struct{})
	cfg := fastConfig(e.queue, "c")
	cfg.StopGrace = time.Minute
	c, err := pgq.NewConsumer(e.pool, cfg, blockingHandler(started, release))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	<-started
	cancel() // SIGTERM while the handler works
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) before the batch in progress finished", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	info, err := pgq.GetConsumerInfo(context.Background(), e.pool, e.queue, "c")
	if err != nil {
		t.Fatal(err)
	}
	if info.LastTick != tick || queryVal[int64](t, e.pool, "SELECT count(*) FROM work") != 3 {
		t.Fatalf("after a graceful stop: position %d (want %d), work not committed", info.LastTick, tick)
	}
}

func TestStopRollsBackABatchThatOutlivesTheGrace(t *testing.T) {
	t.Parallel()
	e := setup(t, ours)
	e.register("c")
	e.exec("CREATE TABLE work (data text)")
	e.produce(3)
	e.tick()
	before := queryVal[int64](t, e.pool, "SELECT last_tick FROM pgq.get_consumer_info('q', 'c')")
	started := make(chan struct{})
	cfg := fastConfig(e.queue, "c")
	cfg.StopGrace = 20 * time.Millisecond
	c, err := pgq.NewConsumer(e.pool, cfg, blockingHandler(started, nil))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	<-started
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if after := queryVal[int64](t, e.pool, "SELECT last_tick FROM pgq.get_consumer_info('q', 'c')"); after != before {
		t.Fatalf("position moved from %d to %d although the batch was abandoned", before, after)
	}
	if n := queryVal[int64](t, e.pool, "SELECT count(*) FROM work"); n != 0 {
		t.Fatalf("abandoned batch left %d rows of work", n)
	}
}

func TestObserverGetsReadyProgressAndBatches(t *testing.T) {
	t.Parallel()
	e := setup(t, ours)
	e.register("c")
	var ready, progress atomic.Int64
	var mu sync.Mutex
	var results []pgq.BatchResult
	cfg := fastConfig(e.queue, "c")
	cfg.Observer = pgq.Observer{
		Ready:    func() { ready.Add(1) },
		Progress: func() { progress.Add(1) },
		Batch:    func(r pgq.BatchResult) { mu.Lock(); results = append(results, r); mu.Unlock() },
	}
	c, err := pgq.NewConsumer(e.pool, cfg, &collector{})
	if err != nil {
		t.Fatal(err)
	}
	r := runConsumer(t, c)
	r.waitFor(30*time.Second, "ready", func() bool { return ready.Load() == 1 })
	// Idle, the loop still beats: every LoopDelay.
	p := progress.Load()
	r.waitFor(30*time.Second, "progress while idle", func() bool { return progress.Load() >= p+3 })
	e.produce(5)
	tick := e.tick()
	r.waitFor(30*time.Second, "the batch", func() bool { return c.Stats().LastTick >= tick })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var events int64
	for _, res := range results {
		events += res.Events
	}
	s := c.Stats()
	if ready.Load() != 1 || events != 5 || s.Events != 5 || s.Batches != int64(len(results)) || s.LastTick != tick || s.LastBatchAt.IsZero() {
		t.Fatalf("ready %d, events in results %d, stats %+v", ready.Load(), events, s)
	}
}

func TestLostPositionIsReportedAndRepaired(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		e.register("c")
		ctx := context.Background()
		dst := pg.DB(t).Pool(t)
		if _, err := dst.Exec(ctx, "CREATE TABLE applied (ev_id bigint, data text)"); err != nil {
			t.Fatal(err)
		}
		cfg := fastConfig(e.queue, "c")
		cfg.Target = dst
		cfg.PositionTable = "public.positions"
		newConsumer := func() *pgq.Consumer {
			c, err := pgq.NewConsumer(e.pool, cfg, applyHandler(0))
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		consumeTo := func(tick int64) {
			c := newConsumer()
			r := runConsumer(t, c)
			r.waitFor(30*time.Second, "the consumer to catch up", func() bool { return c.Stats().LastTick >= tick })
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
		}
		runExpectingLoss := func() {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			err := newConsumer().Run(rctx)
			if !errors.Is(err, pgq.ErrLostPosition) {
				t.Fatalf("Run with a mismatched target: %v, want ErrLostPosition", err)
			}
		}

		e.produce(10)
		t1 := e.tick()
		consumeTo(t1)
		e.produce(10)
		t2 := e.tick()
		consumeTo(t2)

		// The target is restored from a backup taken at t1: its rows of the second
		// batch and its position go back.
		if _, err := dst.Exec(ctx, "DELETE FROM applied WHERE ev_id > (SELECT max(ev_id) - 10 FROM applied)"); err != nil {
			t.Fatal(err)
		}
		if _, err := dst.Exec(ctx, "UPDATE positions SET last_tick_id = $1", t1); err != nil {
			t.Fatal(err)
		}
		e.produce(10)
		t3 := e.tick()
		runExpectingLoss()
		// Rewind the queue to the target: the second batch is applied again, then the
		// third.
		if err := newConsumer().Rewind(ctx); err != nil {
			t.Fatal(err)
		}
		consumeTo(t3)
		if n := queryVal[int64](t, dst, "SELECT count(DISTINCT ev_id) FROM applied"); n != 30 || queryVal[int64](t, dst, "SELECT count(*) FROM applied") != 30 {
			t.Fatalf("after rewind the target has %d events, want each of 30 once", n)
		}

		// A position that matches nothing, then forgotten: the consumer goes on from the
		// queue's position.
		if _, err := dst.Exec(ctx, "UPDATE positions SET last_tick_id = 999999"); err != nil {
			t.Fatal(err)
		}
		e.produce(10)
		t4 := e.tick()
		runExpectingLoss()
		c := newConsumer()
		if err := c.ResetPosition(ctx); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := c.Position(ctx); err != nil || ok {
			t.Fatalf("position after reset: %v %v", ok, err)
		}
		consumeTo(t4)
		if n := queryVal[int64](t, dst, "SELECT count(*) FROM applied"); n != 40 {
			t.Fatalf("target has %d rows, want 40", n)
		}
	})
}

func TestTwoProcessesUnderOneNameApplyABatchOnce(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		e.register("c")
		e.exec("CREATE TABLE work (data text)")
		e.produce(10)
		tick := e.tick()
		// Both consumers get the batch (PgQ may even give them two ids for it when they
		// ask at the same moment); the barrier keeps both in the handler, with their
		// work written, until the other has arrived too. Only one may commit.
		var arrived sync.WaitGroup
		arrived.Add(2)
		var ids [2]int64
		newConsumer := func(i int) *pgq.Consumer {
			h := pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
				for ev, err := range b.Events(ctx) {
					if err != nil {
						return err
					}
					if _, err := b.Tx.Exec(ctx, "INSERT INTO work VALUES ($1)", ev.Data); err != nil {
						return err
					}
				}
				if ids[i] == 0 {
					ids[i] = b.ID
					arrived.Done()
					done := make(chan struct{})
					go func() { arrived.Wait(); close(done) }()
					select {
					case <-done:
					case <-time.After(30 * time.Second):
						return errors.New("the other consumer never came")
					}
				}
				return nil
			})
			c, err := pgq.NewConsumer(e.pool, fastConfig(e.queue, "c"), h)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		c0, c1 := newConsumer(0), newConsumer(1)
		r := runConsumer(t, c0)
		runConsumer(t, c1)
		r.waitFor(30*time.Second, "the batch to be finished", func() bool {
			return queryVal[int64](t, e.pool, "SELECT last_tick FROM pgq.get_consumer_info('q', 'c')") >= tick
		})
		if n := queryVal[int64](t, e.pool, "SELECT count(*) FROM work"); n != 10 {
			t.Fatalf("work has %d rows, want each of 10 events once", n)
		}
		r.waitFor(30*time.Second, "the loser's error", func() bool { return c0.Stats().Errors+c1.Stats().Errors >= 1 })
		for _, c := range []*pgq.Consumer{c0, c1} {
			if err := c.Stats().LastError; err != nil && !errors.Is(err, pgq.ErrBatchNotFound) {
				t.Errorf("loser failed with %v, want ErrBatchNotFound", err)
			}
		}
	})
}

func TestProgressGoesOnWhileBackingOff(t *testing.T) {
	t.Parallel()
	e := setup(t, ours)
	e.register("c")
	e.produce(1)
	e.tick()
	var progress atomic.Int64
	cfg := fastConfig(e.queue, "c")
	cfg.BackoffMin, cfg.BackoffMax = time.Minute, time.Minute
	cfg.Observer.Progress = func() { progress.Add(1) }
	c, err := pgq.NewConsumer(e.pool, cfg, pgq.HandlerFunc(func(context.Context, *pgq.Batch) error {
		return errors.New("always fails")
	}))
	if err != nil {
		t.Fatal(err)
	}
	r := runConsumer(t, c)
	r.waitFor(30*time.Second, "the first failure", func() bool { return c.Stats().Errors == 1 })
	p := progress.Load()
	r.waitFor(30*time.Second, "beats during the minute of backoff", func() bool { return progress.Load() >= p+5 })
	if n := c.Stats().Errors; n != 1 {
		t.Fatalf("%d failures: the backoff was not kept", n)
	}
}
