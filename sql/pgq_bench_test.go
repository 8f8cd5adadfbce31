package sql_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// Benchmarks compare our pgq with the original C extension in the same cluster and the
// same run:
//
//	go test -run '^$' -bench . ./sql/
//
// Each b.N iteration does one chunk of work on each side, alternating which side goes
// first, so that load from elsewhere on the (shared, noisy) machine hits both alike.
// Reported: events/s of each side and ours/original. Every event carries 100 bytes of
// ev_data. BenchmarkCopyIntoCurrentEventTable runs the same SQL path on both sides and
// so shows how much noise is left (its ratio should be 1).

var benchPayload = strings.Repeat("x", 100)

// benchWorkers is the number of client connections per side.
const benchWorkers = 4

// side is one implementation under test: a database and a pool on it.
type side struct {
	db   *pgtest.Database
	pool *pgxpool.Pool
	took time.Duration
}

// chunk runs op n times spread over benchWorkers connections and returns the time.
func (s *side) chunk(b *testing.B, n int, op func(c *pgxpool.Conn, i int) error) {
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < benchWorkers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c, err := s.pool.Acquire(context.Background())
			if err != nil {
				b.Error(err)
				return
			}
			defer c.Release()
			for i := w; i < n; i += benchWorkers {
				if err := op(c, i); err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	s.took += time.Since(start)
}

// compare sets up both sides, then runs work(side) once per b.N iteration on each side
// and reports events/s; work returns the number of events it handled.
func compare(b *testing.B, setup func(b *testing.B, c *pgx.Conn), work func(b *testing.B, s *side) int) {
	orig := &side{db: extDB(b)}
	ours := &side{db: pg.DB(b)}
	for _, s := range []*side{orig, ours} {
		setup(b, s.db.Conn(b))
		s.pool = s.db.Pool(b)
	}
	// one untimed round warms both sides' caches and plans
	work(b, orig)
	work(b, ours)
	orig.took, ours.took = 0, 0
	events := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		first, second := orig, ours
		if i%2 == 1 {
			first, second = ours, orig
		}
		events = work(b, first)
		work(b, second)
	}
	b.StopTimer()
	or := float64(events*b.N) / orig.took.Seconds()
	ou := float64(events*b.N) / ours.took.Seconds()
	b.ReportMetric(or, "original-events/s")
	b.ReportMetric(ou, "ours-events/s")
	b.ReportMetric(ou/or, "ours/original")
	b.ReportMetric(0, "ns/op")
}

func benchQueue(b *testing.B, c *pgx.Conn) {
	q(b, c, "SELECT pgq.create_queue('bq')")
	q(b, c, "SELECT pgq.register_consumer('bq', 'c')")
}

// BenchmarkInsertEvent1PerTx: one insert_event per transaction.
func BenchmarkInsertEvent1PerTx(b *testing.B) {
	const n = 400
	compare(b, benchQueue, func(b *testing.B, s *side) int {
		s.chunk(b, n, func(c *pgxpool.Conn, _ int) error {
			_, err := c.Exec(context.Background(), "SELECT pgq.insert_event('bq', 'bench', $1)", benchPayload)
			return err
		})
		return n
	})
}

// BenchmarkInsertEvent100PerTx: 100 insert_event calls per transaction.
func BenchmarkInsertEvent100PerTx(b *testing.B) {
	const n = 20
	compare(b, benchQueue, func(b *testing.B, s *side) int {
		s.chunk(b, n, func(c *pgxpool.Conn, _ int) error {
			_, err := c.Exec(context.Background(),
				"SELECT pgq.insert_event('bq', 'bench', $1) FROM generate_series(1, 100)", benchPayload)
			return err
		})
		return n * 100
	})
}

// BenchmarkTickerIdleCall: pgq.ticker on a queue with nothing to tick, what a ticker
// daemon does most of the time (ticks/s here are calls/s). Each worker makes 500 calls
// per transaction, so the commit is not what is measured.
func BenchmarkTickerIdleCall(b *testing.B) {
	const n, per = 8, 500
	setup := func(b *testing.B, c *pgx.Conn) {
		benchQueue(b, c)
		q(b, c, "SELECT pgq.set_queue_config('bq', 'ticker_max_lag', '1 hour')")
		q(b, c, "SELECT pgq.set_queue_config('bq', 'ticker_idle_period', '1 hour')")
		q(b, c, "SELECT pgq.ticker('bq')") // a second tick: the idle back-off now applies
		if v := val[*int64](b, c, "SELECT pgq.ticker('bq')"); v != nil {
			b.Fatalf("idle queue ticked: %d", *v)
		}
	}
	compare(b, setup, func(b *testing.B, s *side) int {
		s.chunk(b, n, func(c *pgxpool.Conn, _ int) error {
			_, err := c.Exec(context.Background(), fmt.Sprintf(
				"DO $$ BEGIN FOR i IN 1..%d LOOP PERFORM pgq.ticker('bq'); END LOOP; END $$", per))
			return err
		})
		return n * per
	})
}

