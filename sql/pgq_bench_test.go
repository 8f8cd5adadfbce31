package sql_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// Benchmarks run each case against our pgq and the original C extension in the same
// cluster, one after the other in the same run, and print the ratio of events/s:
//
//	go test -run '^$' -bench . ./sql/
//
// Every event carries 100 bytes of ev_data.

var benchPayload = strings.Repeat("x", 100)

// benchSide is one implementation under test.
type benchSide struct {
	name string
	db   func(b *testing.B) *pgtest.Database
}

var benchSides = []benchSide{
	{"original", func(b *testing.B) *pgtest.Database { return extDB(b) }},
	{"ours", func(b *testing.B) *pgtest.Database { return pg.DB(b) }},
}

// compare runs fn for both sides as sub-benchmarks, alternating original and ours for
// the given number of rounds (the machine is shared and noisy), and prints the median
// of the per-round ratios ours/original. fn returns the number of events one b.N
// iteration handles.
func compare(b *testing.B, rounds int, setup func(b *testing.B, c *pgx.Conn), fn func(b *testing.B, db *pgtest.Database) int) {
	var ratios []float64
	var last map[string]float64
	for r := 0; r < rounds; r++ {
		rates := map[string]float64{}
		for _, side := range benchSides {
			b.Run(side.name, func(b *testing.B) {
				db := side.db(b)
				c := db.Conn(b)
				setup(b, c)
				b.ResetTimer()
				start := time.Now()
				per := fn(b, db)
				rate := float64(per*b.N) / time.Since(start).Seconds()
				b.ReportMetric(rate, "events/s")
				rates[side.name] = rate
			})
		}
		if rates["original"] > 0 && rates["ours"] > 0 {
			ratios = append(ratios, rates["ours"]/rates["original"])
			last = rates
		}
	}
	if len(ratios) == 0 {
		return
	}
	sort.Float64s(ratios)
	fmt.Printf("%s: ratio ours/original %.2f (median of %d rounds: %s; last round ours %.0f, original %.0f events/s)\n",
		b.Name(), ratios[len(ratios)/2], len(ratios), fmtRatios(ratios), last["ours"], last["original"])
}

func fmtRatios(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%.2f", r)
	}
	return strings.Join(parts, " ")
}

func benchQueue(b *testing.B, c *pgx.Conn) {
	q(b, c, "SELECT pgq.create_queue('bq')")
	q(b, c, "SELECT pgq.register_consumer('bq', 'c')")
}

