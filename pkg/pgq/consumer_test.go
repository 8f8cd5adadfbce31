package pgq_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/skytools-go/skytools/pkg/pgq"
)

// collector is a handler that remembers every batch and event it saw.
type collector struct {
	mu      sync.Mutex
	batches []*pgq.Batch
	events  []pgq.Event
	// each, when set, runs for every event in the handler (e.g. to retry it).
	each func(b *pgq.Batch, ev pgq.Event) error
}

func (c *collector) HandleBatch(ctx context.Context, b *pgq.Batch) error {
	var evs []pgq.Event
	for ev, err := range b.Events(ctx) {
		if err != nil {
			return err
		}
		if c.each != nil {
			if err := c.each(b, ev); err != nil {
				return err
			}
		}
		evs = append(evs, ev)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cp := *b
	cp.Tx = nil
	c.batches = append(c.batches, &cp)
	c.events = append(c.events, evs...)
	return nil
}

func (c *collector) snapshot() ([]*pgq.Batch, []pgq.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*pgq.Batch(nil), c.batches...), append([]pgq.Event(nil), c.events...)
}

// consumeUntil runs a consumer with handler h until it has finished the batch ending
// at tick, then stops it.
func (e *env) consumeUntil(cfg pgq.Config, h pgq.Handler, tick int64) *pgq.Consumer {
	e.t.Helper()
	c, err := pgq.NewConsumer(e.pool, cfg, h)
	if err != nil {
		e.t.Fatal(err)
	}
	r := runConsumer(e.t, c)
	r.waitFor(30*time.Second, fmt.Sprintf("consumer to reach tick %d", tick), func() bool { return c.Stats().LastTick >= tick })
	if err := r.stop(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestProducedEventsArriveExactlyAsWritten(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		e.register("c")
		ctx := context.Background()
		null := pgtype.Text{}
		single := pgq.Event{Type: pgq.Text("single"), Data: pgq.Text(""), Extra1: null, Extra2: pgq.Text(""), Extra3: pgq.Text("x'\\y"), Extra4: null}
		bulk := []pgq.Event{
			{Type: pgq.Text("bulk"), Data: pgq.Text("b1"), Extra1: pgq.Text("public.t")},
			{Type: null, Data: null, Extra4: pgq.Text("")},
		}
		copied := []pgq.Event{{ID: 1_000_000, Time: time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC), Type: pgq.Text("copied"), Data: pgq.Text("c1"), Extra2: pgq.Text("e2")}}
		seqBefore := queryVal[int64](t, e.pool, "SELECT pgq.seq_getval(queue_event_seq) FROM pgq.queue WHERE queue_name = $1", e.queue)
		var singleID int64
		var producedAt time.Time
		err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			var err error
			if err := tx.QueryRow(ctx, "SELECT now()").Scan(&producedAt); err != nil {
				return err
			}
			if singleID, err = pgq.Insert(ctx, tx, e.queue, single); err != nil {
				return err
			}
			if n, err := pgq.InsertEvents(ctx, tx, e.queue, bulk); err != nil || n != 2 {
				return fmt.Errorf("InsertEvents = %d, %v", n, err)
			}
			if n, err := pgq.CopyEvents(ctx, tx, e.queue, copied); err != nil || n != 1 {
				return fmt.Errorf("CopyEvents = %d, %v", n, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		seqAfter := queryVal[int64](t, e.pool, "SELECT pgq.seq_getval(queue_event_seq) FROM pgq.queue WHERE queue_name = $1", e.queue)
		// A fresh sequence reads 1 before and after its first value.
		if seqBefore != 1 || seqAfter != 4 {
			t.Errorf("event sequence at %d after 4 events (was %d): want one value per event, copies included, for the ticker to see them", seqAfter, seqBefore)
		}
		tick := e.tick()

		col := &collector{}
		e.consumeUntil(fastConfig(e.queue, "c"), col, tick)
		_, got := col.snapshot()
		if len(got) != 4 {
			t.Fatalf("got %d events, want 4: %+v", len(got), got)
		}
		want := append(append([]pgq.Event{single}, bulk...), copied...)
		for i, g := range got {
			w := want[i]
			if g.Type != w.Type || g.Data != w.Data || g.Extra1 != w.Extra1 || g.Extra2 != w.Extra2 || g.Extra3 != w.Extra3 || g.Extra4 != w.Extra4 {
				t.Errorf("event %d payload:\n got  %+v\n want %+v", i, g, w)
			}
			if g.Retry != 0 || g.TxID == 0 {
				t.Errorf("event %d: retry %d, txid %d", i, g.Retry, g.TxID)
			}
		}
		if got[0].ID != singleID {
			t.Errorf("Insert returned id %d, consumer saw %d", singleID, got[0].ID)
		}
		for i := 0; i < 3; i++ {
			if !got[i].Time.Equal(producedAt) {
				t.Errorf("event %d: ev_time %v, want the transaction's start %v", i, got[i].Time, producedAt)
			}
		}
		if got[3].ID != copied[0].ID || !got[3].Time.Equal(copied[0].Time) {
			t.Errorf("copied event: id %d time %v, want %d %v", got[3].ID, got[3].Time, copied[0].ID, copied[0].Time)
		}
	})
}

func TestBatchCarriesTicksTimesAndLag(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		e.register("c")
		prev := queryVal[int64](t, e.pool, "SELECT last_tick FROM pgq.get_consumer_info('q', 'c')")
		e.produce(3)
		tick := e.tick()
		col := &collector{}
		e.consumeUntil(fastConfig(e.queue, "c"), col, tick)
		bs, evs := col.snapshot()
		if len(bs) != 1 || len(evs) != 3 {
			t.Fatalf("%d batches, %d events; want 1 and 3", len(bs), len(evs))
		}
		b := bs[0]
		if b.PrevTick != prev || b.Tick != tick || b.Queue != "q" || b.Consumer != "c" || b.ID == 0 {
			t.Errorf("batch %+v: want ticks %d..%d on q/c", b, prev, tick)
		}
		if b.PrevTickTime.IsZero() || b.TickTime.Before(b.PrevTickTime) || b.Lag < 0 {
			t.Errorf("batch times %v..%v lag %v", b.PrevTickTime, b.TickTime, b.Lag)
		}
	})
}

