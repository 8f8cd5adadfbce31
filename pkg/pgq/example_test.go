package pgq_test

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/pgtest"
)

// examples is a cluster of its own for the runnable examples (they have no
// *testing.T to share the tests' cluster with).
var examples exampleCluster

type exampleCluster struct {
	mu sync.Mutex
	c  *pgtest.Cluster
	n  int
}

// database creates a fresh database with our PgQ and returns its connection string.
func (e *exampleCluster) database() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	ctx := context.Background()
	if e.c == nil {
		c, err := pgtest.Start(ctx, pgtest.Name("examples"))
		if err != nil {
			log.Fatalf("examples: %v", err)
		}
		e.c = c
	}
	e.n++
	name := fmt.Sprintf("example_%d", e.n)
	admin, err := e.c.Connect(ctx, "postgres")
	if err != nil {
		log.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		log.Fatal(err)
	}
	conn, err := e.c.Connect(ctx, name)
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := installOurs(ctx, conn); err != nil {
		log.Fatal(err)
	}
	return e.c.ConnString(name)
}

func (e *exampleCluster) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.c != nil {
		_ = e.c.Destroy()
	}
}

// Producing: events are inserted in the application's own transaction, so they exist
// exactly when the business change does.
func ExampleInsert() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, examples.database())
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if _, err := pgq.CreateQueue(ctx, pool, "orders"); err != nil {
		log.Fatal(err)
	}

	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		// ... the application's own writes in tx ...
		ev := pgq.NewEvent("order.created", `{"id": 42}`)
		ev.Extra1 = pgq.Text("public.orders")
		id, err := pgq.Insert(ctx, tx, "orders", ev)
		fmt.Println("event", id)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output: event 1
}

// Consuming: a handler gets one batch at a time and streams its events. Work done in
// b.Tx commits together with the batch.
func ExampleConsumer() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pool, err := pgxpool.New(ctx, examples.database())
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	if _, err := pgq.CreateQueue(ctx, pool, "orders"); err != nil {
		log.Fatal(err)
	}
	if _, err := pgq.Register(ctx, pool, "orders", "mailer"); err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{"1", "2", "3"} {
		if _, err := pgq.Insert(ctx, pool, "orders", pgq.NewEvent("order.created", id)); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := pgq.ForceTick(ctx, pool, "orders"); err != nil { // pgqd ticks on its own; here we ask
		log.Fatal(err)
	}
	if _, _, err := pgq.Tick(ctx, pool, "orders"); err != nil {
		log.Fatal(err)
	}

	handler := pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
		for ev, err := range b.Events(ctx) {
			if err != nil {
				return err
			}
			fmt.Println(ev.Type.String, ev.Data.String)
		}
		if b.ID > 0 {
			cancel() // stop after this batch (a daemon runs until SIGTERM)
		}
		return nil
	})
	c, err := pgq.NewConsumer(pool, pgq.Config{Queue: "orders", Consumer: "mailer"}, handler)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("batches finished:", c.Stats().Batches)
	// Output:
	// order.created 1
	// order.created 2
	// order.created 3
	// batches finished: 1
}

// Exactly once into another database: b.Tx is a transaction in the target, where the
// consumer's position is committed together with the handler's work.
func ExampleConsumer_exactlyOnce() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := pgxpool.New(ctx, examples.database())
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	dst, err := pgxpool.New(ctx, examples.database())
	if err != nil {
		log.Fatal(err)
	}
	defer dst.Close()
	if _, err := dst.Exec(ctx, "CREATE TABLE order_copy (id text)"); err != nil {
		log.Fatal(err)
	}
	if _, err := pgq.CreateQueue(ctx, src, "orders"); err != nil {
		log.Fatal(err)
	}
	if _, err := pgq.Register(ctx, src, "orders", "copier"); err != nil {
		log.Fatal(err)
	}
	for _, id := range []string{"1", "2"} {
		if _, err := pgq.Insert(ctx, src, "orders", pgq.NewEvent("order.created", id)); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := pgq.ForceTick(ctx, src, "orders"); err != nil {
		log.Fatal(err)
	}
	tick, _, err := pgq.Tick(ctx, src, "orders")
	if err != nil {
		log.Fatal(err)
	}

	handler := pgq.HandlerFunc(func(ctx context.Context, b *pgq.Batch) error {
		for ev, err := range b.Events(ctx) {
			if err != nil {
				return err
			}
			if _, err := b.Tx.Exec(ctx, "INSERT INTO order_copy VALUES ($1)", ev.Data); err != nil {
				return err
			}
		}
		return nil
	})
	cfg := pgq.Config{Queue: "orders", Consumer: "copier", Target: dst,
		Observer: pgq.Observer{Batch: func(r pgq.BatchResult) {
			if r.Tick >= tick {
				cancel()
			}
		}}}
	c, err := pgq.NewConsumer(src, cfg, handler)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		log.Fatal(err)
	}
	var n int
	if err := dst.QueryRow(context.Background(), "SELECT count(*) FROM order_copy").Scan(&n); err != nil {
		log.Fatal(err)
	}
	pos, _, err := c.Position(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("copied", n, "events; target position is the tick:", pos == tick)
	// Output: copied 2 events; target position is the tick: true
}
