package pgq

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Batch is one batch handed to a [Handler]: the events committed between two ticks of
// the queue, for one consumer. Its events are streamed from the database in blocks of
// Config.FetchSize, so a batch of any size takes bounded memory.
//
// A Batch is valid only during the handler call that received it.
type Batch struct {
	ID       int64 // unique across queues; the same id if a batch is handed out again
	Queue    string
	Consumer string

	PrevTick     int64     // the batch holds the transactions committed after this tick ...
	Tick         int64     // ... up to this one
	PrevTickTime time.Time // when PrevTick was taken
	TickTime     time.Time // when Tick was taken
	Lag          time.Duration

	// Tx is the transaction that the batch is finished in. Work done in it commits
	// together with the batch, or not at all: without Config.Target it is a
	// transaction in the queue's own database; with a Target it is a transaction in the
	// target database, committed together with the consumer's position there.
	//
	// Do not commit or roll it back; return an error to roll it back.
	Tx pgx.Tx

	rd       *pgx.Conn // the reading connection
	sql      string    // the batch's event query (pgq.batch_event_sql)
	stream   pgx.Rows  // the batch's events, being read
	block    []Event   // the slice Fetch fills, reused
	fetch    int
	done     bool
	read     int64
	retries  []pendingRetry
	noRetry  string // why Retry is refused, "" when allowed
	progress func()
}

type pendingRetry struct {
	id    int64
	after time.Duration
}

const (
	// batchSQL asks PgQ for the query that selects a batch's events (the same query
	// pgq.get_batch_cursor opens a cursor on).
	batchSQL = `SELECT pgq.batch_event_sql($1)`
	// orderSuffix ends PgQ's batch query.
	orderSuffix = ` order by 1`
)

// Statements around the batch query on the reading connection.
const (
	// beginReadSQL opens the reading transaction. The query runs as long as the
	// handler takes to consume it, so a statement_timeout meant for ordinary queries
	// must not cut it off; SET LOCAL ends with the transaction.
	beginReadSQL = `BEGIN READ ONLY; SET LOCAL statement_timeout = 0`
	endReadSQL   = `ROLLBACK`
)