// TestLargeBatchComesInBlocks reads a batch sorted by the consumer and one streamed
// sorted from PostgreSQL: both come in blocks of FetchSize.
func TestLargeBatchComesInBlocks(t *testing.T) {
	t.Parallel()
	e := setup(t, ours)
	for _, sortBuffer := range []int{0, -1} {
		name := fmt.Sprint("c", -sortBuffer)
		e.register(name)
		e.produce(2500)
		tick := e.tick()
		var blocks []int
		h := pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
			for {
				evs, err := b.Fetch(ctx)
				if err != nil {
					return err
				}
				if len(evs) == 0 {
					return nil
				}
				blocks = append(blocks, len(evs))
			}
		})
		cfg := fastConfig(e.queue, name)
		cfg.FetchSize, cfg.SortBuffer = 1000, sortBuffer
		e.consumeUntil(cfg, h, tick)
		if fmt.Sprint(blocks) != "[1000 1000 500]" {
			t.Fatalf("SortBuffer %d: blocks %v, want [1000 1000 500]", sortBuffer, blocks)
		}
	}
}

func TestTableFilterAndBatchSizing(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		e.register("c")
		ctx := context.Background()
		first := queryVal[int64](t, e.pool, "SELECT last_tick FROM pgq.get_consumer_info('q', 'c')")
		var last int64
		for i := 0; i < 5; i++ { // 5 ticks with 2 events each: one of public.a, one of other.b
			for _, tbl := range []string{"public.a", "other.b"} {
				ev := pgq.NewEvent("t", fmt.Sprint(i))
				ev.Extra1 = pgq.Text(tbl)
				if _, err := pgq.Insert(ctx, e.pool, e.queue, ev); err != nil {
					t.Fatal(err)
				}
			}
			last = e.tick()
		}
		col := &collector{}
		cfg := fastConfig(e.queue, "c")
		cfg.Tables = []string{"a"} // means public.a
		cfg.MinCount = 6           // 10 events in the backlog: one batch over all ticks
		e.consumeUntil(cfg, col, last)
		bs, evs := col.snapshot()
		if len(bs) != 1 || bs[0].PrevTick != first || bs[0].Tick != last {
			t.Fatalf("batches %v: want one batch over ticks %d..%d", ticksOf(bs), first, last)
		}
		if len(evs) != 5 {
			t.Fatalf("got %d events, want the 5 of public.a", len(evs))
		}
		for _, ev := range evs {
			if ev.Extra1.String != "public.a" {
				t.Errorf("filter let through %q", ev.Extra1.String)
			}
		}
	})
}

