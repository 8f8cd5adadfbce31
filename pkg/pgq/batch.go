package pgq

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5"
)

// Batch is one batch handed to a [Handler]: the events committed between two ticks of
// the queue, for one consumer. Its events come in blocks of Config.FetchSize: a
// batch that fits in Config.SortBuffer is read whole and sorted by the consumer, a
// larger one is sorted by PostgreSQL and streamed, so a batch of any size takes
// bounded memory.
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

	rd       *pgx.Conn   // the reading connection
	sql      string      // the batch's event query (pgq.batch_event_sql)
	est      int64       // events expected: the ticks' event sequence difference; -1 unknown
	stream   pgx.Rows    // the batch's events, being read (sorted by PostgreSQL)
	block    []Event     // the slice Fetch fills, reused
	sorted   []Event     // or: all of the batch's events, sorted by the consumer
	inMemory bool        // sorted holds the batch
	next     int         // the first event of sorted that Fetch has not returned
	sb       *sortBuffer // learns the size of streamed events too
	size     int         // bytes of the events streamed so far
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
	// orderSuffix ends PgQ's batch query (ours and the original's).
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

// open starts reading the batch. PgQ's batch query (the query pgq.get_batch_cursor
// opens a cursor on) orders the events by id, so PostgreSQL sorts all of them before
// it sends the first, while the consumer waits; the sort is most of the query's
// cost. So when the batch is expected to fit in the sort buffer the query runs
// without its ORDER BY and the consumer sorts the events (see readAll); otherwise,
// or when they turn out not to fit, PostgreSQL sorts them and the consumer streams
// them: rows are read off the connection as the handler asks for them, and TCP flow
// control holds the server back when the handler is slower. (A cursor, by contrast,
// makes the server copy every FETCHed block into a tuplestore first, and leaves it
// idle while each block travels; streaming the query directly is about twice as
// fast.) Either way the query is restricted to the configured tables the way
// pgq.get_batch_cursor does it.
func (b *Batch) open(ctx context.Context, conn *pgx.Conn, tables []string, sb *sortBuffer) error {
	b.rd = conn
	sql := b.sql
	if sql == "" {
		if err := conn.QueryRow(ctx, batchSQL, b.ID).Scan(&sql); err != nil {
			return err
		}
	}
	if sb.fits(b.est) {
		ok, err := b.readAll(ctx, conn, sql, tables, sb)
		if ok || err != nil {
			return err
		}
	}
	rows, err := startQuery(ctx, conn, sql, tables)
	if err != nil {
		return err
	}
	b.stream, b.sb = rows, sb
	return nil
}

// startQuery opens the reading transaction on conn and starts a batch query (as
// pgq.batch_event_sql writes it), restricted to events of the tables when given.
func startQuery(ctx context.Context, conn *pgx.Conn, sql string, tables []string) (pgx.Rows, error) {
	args := []any{pgx.QueryExecModeDescribeExec} // one-off SQL: not for the statement cache
	if len(tables) > 0 {
		order := ""
		if strings.HasSuffix(sql, orderSuffix) {
			order = orderSuffix
		}
		sql = "SELECT * FROM (" + strings.TrimSuffix(sql, orderSuffix) + ") _evs WHERE ev_extra1 = ANY ($1)" + order
		args = append(args, tables)
	}
	if _, err := conn.Exec(ctx, beginReadSQL); err != nil {
		return nil, err
	}
	return conn.Query(ctx, sql, args...)
}

