package sql_test

import "testing"

func TestSmoke(t *testing.T) {
	db := pg.DB(t)
	c := db.Conn(t)
	q(t, c, "SELECT pgq.create_queue('q')")
	fastTicks(t, c, "q")
	q(t, c, "SELECT pgq.register_consumer('q', 'c')")
	q(t, c, "SELECT pgq.insert_event('q', 't', 'd')")
	evs := drain(t, c, "q", "c")
	if len(evs) != 1 {
		t.Fatalf("events %v", evs)
	}
}