func ticksOf(bs []*pgq.Batch) []string {
	var out []string
	for _, b := range bs {
		out = append(out, fmt.Sprintf("%d..%d", b.PrevTick, b.Tick))
	}
	return out
}

func TestRetriedEventComesBackToItsConsumerOnly(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		e.register("c")
		e.register("other")
		e.produce(3)
		tick := e.tick()
		col := &collector{each: func(b *pgq.Batch, ev pgq.Event) error {
			if ev.Data.String == "1" && ev.Retry == 0 {
				return b.Retry(ev, 0)
			}
			return nil
		}}
		c, err := pgq.NewConsumer(e.pool, fastConfig(e.queue, "c"), col)
		if err != nil {
			t.Fatal(err)
		}
		r := runConsumer(t, c)
		r.waitFor(30*time.Second, "first batch", func() bool { return c.Stats().LastTick >= tick })
		if s := c.Stats(); s.Retried != 1 {
			t.Fatalf("stats say %d retried, want 1", s.Retried)
		}
		// pgqd's retry round: move due events back into the queue, then tick.
		e.exec("SELECT pgq.maint_retry_events()")
		tick2 := e.tick()
		r.waitFor(30*time.Second, "retried event", func() bool {
			_, evs := col.snapshot()
			return len(evs) == 4
		})
		_, evs := col.snapshot()
		if r := evs[3]; r.Data.String != "1" || r.Retry != 1 || r.ID != evs[1].ID {
			t.Fatalf("4th event %+v: want event 1 again with retry count 1", r)
		}
		// The other consumer sees the three events once and nothing retried.
		other := &collector{}
		e.consumeUntil(fastConfig(e.queue, "other"), other, tick2)
		if _, oe := other.snapshot(); len(oe) != 3 {
			t.Fatalf("other consumer got %d events, want 3", len(oe))
		}
	})
}

func TestRetryBatchSendsTheWholeBatchBackLater(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		e.register("c")
		e.exec("CREATE TABLE work (data text)")
		e.produce(3)
		tick := e.tick()
		var mu sync.Mutex
		seen := map[string][]int{}
		h := pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
			retry := false
			for ev, err := range b.Events(ctx) {
				if err != nil {
					return err
				}
				mu.Lock()
				seen[ev.Data.String] = append(seen[ev.Data.String], ev.Retry)
				mu.Unlock()
				if _, err := b.Tx.Exec(ctx, "INSERT INTO work VALUES ($1)", ev.Data); err != nil {
					return err
				}
				retry = retry || ev.Retry == 0
			}
			if retry {
				return pgq.RetryBatch(0)
			}
			return nil
		})
		c, err := pgq.NewConsumer(e.pool, fastConfig(e.queue, "c"), h)
		if err != nil {
			t.Fatal(err)
		}
		r := runConsumer(t, c)
		r.waitFor(30*time.Second, "first batch", func() bool { return c.Stats().LastTick >= tick })
		if n := queryVal[int64](t, e.pool, "SELECT count(*) FROM work"); n != 0 {
			t.Fatalf("work of the retried batch was committed: %d rows", n)
		}
		e.exec("SELECT pgq.maint_retry_events()")
		e.tick()
		r.waitFor(30*time.Second, "retried batch applied", func() bool {
			return queryVal[int64](t, e.pool, "SELECT count(*) FROM work") == 3
		})
		mu.Lock()
		defer mu.Unlock()
		for _, d := range []string{"0", "1", "2"} {
			if fmt.Sprint(seen[d]) != "[0 1]" {
				t.Errorf("event %s seen with retry counts %v, want [0 1]", d, seen[d])
			}
		}
	})
}

