package pgq

import (
	"context"
	"encoding/binary"
	"math"
	"strings"
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

// scanEvent reads one row of the event columns in PgQ's order (ev_id, ev_time,
// ev_txid, ev_retry, ev_type, ev_data, ev_extra1..4), as PgQ's batch query returns
// them. It is the hot path of consuming: it decodes the binary values itself
// and gives the six text fields one allocation (substrings of one string), which
// makes reading an event several times cheaper than pgx's general Scan. Rows in any
// other shape go through Scan.
func scanEvent(row pgx.CollectableRow) (Event, error) {
	if ev, ok := decodeEvent(row.FieldDescriptions(), row.RawValues()); ok {
		return ev, nil
	}
	var ev Event
	var retry pgtype.Int4
	err := row.Scan(&ev.ID, &ev.Time, &ev.TxID, &retry, &ev.Type, &ev.Data,
		&ev.Extra1, &ev.Extra2, &ev.Extra3, &ev.Extra4)
	ev.Retry = int(retry.Int32)
	return ev, err
}

// decodeEvent decodes a row whose integer and time columns come in binary format;
// ok is false for anything else (including infinite times), left to Scan.
func decodeEvent(fds []pgconn.FieldDescription, vals [][]byte) (ev Event, ok bool) {
	eventOIDs := [10]uint32{ // the types of the event columns, in order
		pgtype.Int8OID, pgtype.TimestamptzOID, pgtype.Int8OID, pgtype.Int4OID,
		pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID, pgtype.TextOID,
	}
	if len(fds) != len(eventOIDs) || len(vals) != len(eventOIDs) {
		return ev, false
	}
	for i, fd := range fds {
		if fd.DataTypeOID != eventOIDs[i] || (i < 4 && fd.Format != pgtype.BinaryFormatCode) {
			return ev, false
		}
	}
	if len(vals[0]) != 8 || len(vals[1]) != 8 || len(vals[2]) != 8 || (vals[3] != nil && len(vals[3]) != 4) {
		return ev, false
	}
	usec := int64(binary.BigEndian.Uint64(vals[1]))
	if usec == math.MaxInt64 || usec == math.MinInt64 {
		return ev, false
	}
	ev.ID = int64(binary.BigEndian.Uint64(vals[0]))
	usec += y2kUnixMicros
	ev.Time = time.Unix(usec/1_000_000, usec%1_000_000*1_000)
	ev.TxID = int64(binary.BigEndian.Uint64(vals[2]))
	if vals[3] != nil {
		ev.Retry = int(int32(binary.BigEndian.Uint32(vals[3])))
	}
	n := 0
	for _, v := range vals[4:] {
		n += len(v)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, v := range vals[4:] {
		sb.Write(v)
	}
	all := sb.String()
	fields := [6]*pgtype.Text{&ev.Type, &ev.Data, &ev.Extra1, &ev.Extra2, &ev.Extra3, &ev.Extra4}
	off := 0
	for i, v := range vals[4:] {
		if v != nil {
			*fields[i] = pgtype.Text{String: all[off : off+len(v)], Valid: true}
			off += len(v)
		}
	}
	return ev, true
}

// y2kUnixMicros is PostgreSQL's time epoch, 2000-01-01 UTC, in Unix microseconds.
const y2kUnixMicros = 946_684_800 * 1_000_000

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
