package sql_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
)

func coopBatch(t *testing.T, c *pgx.Conn, sub string, dead ...string) *int64 {
	t.Helper()
	if len(dead) > 0 {
		return val[*int64](t, c, "SELECT pgq_coop.next_batch('cq', 'main', $1, $2::interval)", sub, dead[0])
	}
	return val[*int64](t, c, "SELECT pgq_coop.next_batch('cq', 'main', $1)", sub)
}

func eventTypes(evs []event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, *e.Type)
	}
	return out
}

// TestCoopSubconsumers: registration is idempotent, consecutive batches go to different
// subconsumers, a subconsumer gets its open batch back, batches finish independently.
func TestCoopSubconsumers(t *testing.T) {
	t.Parallel()
	c := pg.DB(t).Conn(t)
	q(t, c, "SELECT pgq.create_queue('cq')")
	fastTicks(t, c, "cq")
	for i, want := range []int32{1, 0, 0} {
		if got := val[int32](t, c, "SELECT pgq_coop.register_subconsumer('cq', 'main', 's1')"); got != want {
			t.Fatalf("register #%d = %d", i, got)
		}
	}
	if got := val[int32](t, c, "SELECT pgq_coop.register_subconsumer('cq', 'main', 's2')"); got != 1 {
		t.Fatalf("register s2 = %d", got)
	}
	wantErr(t, c, "Event queue not created yet", "SELECT pgq_coop.register_subconsumer('nope', 'main', 's1')")
	if b := coopBatch(t, c, "s1"); b != nil {
		t.Fatalf("batch before any tick: %d", *b)
	}
	q(t, c, "SELECT pgq.insert_event('cq', 'ev' || i, 'd') FROM generate_series(0, 2) i")
	q(t, c, "SELECT pgq.ticker('cq')")
	b1 := coopBatch(t, c, "s1")
	if b1 == nil {
		t.Fatal("s1 got no batch")
	}
	if again := coopBatch(t, c, "s1"); again == nil || *again != *b1 {
		t.Fatalf("s1 asked again: %v, want %d", again, *b1)
	}
	if b := coopBatch(t, c, "s2"); b != nil {
		t.Fatalf("s2 got batch %d without a new tick", *b)
	}
	q(t, c, "SELECT pgq.insert_event('cq', 'ev' || i, 'd') FROM generate_series(3, 5) i")
	q(t, c, "SELECT pgq.ticker('cq')")
	b2 := coopBatch(t, c, "s2")
	if b2 == nil || *b2 == *b1 {
		t.Fatalf("s2 batch %v", b2)
	}
	if got := eventTypes(batchEvents(t, c, *b1)); len(got) != 3 || got[0] != "ev0" {
		t.Fatalf("s1 events %v", got)
	}
	if got := eventTypes(batchEvents(t, c, *b2)); len(got) != 3 || got[0] != "ev3" {
		t.Fatalf("s2 events %v", got)
	}
	if n := val[int32](t, c, "SELECT pgq_coop.finish_batch($1)", *b2); n != 1 {
		t.Fatal("finish s2")
	}
	if n := val[int32](t, c, "SELECT pgq_coop.finish_batch($1)", *b2); n != 0 {
		t.Fatal("second finish of s2's batch")
	}
	// the coop rows show in get_consumer_info
	if n := val[int64](t, c, "SELECT count(*) FROM pgq.get_consumer_info('cq') WHERE consumer_name LIKE 'main%'"); n != 3 {
		t.Fatalf("consumer info rows %d", n)
	}
	// a retry by a subconsumer comes back to the group
	q(t, c, "SELECT pgq.event_retry($1, 1::bigint, 0)", *b1)
	if n := val[int32](t, c, "SELECT pgq_coop.finish_batch($1)", *b1); n != 1 {
		t.Fatal("finish s1")
	}
	q(t, c, "SELECT pgq.maint_retry_events()")
	q(t, c, "SELECT pgq.ticker('cq')")
	b3 := coopBatch(t, c, "s1")
	if got := eventTypes(batchEvents(t, c, *b3)); len(got) != 1 || got[0] != "ev0" {
		t.Fatalf("retried events %v", got)
	}
	q(t, c, "SELECT pgq_coop.finish_batch($1)", *b3)
}