// open starts reading the batch: the batch's event query, restricted to the
// configured tables the way pgq.get_batch_cursor does it, runs as one streamed
// result. The client holds only a block at a time: rows are read off the connection
// as the handler asks for them, and TCP flow control holds the server back when the
// handler is slower. (A cursor, by contrast, makes the server copy every FETCHed
// block into a tuplestore first, and leaves it idle while each block travels;
// streaming the query directly is about twice as fast.)
func (b *Batch) open(ctx context.Context, conn *pgx.Conn, tables []string) error {
	b.rd = conn
	sql := b.sql
	if sql == "" {
		if err := conn.QueryRow(ctx, batchSQL, b.ID).Scan(&sql); err != nil {
			return err
		}
	}
	args := []any{pgx.QueryExecModeDescribeExec} // one-off SQL: not for the statement cache
	if len(tables) > 0 {
		sql = "SELECT * FROM (" + strings.TrimSuffix(sql, orderSuffix) + ") _evs WHERE ev_extra1 = ANY ($1)" + orderSuffix
		args = append(args, tables)
	}
	if _, err := conn.Exec(ctx, beginReadSQL); err != nil {
		return err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	b.stream = rows
	return nil
}

// Fetch returns the next block of Config.FetchSize events (fewer at the end of the
// batch), in event id order, or an empty slice when the batch has no more events.
//
// The slice is reused by the next call (as bufio.Scanner reuses its buffer), which
// saves a quarter of the consumer's CPU: copy the events you keep beyond it, for
// example with append. The strings in the events are never reused.
func (b *Batch) Fetch(ctx context.Context) ([]Event, error) {
	var evs []Event
	if !b.done {
		if b.block == nil {
			b.block = make([]Event, 0, b.fetch)
		}
		evs = b.block[:0]
		for len(evs) < b.fetch && b.stream.Next() {
			ev, err := scanEvent(b.stream)
			if err != nil {
				b.stream.Close()
				return nil, b.err("read events", err)
			}
			evs = append(evs, ev)
		}
		if len(evs) < b.fetch {
			b.stream.Close()
			if err := b.stream.Err(); err != nil {
				return nil, b.err("read events", err)
			}
			b.done = true
			b.stream = nil
			if _, err := b.rd.Exec(ctx, endReadSQL); err != nil {
				return nil, b.err("read events", err)
			}
		}
		if b.progress != nil {
			b.progress()
		}
	}
	b.read += int64(len(evs))
	return evs, nil
}

// stopReading ends reading. What the handler left unread is skipped if it is
// short; a longer remainder is not drained (that could mean reading millions of rows
// for nothing): the connection is closed instead, and the pool replaces it.
func (b *Batch) stopReading(ctx context.Context) {
	if b.stream == nil {
		return
	}
	for n := 0; n < b.fetch && b.stream.Next(); n++ {
	}
	if b.stream.Next() || b.stream.Err() != nil {
		_ = b.rd.Close(ctx)
	} else if _, err := b.rd.Exec(ctx, endReadSQL); err != nil {
		_ = b.rd.Close(ctx)
	}
	b.stream = nil
}

// Events iterates over the batch's events, fetching blocks as needed. On a read error
// it yields the error once and stops:
//
//	for ev, err := range b.Events(ctx) {
//		if err != nil {
//			return err
//		}
//		...
//	}
func (b *Batch) Events(ctx context.Context) iter.Seq2[Event, error] {
	return func(yield func(Event, error) bool) {
		for {
			evs, err := b.Fetch(ctx)
			if err != nil {
				yield(Event{}, err)
				return
			}
			if len(evs) == 0 {
				return
			}
			for _, ev := range evs {
				if !yield(ev, nil) {
					return
				}
			}
		}
	}
}

// Retry asks for ev to be delivered again, in a later batch, after at least the given
// delay (the actual delay is rounded up to pgqd's retry period and the next tick).
// The retry is recorded when the batch finishes, in the same transaction: if the
// handler fails, nothing is retried and the whole batch comes again. ev.Retry counts
// the deliveries. Only this consumer sees the retried event.
//
// Exactly-once consumers (Config.Target) cannot retry single events: the batch is
// applied to the target as a whole.
func (b *Batch) Retry(ev Event, after time.Duration) error {
	if b.noRetry != "" {
		return b.err("retry event", errors.New(b.noRetry))
	}
	if after < 0 {
		after = 0
	}
	b.retries = append(b.retries, pendingRetry{id: ev.ID, after: after})
	return nil
}

// Retried is how many events the handler has passed to Retry so far.
func (b *Batch) Retried() int { return len(b.retries) }

// retryEventsSQL records all of a batch's per-event retries in one round trip.
const retryEventsSQL = `SELECT coalesce(sum(pgq.event_retry($1, r.id, clock_timestamp() + make_interval(secs => r.secs))), 0)
  FROM unnest($2::bigint[], $3::float8[]) AS r(id, secs)`

// applyRetries puts the events passed to Retry into the retry queue, in Batch.Tx (a
// transaction of the queue's database: retries are refused with a Target). It returns how many were new there.
func (b *Batch) applyRetries(ctx context.Context) (int64, error) {
	if len(b.retries) == 0 {
		return 0, nil
	}
	ids := make([]int64, len(b.retries))
	secs := make([]float64, len(b.retries))
	for i, r := range b.retries {
		ids[i], secs[i] = r.id, r.after.Seconds()
	}
	var n int64
	if err := b.Tx.QueryRow(ctx, retryEventsSQL, b.ID, ids, secs).Scan(&n); err != nil {
		return 0, b.err("retry events", err)
	}
	return n, nil
}

func (b *Batch) err(op string, err error) error {
	return who{queue: b.Queue, consumer: b.Consumer, batch: b.ID}.wrap(op, err)
}

// RetryBatch is what a handler returns to have every event of the batch delivered
// again after the delay instead of now: the handler's work in Batch.Tx is rolled back,
// the events go into the retry queue, and the batch is finished, so the consumer moves
// on. (Returning any other error also rolls back, but the same batch then comes again
// after the consumer's error backoff, holding up the events behind it.)
//
// Exactly-once consumers (Config.Target) cannot use it; for them it is an error like
// any other.
func RetryBatch(after time.Duration) error {
	if after < 0 {
		after = 0
	}
	return &retryBatchError{after: after}
}

type retryBatchError struct{ after time.Duration }

func (e *retryBatchError) Error() string {
	return fmt.Sprintf("retry the whole batch after %s", e.after)
}