func TestHandlerErrorRollsBackAndTheBatchComesAgain(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		e.register("c")
		e.exec("CREATE TABLE work (data text)")
		e.produce(5)
		tick := e.tick()
		var mu sync.Mutex
		var ids []int64
		attempts := 0
		h := pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
			mu.Lock()
			attempts++
			n := attempts
			ids = append(ids, b.ID)
			mu.Unlock()
			for ev, err := range b.Events(ctx) {
				if err != nil {
					return err
				}
				if _, err := b.Tx.Exec(ctx, "INSERT INTO work VALUES ($1)", ev.Data); err != nil {
					return err
				}
			}
			if n == 1 {
				return errors.New("first attempt fails after writing")
			}
			if n == 2 {
				panic("second attempt panics")
			}
			return nil
		})
		var observed []error
		cfg := fastConfig(e.queue, "c")
		cfg.Observer.Error = func(err error) { mu.Lock(); observed = append(observed, err); mu.Unlock() }
		c := e.consumeUntil(cfg, h, tick)
		if n := queryVal[int64](t, e.pool, "SELECT count(*) FROM work"); n != 5 {
			t.Fatalf("work has %d rows, want each of 5 events once", n)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(ids) != 3 || ids[0] != ids[1] || ids[1] != ids[2] {
			t.Fatalf("batch ids per attempt %v: want the same batch three times", ids)
		}
		if len(observed) != 2 || c.Stats().Errors != 2 {
			t.Fatalf("observed errors %v, stats %d: want 2", observed, c.Stats().Errors)
		}
		var pe *pgq.Error
		if !errors.As(observed[0], &pe) || pe.Queue != "q" || pe.Consumer != "c" || pe.Batch != ids[0] {
			t.Errorf("handler error %v does not name queue, consumer and batch", observed[0])
		}
	})
}

func TestBulkInsertIsSafeAgainstRotationUnderRepeatableRead(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		e.register("c")
		ctx := context.Background()
		e.exec("SELECT pgq.set_queue_config('q', 'rotation_period', '0')")

		rr, err := e.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
		if err != nil {
			t.Fatal(err)
		}
		defer rr.Rollback(ctx)
		before := queryVal[string](t, rr, "SELECT pgq.current_event_table('q')") // the snapshot

		// Rotate as pgqd does. Rotation waits until the slowest consumer's tick is newer
		// than the last switch (by snapshot xmin, which other tests' transactions in the
		// cluster hold back), so move the consumer along until it happens.
		waitFor(t, 30*time.Second, "a table rotation", func() bool {
			e.tick()
			e.exec("SELECT pgq.finish_batch(pgq.next_batch('q', 'c'))")
			e.exec("SELECT pgq.maint_rotate_tables_step1('q')")
			e.exec("SELECT pgq.maint_rotate_tables_step2()")
			return queryVal[string](t, e.pool, "SELECT pgq.current_event_table('q')") != before
		})
		// Other traffic and ticks move on meanwhile.
		e.produce(1)
		e.tick()

		_, err = pgq.InsertEvents(ctx, rr, e.queue, []pgq.Event{pgq.NewEvent("late", "rr")})
		if fl.name == "original" {
			// The original settles the rotation while our snapshot predates it: the
			// row lock refuses instead of writing where no batch would look.
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "40001" {
				t.Fatalf("InsertEvents under REPEATABLE READ across a rotation: %v, want a serialization failure", err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := rr.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		tick := e.tick()
		col := &collector{}
		e.consumeUntil(fastConfig(e.queue, "c"), col, tick)
		_, evs := col.snapshot()
		found := false
		for _, ev := range evs {
			found = found || ev.Type.String == "late"
		}
		if !found {
			t.Fatalf("the event written under REPEATABLE READ into %s was not delivered (got %d events)", before, len(evs))
		}
	})
}

// TestSlowHandlerOutlivesTheDatabasesTimeouts: statement_timeout and
// idle_in_transaction_session_timeout are meant for an application's ordinary
// sessions; the consumer's transactions last as long as its batch.
func TestSlowHandlerOutlivesTheDatabasesTimeouts(t *testing.T) {
	t.Parallel()
	e := setup(t, ours)
	e.register("c")
	e.produce(20000) // ~2.5 MB: more than the socket buffers hold
	tick := e.tick()
	e.exec(fmt.Sprintf("ALTER DATABASE %s SET statement_timeout = '200ms'", e.db.Name))
	e.exec(fmt.Sprintf("ALTER DATABASE %s SET idle_in_transaction_session_timeout = '200ms'", e.db.Name))
	e.pool.Reset() // new connections get the setting
	var blocks int
	h := pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
		for {
			evs, err := b.Fetch(ctx)
			if err != nil || len(evs) == 0 {
				return err
			}
			blocks++
			time.Sleep(40 * time.Millisecond) // 20 blocks: the batch takes ~0.8 s
		}
	})
	c := e.consumeUntil(fastConfig(e.queue, "c"), h, tick)
	if s := c.Stats(); s.Errors != 0 || s.Events != 20000 {
		t.Fatalf("a batch handled for longer than the timeouts: %d errors (last %v), %d events", s.Errors, s.LastError, s.Events)
	}
}

