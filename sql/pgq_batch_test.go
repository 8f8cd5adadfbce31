package sql_test

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// TestDifferentialRandomInterleavings drives four producers through a seeded random mix
// of begin, insert, commit, rollback, tick and consume steps, and compares every batch
// with the original's: transactions open across many ticks, aborted ones, and more
// than 100 txids between a long transaction and the next tick (the IN-list path) all
// occur.
func TestDifferentialRandomInterleavings(t *testing.T) {
	t.Parallel()
	for _, seed := range []int64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			differential(t, func(tr *transcript, db *pgtest.Database) {
				rng := rand.New(rand.NewSource(seed))
				prods := make([]*pgx.Conn, 4)
				open := make([]bool, len(prods))
				for i := range prods {
					prods[i] = db.Conn(t)
				}
				tr.do("SELECT pgq.create_queue('iq')")
				fastTicks(t, tr.conn, "iq")
				tr.do("SELECT pgq.register_consumer('iq', 'c')")
				n := 0
				for step := 0; step < 400; step++ {
					p := rng.Intn(len(prods))
					switch r := rng.Intn(100); {
					case r < 10:
						if !open[p] {
							q(t, prods[p], "BEGIN")
							open[p] = true
						}
					case r < 60:
						n++
						q(t, prods[p], "SELECT pgq.insert_event('iq', $1::text, $2::text)", fmt.Sprint("p", p), fmt.Sprint(n))
					case r < 70:
						if open[p] {
							q(t, prods[p], "COMMIT")
							open[p] = false
						}
					case r < 73:
						if open[p] {
							q(t, prods[p], "ROLLBACK")
							open[p] = false
						}
					case r < 85:
						tr.do("SELECT pgq.ticker('iq') IS NOT NULL")
					default:
						tr.do("SELECT count(*) FROM pgq.next_batch('iq', 'c') b WHERE b IS NOT NULL")
						tr.do("SELECT string_agg(ev_type || '/' || ev_data, ' ' ORDER BY ev_id) FROM pgq.get_batch_events((SELECT sub_batch FROM pgq.subscription))")
						tr.do("SELECT pgq.finish_batch(sub_batch) FROM pgq.subscription WHERE sub_batch IS NOT NULL")
					}
					if step%50 == 0 {
						// bursts of short transactions push later txids far ahead
						q(t, tr.conn, "DO $$ BEGIN FOR i IN 1..60 LOOP PERFORM txid_current(); COMMIT; END LOOP; END $$")
					}
				}
				for p := range prods {
					if open[p] {
						q(t, prods[p], "COMMIT")
					}
				}
				for i := 0; i < 3; i++ {
					tr.do("SELECT pgq.ticker('iq') IS NOT NULL")
					tr.do("SELECT count(*) FROM pgq.next_batch('iq', 'c') b WHERE b IS NOT NULL")
					tr.do("SELECT string_agg(ev_type || '/' || ev_data, ' ' ORDER BY ev_id) FROM pgq.get_batch_events((SELECT sub_batch FROM pgq.subscription))")
					tr.do("SELECT pgq.finish_batch(sub_batch) FROM pgq.subscription WHERE sub_batch IS NOT NULL")
				}
			})
		})
	}
}
