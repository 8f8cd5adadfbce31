package pgq

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// Event is one row of a queue: what a producer inserts and a consumer reads.
//
// The payload fields are nullable text, exactly as in the event table: a NULL and an
// empty string are different values, and copying an event to another queue keeps
// that difference. [Text] makes a non-NULL value; the zero value is NULL.
type Event struct {
	ID    int64     // unique within the queue; assigned by the queue's sequence
	Time  time.Time // start time of the producing transaction
	TxID  int64     // the producing transaction (read only)
	Retry int       // 0 on first delivery, n on the n-th retry (read only)

	Type   pgtype.Text
	Data   pgtype.Text
	Extra1 pgtype.Text // by convention the source table of trigger events
	Extra2 pgtype.Text
	Extra3 pgtype.Text
	Extra4 pgtype.Text
}

// scanEvent reads one row of the event columns in PgQ's order (ev_id, ev_time, ev_txid,
// ev_retry, ev_type, ev_data, ev_extra1..4), as get_batch_cursor and FETCH return
// them. It is the hot path of consuming, so it scans by position instead of by name.
func scanEvent(row pgx.CollectableRow) (Event, error) {
	var ev Event
	var retry pgtype.Int4
	err := row.Scan(&ev.ID, &ev.Time, &ev.TxID, &retry, &ev.Type, &ev.Data,
		&ev.Extra1, &ev.Extra2, &ev.Extra3, &ev.Extra4)
	ev.Retry = int(retry.Int32)
	return ev, err
}

// NewEvent returns an event with the given type and data and NULL extras.
func NewEvent(typ, data string) Event {
	return Event{Type: Text(typ), Data: Text(data)}
}

// Text returns s as a non-NULL text value, for the fields of an [Event].
func Text(s string) pgtype.Text {
	return pgtype.Text{String: s, Valid: true}
}

// Querier runs SQL: a pgx.Tx, a *pgx.Conn or a *pgxpool.Pool. Functions that take a
// Querier run their statements in whatever transaction it stands for; give them the
// caller's pgx.Tx to make their effect part of it.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
