package ticker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/lifecycle"
	"github.com/skytools-go/skytools/pkg/pgq"
)

// Under load, with everything that makes pgqd tick early or late at once — producers
// whose transactions stay open across ticks, rolled-back producers, table rotation
// every second, the low-latency watch at a 10ms period — every committed event
// reaches the consumer exactly once and no rolled-back one does.
func TestEveryCommittedEventIsDeliveredOnceUnderLoad(t *testing.T) {
	eachFlavour(t, func(t *testing.T, f flavour) {
		ctx := context.Background()
		db := f.shared.DB(t)
		conn := db.Conn(t)
		exec(t, conn, "SELECT pgq.create_queue('load')")
		exec(t, conn, "SELECT pgq.set_queue_config('load', 'ticker_max_lag', '0')")
		exec(t, conn, "SELECT pgq.set_queue_config('load', 'rotation_period', '1 second')")
		exec(t, conn, "SELECT pgq.register_consumer('load', 'c')")
		cfg := testConfig(db.Cluster, db.Name)
		cfg.TickerPeriod = lifecycle.Duration(10 * time.Millisecond)
		runDaemon(t, cfg)

		pool, err := pgxpool.New(ctx, db.ConnString)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		var mu sync.Mutex
		delivered := map[string]int{}
		consumer, err := pgq.NewConsumer(pool, pgq.Config{Queue: "load", Consumer: "c", LoopDelay: time.Second},
			pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
				var got []string
				for ev, err := range b.Events(ctx) {
					if err != nil {
						return err
					}
					got = append(got, ev.Data.String)
				}
				mu.Lock()
				for _, d := range got {
					delivered[d]++
				}
				mu.Unlock()
				return nil
			}))
		if err != nil {
			t.Fatal(err)
		}
		cctx, stopConsumer := context.WithCancel(ctx)
		consumerDone := make(chan error, 1)
		go func() { consumerDone <- consumer.Run(cctx) }()
		defer func() {
			stopConsumer()
			<-consumerDone
		}()

		// Producers: 1-5 events per transaction, a tenth rolled back, and the
		// transaction held open for up to 15ms so that ticks land in the middle of it.
		pctx, stopProducers := context.WithTimeout(ctx, 5*time.Second)
		defer stopProducers()
		var committedMu sync.Mutex
		committed := map[string]bool{}
		rolledBack := map[string]bool{}
		var wg sync.WaitGroup
		errs := make(chan error, 3)
		for p := 0; p < 3; p++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				pc, err := pgx.Connect(ctx, db.ConnString)
				if err != nil {
					errs <- err
					return
				}
				defer pc.Close(context.Background())
				rng := rand.New(rand.NewPCG(uint64(p), 42))
				for n := 0; pctx.Err() == nil; n++ {
					tx, err := pc.Begin(ctx)
					if err != nil {
						errs <- err
						return
					}
					var ids []string
					for k := 0; k < 1+rng.IntN(5); k++ {
						id := fmt.Sprintf("p%d-%d-%d", p, n, k)
						if _, err := tx.Exec(ctx, "SELECT pgq.insert_event('load', 't', $1)", id); err != nil {
							errs <- err
							return
						}
						ids = append(ids, id)
					}
					time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond) // in flight across ticks
					rollback := rng.IntN(10) == 0
					if rollback {
						err = tx.Rollback(ctx)
					} else {
						err = tx.Commit(ctx)
					}
					if err != nil {
						errs <- err
						return
					}
					committedMu.Lock()
					for _, id := range ids {
						if rollback {
							rolledBack[id] = true
						} else {
							committed[id] = true
						}
					}
					committedMu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("producer: %v", err)
		}

		waitFor(t, 30*time.Second, fmt.Sprintf("all %d committed events delivered", len(committed)), func() (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			for id := range committed {
				if delivered[id] == 0 {
					return false, nil
				}
			}
			return true, nil
		})
		mu.Lock()
		defer mu.Unlock()
		var dup, ghost []string
		for id, n := range delivered {
			if n > 1 {
				dup = append(dup, id)
			}
			if rolledBack[id] || !committed[id] {
				ghost = append(ghost, id)
			}
		}
		sort.Strings(dup)
		sort.Strings(ghost)
		if len(dup) > 0 || len(ghost) > 0 {
			t.Fatalf("duplicates %v; delivered but not committed %v", dup, ghost)
		}
		var rotations int
		if err := conn.QueryRow(ctx, "SELECT count(DISTINCT tick_id) FROM pgq.tick").Scan(&rotations); err != nil {
			t.Fatal(err)
		}
		t.Logf("%d committed events delivered once, %d rolled back not delivered", len(committed), len(rolledBack))
	})
}
