package dispatch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/skytools-go/skytools/pkg/pgq"
	"github.com/skytools-go/skytools/pkg/relay"
	"go.uber.org/zap"
)

// Reasons for skipping events, as the skipped-events metric labels them.
const (
	SkipUnconfigured = "unconfigured" // the event's table has no [[table]]
	SkipOperation    = "operation"    // an operation the mode does not apply
	SkipTruncate     = "truncate"     // a TRUNCATE event
	SkipBad          = "bad_event"    // a malformed event, with on_bad_event = "skip"
)

// Handler applies batches of trigger events in one of the modes; see the package
// documentation.
type Handler struct {
	mode   string
	skip   bool // on_bad_event = "skip"
	tables map[string]*Table
	log    *zap.Logger
	tally  *relay.Tally
}

// NewHandler builds the handler for a validated configuration. log and tally may be
// nil.
func NewHandler(cfg *Config, log *zap.Logger, tally *relay.Tally) *Handler {
	if log == nil {
		log = zap.NewNop()
	}
	h := &Handler{mode: cfg.Mode, skip: cfg.OnBadEvent == "skip", tables: map[string]*Table{}, log: log, tally: tally}
	for i := range cfg.Tables {
		t := &cfg.Tables[i]
		h.tables[t.Name] = t
	}
	return h
}

// badEvent is a problem with one event, as opposed to the destination.
type badEvent struct{ err error }

func (b *badEvent) Error() string { return b.err.Error() }
func (b *badEvent) Unwrap() error { return b.err }

func bad(format string, args ...any) error { return &badEvent{fmt.Errorf(format, args...)} }

// applier is one mode's work on one batch.
type applier interface {
	// add takes one event's change; a *badEvent error is about the event alone.
	add(ctx context.Context, ev *pgq.Event, t *Table, ch Change) error
	// block is called after each block of events (modes flush large buffers there).
	block(ctx context.Context) error
	// finish writes what is left.
	finish(ctx context.Context) error
}

// HandleBatch applies the batch's events in b.Tx.
func (h *Handler) HandleBatch(ctx context.Context, b *pgq.Batch) error {
	if h.tally != nil {
		h.tally.Begin()
	}
	// Partition bounds and values without an offset are read as UTC, the same way
	// the dispatcher computes periods.
	if _, err := b.Tx.Exec(ctx, "SET LOCAL TimeZone = 'UTC'"); err != nil {
		return fmt.Errorf("destination: set TimeZone: %w", err)
	}
	st := &state{tx: b.Tx, metas: map[string]*tableMeta{}, parts: map[string]bool{}, h: h}
	var a applier
	switch h.mode {
	case ModeTable:
		a = &tableMode{state: st}
	case ModeCube:
		a = &cubeMode{state: st}
	default:
		a = &bulkMode{state: st}
	}
	for {
		evs, err := b.Fetch(ctx)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			break
		}
		for i := range evs {
			if err := h.event(ctx, a, &evs[i]); err != nil {
				return err
			}
		}
		if err := a.block(ctx); err != nil {
			return err
		}
	}
	return a.finish(ctx)
}

// event routes one event: skipped when its table is not configured, decoded, and
// handed to the mode; malformed events stop the batch or are skipped.
func (h *Handler) event(ctx context.Context, a applier, ev *pgq.Event) error {
	table := ev.Extra1.String
	t, ok := h.tables[table]
	if !ok {
		h.count(SkipUnconfigured, table)
		return nil
	}
	var err error
	var ch Change
	if !ev.Type.Valid {
		err = errors.New("event type is NULL")
	} else {
		ch, err = ParseChange(ev.Type.String, ev.Data.String)
	}
	if err == nil {
		if ch.Op == OpTruncate {
			h.log.Warn("TRUNCATE event skipped: the dispatcher applies row changes only", zap.Int64("event", ev.ID), zap.String("table", table))
			h.count(SkipTruncate, table)
			return nil
		}
		err = a.add(ctx, ev, t, ch)
		var be *badEvent
		if err != nil && !errors.As(err, &be) {
			return err
		}
	}
	if err == nil {
		return nil
	}
	if !h.skip {
		return fmt.Errorf("event %d (table %s): %w (set on_bad_event = \"skip\" to leave such events out)", ev.ID, table, err)
	}
	h.log.Warn("malformed event skipped", zap.Int64("event", ev.ID), zap.String("table", table), zap.Error(err))
	h.count(SkipBad, table)
	return nil
}

