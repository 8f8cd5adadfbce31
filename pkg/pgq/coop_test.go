package pgq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/skytools-go/skytools/pkg/pgq"
)

// Cooperative consumers need pgq_coop, which only our PgQ has (Debian does not
// package the original), so these run against ours.

func coopConfig(queue, sub string) pgq.Config {
	cfg := fastConfig(queue, "c")
	cfg.Subconsumer = sub
	return cfg
}

func TestSubconsumersShareOneConsumersBatches(t *testing.T) {
	t.Parallel()
	e := setup(t, ours)
	ctx := context.Background()
	e.exec("CREATE TABLE applied (ev_id bigint, data text)")
	for _, sub := range []string{"b", "c"} {
		if created, err := pgq.RegisterSubconsumer(ctx, e.pool, e.queue, "c", sub); err != nil || !created {
			t.Fatalf("register subconsumer %s: %v, %v", sub, created, err)
		}
	}
	e.produce(100)
	e.tick()
	e.produce(100)
	last := e.tick()

	// Whichever batch b takes, it holds until c has finished one: so two batches are
	// in progress at once, in different subconsumers.
	cDone := make(chan struct{})
	apply := applyHandler(0)
	hb := pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
		select {
		case <-cDone:
		case <-time.After(30 * time.Second):
			return errors.New("subconsumer c never got a batch while b held one")
		}
		return apply.HandleBatch(ctx, b)
	})
	first := true
	hc := pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
		if err := apply.HandleBatch(ctx, b); err != nil {
			return err
		}
		if first {
			first = false
			defer close(cDone)
		}
		return nil
	})
	cb, err := pgq.NewConsumer(e.pool, coopConfig(e.queue, "b"), hb)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := pgq.NewConsumer(e.pool, coopConfig(e.queue, "c"), hc)
	if err != nil {
		t.Fatal(err)
	}
	rb := runConsumer(t, cb)
	runConsumer(t, cc)
	rb.waitFor(30*time.Second, "both batches applied", func() bool {
		return queryVal[int64](t, e.pool, "SELECT count(DISTINCT ev_id) FROM applied") == 200
	})
	rb.waitFor(30*time.Second, "both subconsumers to finish a batch", func() bool {
		return cb.Stats().Batches >= 1 && cc.Stats().Batches >= 1
	})
	if n := queryVal[int64](t, e.pool, "SELECT count(*) FROM applied"); n != 200 {
		t.Fatalf("%d rows applied, want 200", n)
	}
	info, err := pgq.GetConsumerInfo(ctx, e.pool, e.queue, "c")
	if err != nil {
		t.Fatal(err)
	}
	if info.LastTick != last {
		t.Fatalf("main consumer at tick %d, want %d", info.LastTick, last)
	}
}

func TestDeadSubconsumersBatchIsTakenOver(t *testing.T) {
	t.Parallel()
	e := setup(t, ours)
	ctx := context.Background()
	e.exec("CREATE TABLE applied (ev_id bigint, data text)")
	if _, err := pgq.RegisterSubconsumer(ctx, e.pool, e.queue, "c", "a"); err != nil {
		t.Fatal(err)
	}
	e.produce(2000)
	tick := e.tick()

	// Subconsumer a takes the batch and dies in the middle of it.
	runCrashChild(t, crashSpec{Src: e.db.ConnString, Queue: e.queue, CrashAt: "events:1000", Fetch: 500, Sub: "a"})
	held := queryVal[int64](t, e.pool, "SELECT coalesce(current_batch, 0) FROM pgq.get_consumer_info('q', 'c.a')")
	if held == 0 {
		t.Fatal("the killed subconsumer holds no batch")
	}

	// b, with a dead interval, takes the batch over once a has been silent that long.
	cfg := coopConfig(e.queue, "b")
	cfg.DeadInterval = 200 * time.Millisecond
	var ids []int64
	cfg.Observer.Batch = func(r pgq.BatchResult) { ids = append(ids, r.ID) }
	c, err := pgq.NewConsumer(e.pool, cfg, applyHandler(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx); err != nil {
		t.Fatal(err)
	}
	r := runConsumer(t, c)
	r.waitFor(30*time.Second, "the batch to be taken over", func() bool { return c.Stats().LastTick >= tick })
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids[0] != held {
		t.Fatalf("b finished batches %v, want the dead subconsumer's batch %d", ids, held)
	}
	var n, distinct int64
	if err := e.pool.QueryRow(ctx, "SELECT count(*), count(DISTINCT ev_id) FROM applied").Scan(&n, &distinct); err != nil {
		t.Fatal(err)
	}
	if n != 2000 || distinct != 2000 {
		t.Fatalf("applied %d rows (%d distinct), want each of 2000 events once", n, distinct)
	}
	if _, err := pgq.GetConsumerInfo(ctx, e.pool, e.queue, "c.a"); !errors.Is(err, pgq.ErrNotSubscribed) {
		t.Fatalf("dead subconsumer still registered: %v", err)
	}
}

func TestSubconsumerRegistration(t *testing.T) {
	t.Parallel()
	e := setup(t, ours)
	ctx := context.Background()
	c, err := pgq.NewConsumer(e.pool, coopConfig(e.queue, "s1"), applyHandler(0))
	if err != nil {
		t.Fatal(err)
	}
	if created, err := c.Register(ctx); err != nil || !created {
		t.Fatalf("first register: %v %v", created, err)
	}
	if created, err := c.Register(ctx); err != nil || created {
		t.Fatalf("second register: %v %v", created, err)
	}
	e.produce(1)
	e.tick()
	var batch int64
	if err := e.pool.QueryRow(ctx, "SELECT pgq_coop.next_batch('q', 'c', 's1')").Scan(&batch); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Unregister(ctx); !errors.Is(err, pgq.ErrActiveBatch) {
		t.Fatalf("unregister with an active batch: %v, want ErrActiveBatch", err)
	}
	e.exec("SELECT pgq_coop.finish_batch($1)", batch)
	if removed, err := c.Unregister(ctx); err != nil || !removed {
		t.Fatalf("unregister: %v %v", removed, err)
	}
}