// TestCoopTakeoverAndUnregister: a subconsumer inactive longer than the dead interval
// loses its batch to the one asking; unregistering follows the batch_handling rule; the
// main consumer refuses coop work while it holds a batch of its own.
func TestCoopTakeoverAndUnregister(t *testing.T) {
	t.Parallel()
	c := pg.DB(t).Conn(t)
	q(t, c, "SELECT pgq.create_queue('cq')")
	fastTicks(t, c, "cq")
	q(t, c, "SELECT pgq_coop.register_subconsumer('cq', 'main', 's1')")
	q(t, c, "SELECT pgq_coop.register_subconsumer('cq', 'main', 's2')")
	q(t, c, "SELECT pgq.insert_event('cq', 'x', 'd')")
	q(t, c, "SELECT pgq.ticker('cq')")
	b1 := coopBatch(t, c, "s1")
	if b1 == nil {
		t.Fatal("no batch")
	}
	if b := coopBatch(t, c, "s2", "1 hour"); b != nil {
		t.Fatalf("takeover of a live subconsumer: %d", *b)
	}
	q(t, c, "UPDATE pgq.subscription SET sub_active = '2005-01-01' WHERE sub_batch IS NOT NULL")
	if b := coopBatch(t, c, "s2", "1 hour"); b == nil || *b != *b1 {
		t.Fatalf("takeover got %v, want %d", b, *b1)
	}
	if n := val[int32](t, c, "SELECT pgq_coop.unregister_subconsumer('cq', 'main', 's1', 0)"); n != 0 {
		t.Fatalf("dead s1 still registered (%d)", n)
	}
	wantErr(t, c, "subconsumer has active batch", "SELECT pgq_coop.unregister_subconsumer('cq', 'main', 's2', 0)")
	if n := val[int32](t, c, "SELECT pgq_coop.unregister_subconsumer('cq', 'main', 's2', 1)"); n != 1 {
		t.Fatal("unregister with batch_handling 1")
	}
	if n := val[int32](t, c, "SELECT pgq_coop.unregister_subconsumer('cq', 'main', 's2', 0)"); n != 0 {
		t.Fatal("unregister twice")
	}
	// next_batch registers missing main and subconsumer
	if b := val[*int64](t, c, "SELECT pgq_coop.next_batch('cq', 'auto', 'sub')"); b != nil {
		t.Fatalf("fresh auto-registered consumer got batch %d", *b)
	}
	if n := val[int64](t, c, "SELECT count(*) FROM pgq.get_consumer_info('cq') WHERE consumer_name IN ('auto', 'auto.sub')"); n != 2 {
		t.Fatalf("auto registration rows %d", n)
	}
	// main consumer with a batch of its own
	q(t, c, "SELECT pgq.insert_event('cq', 'y', 'd')")
	q(t, c, "SELECT pgq.ticker('cq')")
	q(t, c, "SELECT pgq.next_batch('cq', 'auto')")
	wantErr(t, c, "main consumer has batch open?", "SELECT pgq_coop.next_batch('cq', 'auto', 'sub')")
	// unregistering the main consumer through pgq removes its subconsumers too
	q(t, c, "SELECT pgq_coop.register_subconsumer('cq', 'main', 's3')")
	if n := val[int32](t, c, "SELECT pgq.unregister_consumer('cq', 'main')"); n != 2 {
		t.Fatalf("unregister main removed %d rows, want 2", n)
	}
	if n := val[int64](t, c, "SELECT count(*) FROM pgq.get_consumer_info('cq') WHERE consumer_name LIKE 'main%'"); n != 0 {
		t.Fatalf("main rows left %d", n)
	}
	q(t, c, "SELECT pgq_coop.version()")
}

// TestCoopNextBatchCustom: min_count (by event sequence, which starts at 1) joins ticks into one subconsumer batch; min_lag
// holds a fresh batch back; the 7-argument form takes over like next_batch with an
// interval.
func TestCoopNextBatchCustom(t *testing.T) {
	t.Parallel()
	c := pg.DB(t).Conn(t)
	q(t, c, "SELECT pgq.create_queue('cq')")
	fastTicks(t, c, "cq")
	q(t, c, "SELECT pgq_coop.register_subconsumer('cq', 'main', 's1')")
	for i := 0; i < 3; i++ {
		q(t, c, "SELECT pgq.insert_event('cq', 'e', $1::int::text)", i)
		q(t, c, "SELECT pgq.ticker('cq')")
	}
	if b := val[*int64](t, c, "SELECT pgq_coop.next_batch_custom('cq', 'main', 's1', '1 hour', NULL, NULL)"); b != nil {
		t.Fatalf("min_lag 1 hour gave batch %d", *b)
	}
	b := val[*int64](t, c, "SELECT pgq_coop.next_batch_custom('cq', 'main', 's1', NULL, 2, NULL)")
	if b == nil {
		t.Fatal("no batch")
	}
	if n := len(batchEvents(t, c, *b)); n != 3 {
		t.Fatalf("joined batch has %d events, want 3", n)
	}
	q(t, c, "UPDATE pgq.subscription SET sub_active = now() - interval '2 hours' WHERE sub_batch IS NOT NULL")
	if got := val[*int64](t, c, "SELECT pgq_coop.next_batch_custom('cq', 'main', 's2', NULL, NULL, NULL, '1 hour')"); got == nil || *got != *b {
		t.Fatalf("7-argument takeover got %v, want %d", got, *b)
	}
	if n := val[int32](t, c, "SELECT pgq_coop.finish_batch($1)", *b); n != 1 {
		t.Fatal("finish")
	}
}
