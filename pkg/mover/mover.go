package mover

import (
	"context"
	"fmt"

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
	// The destination queue's current event table, looked up safely against rotation.
	table, err := pgq.EventTable(ctx, b.Tx, h.queue)
	if err != nil {
		return fmt.Errorf("destination queue %s: %w", h.queue, err)
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
