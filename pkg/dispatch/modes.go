package dispatch

import (
	"context"
	"fmt"
	"time"

	"github.com/skytools-go/skytools/pkg/pgq"
)

// tableMode is table_dispatcher: INSERT events into time partitions, with COPY.
type tableMode struct {
	*state
}

func (m *tableMode) add(ctx context.Context, ev *pgq.Event, t *Table, ch Change) error {
	if ch.Op != OpInsert {
		m.h.count(SkipOperation, t.Name)
		return nil
	}
	meta, err := m.meta(ctx, t.Target)
	if err != nil {
		return err
	}
	field := t.PartField
	if meta.partitioned {
		switch {
		case meta.partStrat != "r":
			return fmt.Errorf("destination table %s is not RANGE partitioned: table mode needs range partitions on part_field", meta.name)
		case meta.partKey == "":
			return fmt.Errorf("destination table %s is partitioned by an expression or several columns: table mode needs one column", meta.name)
		case field == "":
			field = meta.partKey
		case field != meta.partKey:
			return fmt.Errorf("destination table %s is partitioned by %s, not by part_field %s", meta.name, meta.partKey, field)
		}
	}
	ts := ev.Time.UTC()
	if field != "" {
		if ts, err = fieldTime(meta, ch.Row, field); err != nil {
			return err
		}
	}
	part, err := m.partition(ctx, meta, t, ts)
	if err != nil {
		return err
	}
	cols, vals := meta.project(ch.Row)
	if meta.partitioned {
		m.copies.add(meta.ident, meta.name, cols, vals) // PostgreSQL routes the rows
	} else {
		m.copies.add(part.ident, part.name, cols, vals)
	}
	return nil
}

// fieldTime is the partitioning time of a row: the part_field's value as an instant
// in UTC when the destination column is timestamptz, else its wall-clock time (as
// PostgreSQL reads a timestamp or date, ignoring any offset).
func fieldTime(meta *tableMeta, r Row, field string) (time.Time, error) {
	v, ok := r.Get(field)
	switch {
	case !ok:
		return time.Time{}, bad("the row has no column %q (part_field)", field)
	case !v.Valid:
		return time.Time{}, bad("part_field %q is NULL", field)
	}
	ts, hasOffset, err := ParseTimestamp(v.String)
	if err != nil {
		return time.Time{}, bad("part_field %q: %v", field, err)
	}
	if hasOffset && meta.types[field] == "timestamp with time zone" {
		return ts.UTC(), nil
	}
	return time.Date(ts.Year(), ts.Month(), ts.Day(), ts.Hour(), ts.Minute(), ts.Second(), ts.Nanosecond(), time.UTC), nil
}

func (m *tableMode) block(ctx context.Context) error { return m.flushLarge(ctx) }

func (m *tableMode) finish(ctx context.Context) error {
	return m.copies.flushAll(ctx, m.tx, m.wrote)
}

// cubeMode is cube_dispatcher: INSERT and UPDATE events into per-period tables by
// event time, keeping the latest row per key and period or every version.
type cubeMode struct {
	*state
	folds folds
}

func (m *cubeMode) add(ctx context.Context, ev *pgq.Event, t *Table, ch Change) error {
	if ch.Op != OpInsert && ch.Op != OpUpdate {
		m.h.count(SkipOperation, t.Name)
		return nil
	}
	meta, err := m.meta(ctx, t.Target)
	if err != nil {
		return err
	}
	if meta.partitioned {
		return fmt.Errorf("destination table %s is partitioned: cube mode makes per-period tables from a plain table", meta.name)
	}
	part, err := m.partition(ctx, meta, t, ev.Time.UTC())
	if err != nil {
		return err
	}
	if t.Keep == "all" {
		cols, vals := meta.project(ch.Row)
		m.copies.add(part.ident, part.name, cols, vals)
		return nil
	}
	if len(ch.PKey) == 0 {
		return bad(`keep = "latest" needs a primary key, and the event has none`)
	}
	return m.folds.put(meta, part.ident, part.name, ch)
}

func (m *cubeMode) block(ctx context.Context) error { return m.flushLarge(ctx) }

func (m *cubeMode) finish(ctx context.Context) error {
	if err := m.copies.flushAll(ctx, m.tx, m.wrote); err != nil {
		return err
	}
	return m.folds.apply(ctx, m.state)
}

// bulkMode is bulk_loader: changes folded per key, then one DELETE and one COPY per
// table.
type bulkMode struct {
	*state
	folds folds
}

func (m *bulkMode) add(ctx context.Context, _ *pgq.Event, t *Table, ch Change) error {
	meta, err := m.meta(ctx, t.Target)
	if err != nil {
		return err
	}
	if len(ch.PKey) == 0 { // only INSERTs come without a key: ParseChange checked
		cols, vals := meta.project(ch.Row)
		m.copies.add(meta.ident, meta.name, cols, vals)
		return nil
	}
	return m.folds.put(meta, meta.ident, meta.name, ch)
}

func (m *bulkMode) block(ctx context.Context) error { return m.flushLarge(ctx) }

func (m *bulkMode) finish(ctx context.Context) error {
	if err := m.folds.apply(ctx, m.state); err != nil {
		return err
	}
	return m.copies.flushAll(ctx, m.tx, m.wrote)
}