// BenchmarkTriggerLogutriga: pgbench-like accounts table with pgq.logutriga; each
// transaction updates 100 rows (the workers' rows do not overlap).
func BenchmarkTriggerLogutriga(b *testing.B) {
	const rows, n = 10000, 8
	setup := func(b *testing.B, c *pgx.Conn) {
		benchQueue(b, c)
		q(b, c, `CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))`)
		q(b, c, fmt.Sprintf(`INSERT INTO pgbench_accounts SELECT i, 1, 0, '' FROM generate_series(1, %d) i`, rows))
		q(b, c, `CREATE TRIGGER q AFTER INSERT OR UPDATE OR DELETE ON pgbench_accounts
		         FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('bq')`)
	}
	compare(b, setup, func(b *testing.B, s *side) int {
		s.chunk(b, n, func(c *pgxpool.Conn, i int) error {
			_, err := c.Exec(context.Background(),
				"UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN $1 AND $1 + 99", i*100+1)
			return err
		})
		return n * 100
	})
}

// BenchmarkCopyIntoCurrentEventTable: bulk load by COPY into current_event_table, 5,000
// events per transaction.
func BenchmarkCopyIntoCurrentEventTable(b *testing.B) {
	const per = 5000
	rows := make([][]any, per)
	for i := range rows {
		rows[i] = []any{time.Now(), "bench", benchPayload}
	}
	compare(b, benchQueue, func(b *testing.B, s *side) int {
		s.chunk(b, benchWorkers, func(c *pgxpool.Conn, _ int) error {
			ctx := context.Background()
			tx, err := c.Begin(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = tx.Rollback(ctx) }()
			var tbl string
			if err := tx.QueryRow(ctx, "SELECT pgq.current_event_table('bq')").Scan(&tbl); err != nil {
				return err
			}
			parts := strings.SplitN(tbl, ".", 2)
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{parts[0], parts[1]}, []string{"ev_time", "ev_type", "ev_data"},
				pgx.CopyFromRows(rows)); err != nil {
				return err
			}
			return tx.Commit(ctx)
		})
		return per * benchWorkers
	})
}

const bigBatchSize = 1000000

// bigBatch fills the queue with a million events in one transaction and opens the
// batch; reading does not finish it, so every round reads the same batch.
func bigBatch(b *testing.B, c *pgx.Conn) {
	benchQueue(b, c)
	q(b, c, fmt.Sprintf(`INSERT INTO pgq.event_1_0 (ev_time, ev_type, ev_data)
	        SELECT now(), 'bench', repeat('x', 100) FROM generate_series(1, %d)`, bigBatchSize))
	q(b, c, "SELECT pgq.force_tick('bq')")
	q(b, c, "SELECT pgq.ticker('bq')")
	if id := val[*int64](b, c, "SELECT pgq.next_batch('bq', 'c')"); id == nil || *id != 1 {
		b.Fatal("no batch")
	}
}

// readAll runs sql in a transaction (after the optional prelude) and counts the rows.
func countRows(b *testing.B, tx pgx.Tx, sql string) int {
	rows, err := tx.Query(context.Background(), sql)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for rows.Next() {
		n++
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return n
}

// readBatch times one read of the big batch on side s by read.
func readBatch(b *testing.B, s *side, read func(tx pgx.Tx) int) int {
	ctx := context.Background()
	start := time.Now()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	n := read(tx)
	if err := tx.Commit(ctx); err != nil {
		b.Fatal(err)
	}
	s.took += time.Since(start)
	if n != bigBatchSize {
		b.Fatalf("read %d events", n)
	}
	return n
}

// BenchmarkReadBatchGetBatchEvents reads a 1,000,000-event batch with get_batch_events.
func BenchmarkReadBatchGetBatchEvents(b *testing.B) {
	compare(b, bigBatch, func(b *testing.B, s *side) int {
		return readBatch(b, s, func(tx pgx.Tx) int {
			return countRows(b, tx, "SELECT * FROM pgq.get_batch_events(1)")
		})
	})
}

// BenchmarkReadBatchGetBatchCursor reads the same batch with get_batch_cursor and FETCH
// 1000 at a time (what pgq_lazy_fetch consumers do).
func BenchmarkReadBatchGetBatchCursor(b *testing.B) {
	compare(b, bigBatch, func(b *testing.B, s *side) int {
		return readBatch(b, s, func(tx pgx.Tx) int {
			n := 0
			for k := countRows(b, tx, "SELECT * FROM pgq.get_batch_cursor(1, 'walker', 1000)"); ; k = countRows(b, tx, "FETCH 1000 FROM walker") {
				n += k
				if k < 1000 {
					break
				}
			}
			if _, err := tx.Exec(context.Background(), "CLOSE walker"); err != nil {
				b.Fatal(err)
			}
			return n
		})
	})
}