// TestEventsComeInIDOrderWhereverTheyAreStored stores events in the reverse of their
// id order (explicit ids, as when copying from another queue) and reads them with
// the consumer sorting them, with a sort buffer that a batch turns out not to fit
// midway (a long transaction's events, which the ticks' event counts do not show:
// the query is cancelled and PostgreSQL sorts), and with PostgreSQL sorting
// throughout. Every way gives every event once, each batch in id order, and a block
// a handler appends to does not overwrite the next one.
func TestEventsComeInIDOrderWhereverTheyAreStored(t *testing.T) {
	t.Parallel()
	bothFlavors(t, func(t *testing.T, fl flavor) {
		e := setup(t, fl)
		cases := []struct {
			name          string
			buffer        int
			sorted, spilt int // batches the consumer sorts, batches found too big midway
		}{
			{"consumer sorts", 0, 3, 0},
			{"too big midway", 4096, 0, 1},
			{"postgres sorts", -1, 0, 0},
		}
		for _, c := range cases {
			e.register(c.name)
		}
		ctx := context.Background()
		long, err := e.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = long.Rollback(ctx) }()
		if _, err := long.Exec(ctx, `SELECT pgq.insert_event_raw($1, id, now(), NULL, NULL, 't', id::text, NULL, NULL, NULL, NULL)
  FROM generate_series(1000, 701, -1) id`, e.queue); err != nil {
			t.Fatal(err)
		}
		e.produce(5)
		e.tick() // batch 1: the five events
		if err := long.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		e.tick() // batch 2: the long transaction's 300 events
		e.produce(3)
		e.exec(`SELECT pgq.insert_event_raw($1, id, now(), NULL, NULL, 't', repeat('x', 100), NULL, NULL, NULL, NULL)
  FROM generate_series(3000, 2001, -1) id`, e.queue)
		tick := e.tick() // batch 3: 1003 events
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var batches [][]int64
				h := pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
					var ids []int64
					for {
						evs, err := b.Fetch(ctx)
						if err != nil {
							return err
						}
						if len(evs) == 0 {
							batches = append(batches, ids)
							return nil
						}
						for _, ev := range evs {
							ids = append(ids, ev.ID)
						}
						_ = append(evs, pgq.Event{ID: -1}) // must not show up in the next block
					}
				})
				cfg := fastConfig(e.queue, c.name)
				cfg.FetchSize, cfg.SortBuffer = 64, c.buffer
				cons := e.consumeUntil(cfg, h, tick)
				var sizes []int
				for _, ids := range batches {
					sizes = append(sizes, len(ids))
					if !slices.IsSorted(ids) || ids[0] <= 0 {
						t.Errorf("batch of %d events not in id order: %v ... %v", len(ids), ids[:min(5, len(ids))], ids[max(0, len(ids)-5):])
					}
				}
				if fmt.Sprint(sizes) != "[5 300 1003]" {
					t.Fatalf("batches of %v events, want [5 300 1003]", sizes)
				}
				if batches[1][0] != 701 || batches[1][299] != 1000 || batches[2][1002] != 3000 {
					t.Errorf("wrong events: second batch %d..%d, third ends at %d", batches[1][0], batches[1][299], batches[2][1002])
				}
				if sorted, spilt := pgq.SortCounts(cons); sorted != c.sorted || spilt != c.spilt {
					t.Errorf("consumer sorted %d batches and found %d too big midway, want %d and %d", sorted, spilt, c.sorted, c.spilt)
				}
			})
		}
	})
}
