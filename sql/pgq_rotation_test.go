package sql_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// TestDifferentialRotation rotates tables with a lagging consumer: rotation waits for
// the slowest consumer, batches read the right tables, old ticks are pruned, and every
// event is delivered once, the same as the original.
func TestDifferentialRotation(t *testing.T) {
	t.Parallel()
	differential(t, func(tr *transcript, db *pgtest.Database) {
		c := tr.conn
		// Tick 1 is left out: it is taken in create_queue's own transaction, so whether
		// its xmin is below step2 (and it is pruned) depends on other transactions.
		state := "SELECT queue_cur_table, queue_switch_step2 IS NULL, (SELECT count(*) FROM pgq.tick WHERE tick_id > 1) FROM pgq.queue"
		step1 := "SELECT pgq.maint_rotate_tables_step1('rq')"
		ops := "SELECT func_name, func_arg FROM pgq.maint_operations()"
		cycle := func(consumer string) {
			quietCluster(t, c)
			tr.do("SELECT pgq.ticker('rq') IS NOT NULL")
			tr.do("SELECT b, pgq.batch_event_tables(b) FROM pgq.next_batch('rq', $1) b", consumer)
			tr.do("SELECT ev_id, ev_data FROM pgq.get_batch_events(pgq.next_batch('rq', $1))", consumer)
			tr.do("SELECT pgq.finish_batch(pgq.next_batch('rq', $1))", consumer)
		}
		quietCluster(t, c)
		tr.do("SELECT pgq.create_queue('rq')")
		fastTicks(t, c, "rq")
		tr.do("SELECT pgq.set_queue_config('rq', 'rotation_period', '0')")
		tr.do("SELECT pgq.register_consumer('rq', 'lagging')")
		tr.do("SELECT pgq.register_consumer('rq', 'fast')")
		tr.do("SELECT pgq.insert_event('rq', 'e', '1')")
		cycle("fast")
		tr.do(ops)
		quietCluster(t, c)
		tr.do(step1)
		tr.do(state) // lagging consumer holds rotation back
		cycle("lagging")
		quietCluster(t, c)
		tr.do(step1)
		tr.do(state)
		tr.do(ops)
		settleRotation(t, c)
		tr.do(state)
		for i := 2; i < 6; i++ {
			tr.do("SELECT pgq.insert_event('rq', 'e', $1::int::text)", i)
			cycle("fast")
			cycle("lagging")
			quietCluster(t, c)
			tr.do(step1)
			tr.do(state)
			settleRotation(t, c)
		}
		tr.do("SELECT pgq.insert_event('rq', 'e', '9')")
		cycle("fast")
		cycle("lagging")
		tr.do("SELECT count(*) FROM pgq.event_1_0")
		tr.do("SELECT count(*) FROM pgq.event_1_1")
		tr.do("SELECT count(*) FROM pgq.event_1_2")
	})
}

// rrRace reproduces PgQ 3.5's REPEATABLE READ producer vs rotation race (reference
// 2.9) and reports whether the producer's event reached the consumer.
func rrRace(t *testing.T, db *pgtest.Database) bool {
	t.Helper()
	admin, producer := db.Conn(t), db.Conn(t)
	ctx := context.Background()
	q(t, admin, "SELECT pgq.create_queue('race')")
	fastTicks(t, admin, "race")
	q(t, admin, "SELECT pgq.set_queue_config('race', 'rotation_period', '0')")
	q(t, admin, "SELECT pgq.register_consumer('race', 'c')")
	q(t, admin, "SELECT pgq.insert_event('race', 'before', '')")
	var got []event
	got = append(got, drain(t, admin, "race", "c")...)

	// The producer's snapshot sees event table 0 as current.
	if _, err := producer.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
		t.Fatal(err)
	}
	if n := val[int32](t, producer, "SELECT queue_cur_table FROM pgq.queue"); n != 0 {
		t.Fatalf("cur table %d", n)
	}
	// Rotation: step1 and step2 in separate transactions, as pgqd runs them.
	q(t, admin, "SELECT pgq.maint_rotate_tables_step1('race')")
	q(t, admin, "SELECT pgq.maint_rotate_tables_step2()")
	if n := val[int32](t, admin, "SELECT queue_cur_table FROM pgq.queue"); n != 1 {
		t.Fatalf("rotation did not happen: cur table %d", n)
	}
	// Traffic moves the consumer past step2.
	for i := 0; i < 3; i++ {
		q(t, admin, "SELECT pgq.insert_event('race', 'traffic', '')")
		quietCluster(t, admin)
		got = append(got, drain(t, admin, "race", "c")...)
	}
	// Now the old snapshot writes: it still sees table 0 as current.
	q(t, producer, "SELECT pgq.insert_event('race', 'late', '')")
	q(t, producer, "COMMIT")
	q(t, admin, "SELECT pgq.insert_event('race', 'after', '')")
	q(t, admin, "SELECT pgq.maint_rotate_tables_step2()")
	got = append(got, drain(t, admin, "race", "c")...)
	q(t, admin, "SELECT pgq.insert_event('race', 'final', '')")
	got = append(got, drain(t, admin, "race", "c")...)

	seen := map[string]int{}
	for _, e := range got {
		seen[*e.Type]++
	}
	if seen["before"] != 1 || seen["traffic"] != 3 || seen["after"] != 1 || seen["final"] != 1 {
		t.Fatalf("other events lost or duplicated: %v", seen)
	}
	if seen["late"] > 1 {
		t.Fatalf("late event delivered %d times", seen["late"])
	}
	if n := val[int64](t, admin, "SELECT count(*) FROM pgq.event_1_0 WHERE ev_type = 'late'"); n != 1 {
		t.Fatalf("late event is not in the old table (count %d): scenario did not reproduce the race", n)
	}
	return seen["late"] == 1
}