func (h *Handler) count(reason, table string) {
	if h.tally != nil {
		h.tally.Skip(reason, table, 1)
	}
}

// state is what the modes share within one batch.
type state struct {
	h      *Handler
	tx     pgx.Tx
	metas  map[string]*tableMeta
	parts  map[string]bool // partitions known to exist in this transaction
	copies copies
}

func (s *state) meta(ctx context.Context, name string) (*tableMeta, error) {
	if m, ok := s.metas[name]; ok {
		return m, nil
	}
	m, err := loadMeta(ctx, s.tx, name)
	if err != nil {
		return nil, err
	}
	s.metas[name] = m
	return m, nil
}

// partition returns the partition of parent for the period holding ts, creating it
// when needed.
func (s *state) partition(ctx context.Context, parent *tableMeta, t *Table, ts time.Time) (partition, error) {
	start := t.PartPeriod.Start(ts)
	part, err := partitionFor(parent, t.PartPeriod, start)
	if err != nil {
		return part, err
	}
	if !s.parts[part.name] {
		if err := ensurePartition(ctx, s.tx, parent, part, t.PartPeriod, start, t.PartTemplate); err != nil {
			return part, err
		}
		s.parts[part.name] = true
	}
	return part, nil
}

func (s *state) wrote(table string, n int64) {
	if s.h.tally != nil {
		s.h.tally.Wrote(table, n)
	}
}

func (s *state) flushLarge(ctx context.Context) error {
	if s.copies.size < flushAt {
		return nil
	}
	return s.copies.flushAll(ctx, s.tx, s.wrote)
}

// fold keeps the final image of each primary key of one destination table within a
// batch, in the order keys first appeared.
type fold struct {
	meta  *tableMeta
	ident pgx.Identifier
	name  string
	pk    []string
	index map[string]int
	keys  [][]pgtype.Text
	rows  []*Row // nil: the key's last change was a DELETE
}

// folds are the folds of a batch, one per destination table, in the order the tables
// first appear.
type folds struct {
	byName map[string]*fold
	order  []*fold
}

// put records ch as the newest change of its key in the fold of table name.
func (fs *folds) put(m *tableMeta, ident pgx.Identifier, name string, ch Change) error {
	f := fs.byName[name]
	if f == nil {
		if fs.byName == nil {
			fs.byName = map[string]*fold{}
		}
		f = &fold{meta: m, ident: ident, name: name, pk: ch.PKey, index: map[string]int{}}
		fs.byName[name] = f
		fs.order = append(fs.order, f)
	}
	return f.put(ch)
}

// apply applies every fold, in order.
func (fs *folds) apply(ctx context.Context, s *state) error {
	for _, f := range fs.order {
		if err := f.apply(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// put records ch as the key's newest change.
func (f *fold) put(ch Change) error {
	if !slices.Equal(f.pk, ch.PKey) {
		return bad("primary key (%v) differs from earlier events of the table (%v)", ch.PKey, f.pk)
	}
	key := make([]pgtype.Text, len(f.pk))
	var id []byte
	for i, k := range f.pk {
		v, _ := ch.Row.Get(k) // ParseChange checked that key columns are present
		if !v.Valid {
			return bad("primary key column %q is NULL", k)
		}
		key[i] = v
		id = append(id, v.String...)
		id = append(id, 0)
	}
	var row *Row
	if ch.Op != OpDelete {
		r := ch.Row
		row = &r
	}
	if i, ok := f.index[string(id)]; ok {
		f.rows[i] = row
		return nil
	}
	f.index[string(id)] = len(f.keys)
	f.keys = append(f.keys, key)
	f.rows = append(f.rows, row)
	return nil
}

// apply deletes every key of the fold from the destination (one DELETE) and copies
// the final images of the keys that still exist (one COPY per column list).
func (f *fold) apply(ctx context.Context, s *state) error {
	if _, err := deleteKeys(ctx, s.tx, f.meta, f.ident, f.name, f.pk, f.keys); err != nil {
		return err
	}
	var cs copies
	for _, r := range f.rows {
		if r == nil {
			continue
		}
		cols, vals := f.meta.project(*r)
		cs.add(f.ident, f.name, cols, vals)
	}
	return cs.flushAll(ctx, s.tx, s.wrote)
}
