package sql_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestConcurrentProducersAcrossRotations runs READ COMMITTED and REPEATABLE READ
// producers (some rolling back) against a queue that a maintenance loop rotates as fast
// as it can, while a consumer ticks and reads batches. Every committed event must be
// delivered exactly once, and no rolled-back one. (The original extension loses events
// here now and then: the REPEATABLE READ race.)
func TestConcurrentProducersAcrossRotations(t *testing.T) {
	t.Parallel()
	db := pg.DB(t)
	setup := db.Conn(t)
	q(t, setup, "SELECT pgq.create_queue('cq')")
	fastTicks(t, setup, "cq")
	q(t, setup, "SELECT pgq.set_queue_config('cq', 'rotation_period', '0')")
	q(t, setup, "SELECT pgq.register_consumer('cq', 'c')")

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var (
		mu        sync.Mutex
		committed = map[string]bool{}
		rotations int
	)
	fail := make(chan error, 8)
	report := func(err error) {
		select {
		case fail <- err:
		default:
		}
		stop()
	}

	var producers sync.WaitGroup
	for p := 0; p < 3; p++ {
		conn := db.Conn(t)
		producers.Add(1)
		go func(p int) {
			defer producers.Done()
			for i := 0; ctx.Err() == nil; i++ {
				// at least 150 transactions each, and on until five rotations happened
				mu.Lock()
				enough := i >= 150 && rotations >= 5 || i >= 5000
				mu.Unlock()
				if enough {
					break
				}
				iso := "READ COMMITTED"
				if i%2 == 1 {
					iso = "REPEATABLE READ"
				}
				var ids []string
				err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.TxIsoLevel(iso)}, func(tx pgx.Tx) error {
					// take the snapshot early, then do some work before inserting
					if _, err := tx.Exec(ctx, "SELECT count(*) FROM pgq.queue"); err != nil {
						return err
					}
					if _, err := tx.Exec(ctx, "SELECT pg_catalog.txid_current_snapshot()"); err != nil {
						return err
					}
					for k := 0; k < 1+i%4; k++ {
						id := fmt.Sprintf("%d-%d-%d", p, i, k)
						if _, err := tx.Exec(ctx, "SELECT pgq.insert_event('cq', 'e', $1)", id); err != nil {
							return err
						}
						ids = append(ids, id)
					}
					if i%10 == 9 {
						return errRollback
					}
					return nil
				})
				if errors.Is(err, errRollback) {
					continue
				}
				if err != nil {
					report(fmt.Errorf("producer %d: %w", p, err))
					return
				}
				mu.Lock()
				for _, id := range ids {
					committed[id] = true
				}
				mu.Unlock()
			}
		}(p)
	}

	// maintenance: rotation step1 and step2, each in its own transaction, as pgqd runs them
	maint := db.Conn(t)
	var helpers sync.WaitGroup
	helpers.Add(1)
	go func() {
		defer helpers.Done()
		for ctx.Err() == nil {
			var before, after int32
			if err := maint.QueryRow(ctx, "SELECT queue_cur_table FROM pgq.queue").Scan(&before); err != nil {
				if ctx.Err() == nil {
					report(err)
				}
				return
			}
			for _, sql := range []string{"SELECT pgq.maint_rotate_tables_step1('cq')", "SELECT pgq.maint_rotate_tables_step2()"} {
				if _, err := maint.Exec(ctx, sql); err != nil {
					if ctx.Err() == nil {
						report(fmt.Errorf("%s: %w", sql, err))
					}
					return
				}
			}
			if err := maint.QueryRow(ctx, "SELECT queue_cur_table FROM pgq.queue").Scan(&after); err == nil && after != before {
				mu.Lock()
				rotations++
				mu.Unlock()
			}
		}
	}()

	// consumer: tick, read, finish
	consumer := db.Conn(t)
	delivered := map[string]int{}
	readBatches := func() error {
		for {
			var batch *int64
			if err := consumer.QueryRow(context.Background(), "SELECT pgq.next_batch('cq', 'c')").Scan(&batch); err != nil {
				return err
			}
			if batch == nil {
				return nil
			}
			rows, err := consumer.Query(context.Background(), "SELECT ev_data FROM pgq.get_batch_events($1)", *batch)
			if err != nil {
				return err
			}
			data, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			for _, d := range data {
				delivered[d]++
			}
			if _, err := consumer.Exec(context.Background(), "SELECT pgq.finish_batch($1)", *batch); err != nil {
				return err
			}
		}
	}
	helpers.Add(1)
	go func() {
		defer helpers.Done()
		for ctx.Err() == nil {
			if _, err := consumer.Exec(context.Background(), "SELECT pgq.ticker('cq')"); err != nil {
				report(err)
				return
			}
			if err := readBatches(); err != nil {
				report(err)
				return
			}
		}
	}()

	producers.Wait()
	stop()
	helpers.Wait()
	select {
	case err := <-fail:
		t.Fatal(err)
	default:
	}
	// drain: two more ticks cover every committed transaction
	for i := 0; i < 2; i++ {
		q(t, consumer, "SELECT pgq.ticker('cq')")
		if err := readBatches(); err != nil {
			t.Fatal(err)
		}
	}
	if rotations < 5 {
		t.Fatalf("only %d rotations happened", rotations)
	}
	var lost, dup, extra []string
	for id := range committed {
		switch n := delivered[id]; {
		case n == 0:
			lost = append(lost, id)
		case n > 1:
			dup = append(dup, id+"x"+strconv.Itoa(n))
		}
	}
	for id := range delivered {
		if !committed[id] {
			extra = append(extra, id)
		}
	}
	if len(lost)+len(dup)+len(extra) > 0 {
		t.Fatalf("%d committed events: lost %v, duplicated %v, not committed %v", len(committed), lost, dup, extra)
	}
	t.Logf("%d events delivered once across %d rotations", len(committed), rotations)
}

var errRollback = errors.New("roll back")