// TestRepeatableReadProducerRaceOriginalLosesEvent shows the bug in PgQ 3.5.
// Not parallel: write transactions elsewhere in the cluster would lower the tick
// snapshots' xmin below step2 and hide the race.
func TestRepeatableReadProducerRaceOriginalLosesEvent(t *testing.T) {
	if rrRace(t, extDB(t)) {
		t.Fatal("the original delivered the late event: the race was not reproduced")
	}
}

// TestRepeatableReadProducerRaceOursDelivers shows that ours delivers the same event:
// step2 waits while a snapshot older than step1 exists, so batches read both tables.
func TestRepeatableReadProducerRaceOursDelivers(t *testing.T) {
	if !rrRace(t, pg.DB(t)) {
		t.Fatal("our pgq lost the REPEATABLE READ producer's event")
	}
}

// TestStep2WaitsForOlderSnapshots checks the mechanism: step2 stays NULL while a session
// of the same database holds a snapshot older than step1, and is set once it ends.
func TestStep2WaitsForOlderSnapshots(t *testing.T) {
	t.Parallel()
	db := pg.DB(t)
	admin, holder, other := db.Conn(t), db.Conn(t), pg.DB(t).Conn(t)
	q(t, admin, "SELECT pgq.create_queue('s2')")
	q(t, admin, "SELECT pgq.set_queue_config('s2', 'rotation_period', '0')")
	q(t, holder, "BEGIN ISOLATION LEVEL REPEATABLE READ")
	q(t, holder, "SELECT 1 FROM pgq.queue")
	// An old snapshot in another database does not matter.
	q(t, other, "BEGIN ISOLATION LEVEL REPEATABLE READ")
	q(t, other, "SELECT 1")
	q(t, admin, "SELECT pgq.maint_rotate_tables_step1('s2')")
	q(t, admin, "SELECT pgq.maint_rotate_tables_step2()")
	if !val[bool](t, admin, "SELECT queue_switch_step2 IS NULL FROM pgq.queue") {
		t.Fatal("step2 was set while an older snapshot exists")
	}
	if n := val[int64](t, admin, "SELECT count(*) FROM pgq.maint_operations() WHERE func_name = 'pgq.maint_rotate_tables_step2'"); n != 1 {
		t.Fatalf("maint_operations does not ask for step2 again (%d)", n)
	}
	q(t, holder, "COMMIT")
	settleRotation(t, admin)
	q(t, other, "COMMIT")
}

// quietCluster waits until no other session of the cluster holds a txid, so that the
// next tick's snapshot xmin (which rotation decisions compare) does not depend on what
// else happens to run.
func quietCluster(t testing.TB, c *pgx.Conn) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		busy := val[string](t, c, `SELECT coalesce(string_agg(datname || ':' || backend_type || ':' || coalesce(query, ''), '; '), '')
			FROM pg_stat_activity WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()`)
		if busy == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions holding txids: %s", busy)
		}
	}
}