// parallel runs op from 4 connections until b.N operations are done.
func parallel(b *testing.B, db *pgtest.Database, op func(c *pgxpool.Conn) error) {
	pool := db.Pool(b)
	b.SetParallelism(2)
	b.RunParallel(func(pb *testing.PB) {
		c, err := pool.Acquire(context.Background())
		if err != nil {
			b.Error(err)
			return
		}
		defer c.Release()
		for pb.Next() {
			if err := op(c); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkInsertEvent1PerTx: one insert_event per transaction, 4 clients.
func BenchmarkInsertEvent1PerTx(b *testing.B) {
	compare(b, 3, benchQueue, func(b *testing.B, db *pgtest.Database) int {
		parallel(b, db, func(c *pgxpool.Conn) error {
			_, err := c.Exec(context.Background(), "SELECT pgq.insert_event('bq', 'bench', $1)", benchPayload)
			return err
		})
		return 1
	})
}

// BenchmarkInsertEvent100PerTx: 100 insert_event calls per transaction, 4 clients.
func BenchmarkInsertEvent100PerTx(b *testing.B) {
	compare(b, 3, benchQueue, func(b *testing.B, db *pgtest.Database) int {
		parallel(b, db, func(c *pgxpool.Conn) error {
			_, err := c.Exec(context.Background(),
				"SELECT pgq.insert_event('bq', 'bench', $1) FROM generate_series(1, 100)", benchPayload)
			return err
		})
		return 100
	})
}

// BenchmarkTriggerLogutriga: pgbench-like accounts table with pgq.logutriga; each
// transaction updates 100 rows, 4 clients on disjoint rows.
func BenchmarkTriggerLogutriga(b *testing.B) {
	const rows = 100000
	setup := func(b *testing.B, c *pgx.Conn) {
		benchQueue(b, c)
		q(b, c, `CREATE TABLE pgbench_accounts (aid int PRIMARY KEY, bid int, abalance int, filler char(84))`)
		q(b, c, fmt.Sprintf(`INSERT INTO pgbench_accounts SELECT i, 1, 0, '' FROM generate_series(1, %d) i`, rows))
		q(b, c, `CREATE TRIGGER q AFTER INSERT OR UPDATE OR DELETE ON pgbench_accounts
		         FOR EACH ROW EXECUTE PROCEDURE pgq.logutriga('bq')`)
	}
	compare(b, 3, setup, func(b *testing.B, db *pgtest.Database) int {
		var mu sync.Mutex
		next := 0
		parallel(b, db, func(c *pgxpool.Conn) error {
			mu.Lock()
			from := next%rows + 1
			next += 100
			mu.Unlock()
			_, err := c.Exec(context.Background(),
				"UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN $1 AND $1 + 99", from)
			return err
		})
		return 100
	})
}

// BenchmarkCopyIntoCurrentEventTable: bulk load by COPY into current_event_table, 10,000
// events per transaction.
func BenchmarkCopyIntoCurrentEventTable(b *testing.B) {
	const per = 10000
	rows := make([][]any, per)
	for i := range rows {
		rows[i] = []any{time.Now(), "bench", benchPayload}
	}
	compare(b, 3, benchQueue, func(b *testing.B, db *pgtest.Database) int {
		c := db.Conn(b)
		ctx := context.Background()
		for i := 0; i < b.N; i++ {
			tx, err := c.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			var tbl string
			if err := tx.QueryRow(ctx, "SELECT pgq.current_event_table('bq')").Scan(&tbl); err != nil {
				b.Fatal(err)
			}
			parts := strings.SplitN(tbl, ".", 2)
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{parts[0], parts[1]}, []string{"ev_time", "ev_type", "ev_data"},
				pgx.CopyFromRows(rows)); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
		return per
	})
}

// bigBatch fills the queue with n events in one transaction and opens the batch.
func bigBatch(n int) func(b *testing.B, c *pgx.Conn) {
	return func(b *testing.B, c *pgx.Conn) {
		benchQueue(b, c)
		q(b, c, fmt.Sprintf(`INSERT INTO pgq.event_1_0 (ev_time, ev_type, ev_data)
		        SELECT now(), 'bench', repeat('x', 100) FROM generate_series(1, %d)`, n))
		q(b, c, "SELECT pgq.force_tick('bq')")
		q(b, c, "SELECT pgq.ticker('bq')")
		if b := val[*int64](b, c, "SELECT pgq.next_batch('bq', 'c')"); b == nil || *b != 1 {
			panic("no batch")
		}
	}
}

const bigBatchSize = 1000000

// BenchmarkReadBatchGetBatchEvents reads a 1,000,000-event batch with get_batch_events.
func BenchmarkReadBatchGetBatchEvents(b *testing.B) {
	compare(b, 2, bigBatch(bigBatchSize), func(b *testing.B, db *pgtest.Database) int {
		c := db.Conn(b)
		for i := 0; i < b.N; i++ {
			rows, err := c.Query(context.Background(), "SELECT * FROM pgq.get_batch_events(1)")
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for rows.Next() {
				n++
			}
			if rows.Err() != nil || n != bigBatchSize {
				b.Fatalf("read %d events: %v", n, rows.Err())
			}
		}
		return bigBatchSize
	})
}

// BenchmarkReadBatchGetBatchCursor reads the same batch with get_batch_cursor and FETCH
// 1000 at a time (what pgq_lazy_fetch consumers do).
func BenchmarkReadBatchGetBatchCursor(b *testing.B) {
	compare(b, 2, bigBatch(bigBatchSize), func(b *testing.B, db *pgtest.Database) int {
		c := db.Conn(b)
		ctx := context.Background()
		for i := 0; i < b.N; i++ {
			tx, err := c.Begin(ctx)
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			count := func(sql string) int {
				rows, err := tx.Query(ctx, sql)
				if err != nil {
					b.Fatal(err)
				}
				k := 0
				for rows.Next() {
					k++
				}
				if rows.Err() != nil {
					b.Fatal(rows.Err())
				}
				return k
			}
			for k := count("SELECT * FROM pgq.get_batch_cursor(1, 'walker', 1000)"); ; k = count("FETCH 1000 FROM walker") {
				n += k
				if k < 1000 {
					break
				}
			}
			if _, err := tx.Exec(ctx, "CLOSE walker"); err != nil {
				b.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				b.Fatal(err)
			}
			if n != bigBatchSize {
				b.Fatalf("read %d events", n)
			}
		}
		return bigBatchSize
	})
}
