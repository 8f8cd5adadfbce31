package mover

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/relay"
)

// Handler moves each batch into the destination queue; see the package documentation.
type Handler struct {
	queue string
	tally *relay.Tally
}

// NewHandler returns the batch handler that moves events into queue. tally may be nil.
func NewHandler(queue string, tally *relay.Tally) *Handler {
	return &Handler{queue: queue, tally: tally}
}

// eventColumns are the columns COPY writes; ev_id, ev_txid, ev_owner and ev_retry
// take their defaults.
var eventColumns = []string{"ev_time", "ev_type", "ev_data", "ev_extra1", "ev_extra2", "ev_extra3", "ev_extra4"}

// HandleBatch copies the batch's events into the destination queue in b.Tx.
func (h *Handler) HandleBatch(ctx context.Context, b *pgq.Batch) error {
	if h.tally != nil {
		h.tally.Begin()
	}
	src := &batchSource{ctx: ctx, b: b}
	if !src.Next() {
		return src.Err() // an empty batch writes nothing
	}
	table, err := eventTable(ctx, b.Tx, h.queue)
	if err != nil {
		return err
	}
	src.started = true
	n, err := b.Tx.CopyFrom(ctx, table, eventColumns, src)
	if err != nil {
		if src.err != nil {
			return src.err
		}
		return fmt.Errorf("queue %s: copy events into %s: %w", h.queue, table.Sanitize(), err)
	}
	if h.tally != nil {
		h.tally.Wrote(h.queue, n)
	}
	return nil
}

// batchSource streams a batch's events into CopyFrom block by block.
type batchSource struct {
	ctx     context.Context
	b       *pgq.Batch
	block   []pgq.Event
	i       int
	started bool // Next was called once before CopyFrom, to see if there is anything
	err     error
}

func (s *batchSource) Next() bool {
	if s.started {
		s.started = false // the first event was fetched before the copy began
		return true
	}
	s.i++
	if s.i < len(s.block) {
		return true
	}
	evs, err := s.b.Fetch(s.ctx)
	if err != nil {
		s.err = err
		return false
	}
	s.block, s.i = evs, 0
	return len(evs) > 0
}

func (s *batchSource) Values() ([]any, error) {
	ev := &s.block[s.i]
	return []any{ev.Time, ev.Type, ev.Data, ev.Extra1, ev.Extra2, ev.Extra3, ev.Extra4}, nil
}

func (s *batchSource) Err() error { return s.err }

const (
	// takeTxIDSQL gives the transaction its txid before the event table is looked up.
	takeTxIDSQL = `SELECT txid_current()`
	// eventTableSQL finds the queue's current event table and whether the transaction
	// runs above READ COMMITTED.
	eventTableSQL = `SELECT pgq.current_event_table(queue_name),
       current_setting('transaction_isolation') <> 'read committed'
  FROM pgq.queue WHERE queue_name = $1`
	// lockQueueSQL holds off a table rotation until the transaction ends, or fails when
	// one happened after the transaction's snapshot.
	lockQueueSQL = `SELECT 1 FROM pgq.queue WHERE queue_name = $1 FOR KEY SHARE`
)

// eventTable returns the table to COPY into; see step 2 in the package documentation.
func eventTable(ctx context.Context, tx pgx.Tx, queue string) (pgx.Identifier, error) {
	if _, err := tx.Exec(ctx, takeTxIDSQL); err != nil {
		return nil, fmt.Errorf("queue %s: take txid: %w", queue, err)
	}
	var (
		name   string
		repeat bool
	)
	err := tx.QueryRow(ctx, eventTableSQL, queue).Scan(&name, &repeat)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("destination queue %s: %w", queue, pgq.ErrQueueNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("queue %s: find the current event table: %w", queue, err)
	}
	if repeat {
		if _, err := tx.Exec(ctx, lockQueueSQL, queue); err != nil {
			return nil, fmt.Errorf("queue %s: lock against rotation: %w", queue, err)
		}
	}
	if schema, table, ok := strings.Cut(name, "."); ok { // unquoted, as current_event_table returns it
		return pgx.Identifier{schema, table}, nil
	}
	return pgx.Identifier{name}, nil
}