// readAll reads the batch's events with the query's ORDER BY removed and sorts them
// by id. When they take more than the sort buffer it cancels the query and reports
// false, having learnt how big events are; the caller then has PostgreSQL sort them.
func (b *Batch) readAll(ctx context.Context, conn *pgx.Conn, sql string, tables []string, sb *sortBuffer) (bool, error) {
	rows, err := startQuery(ctx, conn, strings.TrimSuffix(sql, orderSuffix), tables)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	evs, size := sb.events[:0], 0
	for rows.Next() {
		ev, err := scanEvent(rows)
		if err != nil {
			return false, err
		}
		evs = append(evs, ev)
		size += ev.memSize()
		if size > sb.limit {
			sb.learn(size, len(evs))
			sb.overflowed++
			clear(evs)
			sb.events = evs[:0]
			// PostgreSQL stops at the cancel request (it logs "canceling statement
			// due to user request"); rows that were on their way are read and
			// dropped. If the query ended first, there is nothing to cancel and the
			// request is ignored. Without a cancel the rest of the result would be
			// read for nothing: the connection is closed instead, and the batch
			// comes again after the consumer's backoff, by then expected too big.
			if err := conn.PgConn().CancelRequest(ctx); err != nil {
				_ = conn.Close(ctx)
				return false, fmt.Errorf("batch bigger than the sort buffer, and its query could not be cancelled: %w", err)
			}
			rows.Close()
			if _, err := conn.Exec(ctx, endReadSQL); err != nil {
				return false, err
			}
			return false, nil
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, err
	}
	if _, err := conn.Exec(ctx, endReadSQL); err != nil {
		return false, err
	}
	sb.sortByID(evs)
	sb.learn(size, len(evs))
	sb.sorted++
	if old := len(sb.events); old > len(evs) {
		clear(sb.events[len(evs):old]) // let the last batch's leftover events go
	}
	sb.events = evs
	b.sorted, b.inMemory = evs, true
	return true, nil
}

// sortByID sorts evs by event id (unique within a batch). They usually come in order
// already, which one pass checks. Otherwise it sorts the ids paired with the events'
// indexes, moving 16 bytes per swap rather than a whole Event (2.5 times faster for
// 10,000 events in random order, see BenchmarkSortByID), and then moves each event
// once, following the permutation's cycles.
func (sb *sortBuffer) sortByID(evs []Event) {
	if slices.IsSortedFunc(evs, func(a, b Event) int { return cmp.Compare(a.ID, b.ID) }) {
		return
	}
	keys := sb.keys[:0]
	for i := range evs {
		keys = append(keys, idKey{evs[i].ID, i})
	}
	slices.SortFunc(keys, func(a, b idKey) int { return cmp.Compare(a.id, b.id) })
	// Position j gets the event at keys[j].at; a moved position is marked -1.
	for j := range keys {
		if keys[j].at < 0 {
			continue
		}
		first := evs[j]
		for k := j; ; {
			from := keys[k].at
			keys[k].at = -1
			if from == j {
				evs[k] = first
				break
			}
			evs[k] = evs[from]
			k = from
		}
	}
	sb.keys = keys
}

type idKey struct {
	id int64
	at int // the event's index before sorting
}

// sortBuffer is the memory a consumer sorts batches in (Config.SortBuffer), kept
// from batch to batch.
type sortBuffer struct {
	limit  int     // bytes; 0 or less: PostgreSQL sorts every batch
	avg    int     // recent mean size of events (see learn; 0: none seen yet)
	events []Event // reused
	keys   []idKey // reused by sortByID

	sorted, overflowed int // batches sorted here; batches that did not fit after all
}

// defaultEventSize is what an event is assumed to take before any was seen.
const defaultEventSize = 512

// fits tells whether est events (-1: unknown) are expected to fit in the buffer.
func (sb *sortBuffer) fits(est int64) bool {
	if sb == nil || sb.limit <= 0 {
		return false
	}
	avg := sb.avg
	if avg == 0 {
		avg = defaultEventSize
	}
	return est < 0 || est <= int64(sb.limit/avg)
}

// learn records that n events took size bytes: the mean size moves halfway to
// theirs, so that one batch of unusual events does not decide for long.
func (sb *sortBuffer) learn(size, n int) {
	if sb == nil || n == 0 {
		return
	}
	mean := max(1, size/n)
	if sb.avg == 0 {
		sb.avg = mean
	} else {
		sb.avg = (sb.avg + mean) / 2
	}
}

// Fetch returns the next block of Config.FetchSize events (fewer at the end of the
// batch), in event id order, or an empty slice when the batch has no more events.
//
// The slice is valid until the next call or until the handler returns, whichever
// comes first: the consumer reuses its memory (as bufio.Scanner reuses its buffer),
// which saves a quarter of its CPU. Copy the events you keep beyond it, for example
// with append. The strings in the events are never reused.
func (b *Batch) Fetch(ctx context.Context) ([]Event, error) {
	var evs []Event
	if b.inMemory {
		n := min(b.fetch, len(b.sorted)-b.next)
		evs = b.sorted[b.next : b.next+n : b.next+n] // appending to it must not overwrite the next events
		b.next += n
		if n > 0 && b.progress != nil {
			b.progress()
		}
	} else if !b.done {
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
			b.size += ev.memSize()
		}
		if len(evs) < b.fetch {
			b.stream.Close()
			if err := b.stream.Err(); err != nil {
				return nil, b.err("read events", err)
			}
			b.sb.learn(b.size, int(b.read)+len(evs))
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

// memSize is about how much memory ev takes: the struct and its text.
func (ev *Event) memSize() int {
	return int(unsafe.Sizeof(*ev)) + len(ev.Type.String) + len(ev.Data.String) +
		len(ev.Extra1.String) + len(ev.Extra2.String) + len(ev.Extra3.String) + len(ev.Extra4.String)
}
