package pgq

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// insertEventSQL adds one event through PgQ's own function, so the queue's sequence,
// current table and insert checks apply exactly as for triggers.
const insertEventSQL = `SELECT pgq.insert_event($1, $2, $3, $4, $5, $6, $7)`

// Insert adds ev to queue in the transaction db stands for and returns the new event's
// id. The event exists if and only if that transaction commits. ev.Type, ev.Data and
// the extras are stored as given, NULLs included; ev.ID and ev.Time are assigned by the
// queue (use [CopyEvents] to keep them).
//
// Insert needs only the pgq_writer role.
func Insert(ctx context.Context, db Querier, queue string, ev Event) (int64, error) {
	var id int64
	err := db.QueryRow(ctx, insertEventSQL, queue, ev.Type, ev.Data, ev.Extra1, ev.Extra2, ev.Extra3, ev.Extra4).Scan(&id)
	if err != nil {
		return 0, who{queue: queue}.wrap("insert event", err)
	}
	return id, nil
}

// Statements of the bulk path, run in this order in the caller's transaction.
const (
	// assignTxIDSQL gives the transaction its txid before the event table is looked
	// up (see bulkTarget for why the order matters).
	assignTxIDSQL = `SELECT txid_current()`

	// eventTableSQL finds the table to COPY into, the queue's event sequence and the
	// transaction's start time (the ev_time of new events, as insert_event uses), and
	// whether the queue row must be locked: only for a REPEATABLE READ or SERIALIZABLE
	// transaction in a database with the original PgQ extension.
	eventTableSQL = `SELECT pgq.current_event_table(q.queue_name), q.queue_event_seq, now(),
       current_setting('transaction_isolation') <> 'read committed'
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pgq')
  FROM pgq.queue q WHERE q.queue_name = $1`

	// lockQueueSQL holds the queue row against a table rotation until the transaction
	// ends; under REPEATABLE READ it fails with a serialization error when the row
	// changed after the transaction's snapshot was taken.
	lockQueueSQL = `SELECT 1 FROM pgq.queue WHERE queue_name = $1 FOR KEY SHARE`

	// advanceSeqSQL takes one value of the event sequence per copied event, as
	// insert_event_raw does even for explicit ids, so the ticker sees the activity and
	// sequence-based batch sizes (min_count) stay right.
	advanceSeqSQL = `SELECT count(nextval($1::regclass)) FROM generate_series(1, $2::bigint)`
)

// InsertEvents adds new events to queue with one COPY into the queue's current event
// table, in transaction tx, and returns how many were written. Ids come from the
// queue's sequence and ev_time is the transaction's start time, as with [Insert];
// ev.ID and ev.Time are ignored. Feed a very large load in slices of a few thousand
// events to keep memory bounded.
//
// Bulk loading writes the event tables directly, so it needs the pgq_admin role (as
// PgQ's own bulk_insert_events does). It is safe against a table rotation at any
// isolation level; see "Producing" in the package documentation.
func InsertEvents(ctx context.Context, tx pgx.Tx, queue string, events []Event) (int64, error) {
	return bulkInsert(ctx, tx, queue, events, false)
}

// CopyEvents writes exact copies of events, typically read from another queue, into
// queue in transaction tx: ev_id and ev_time are kept, the payload with its NULLs too.
// The queue's event sequence is advanced by len(events) so the ticker notices them.
// Privileges and rotation safety are as for [InsertEvents].
func CopyEvents(ctx context.Context, tx pgx.Tx, queue string, events []Event) (int64, error) {
	return bulkInsert(ctx, tx, queue, events, true)
}

// EventTable returns the event table to COPY new events of queue into, in transaction
// tx, for callers that stream their own COPY (queue-mover does, a batch at a time).
// It is safe against a table rotation at any isolation level, as [InsertEvents] is;
// COPY the columns ev_time, ev_type, ev_data and ev_extra1..4, and let ev_id and
// ev_txid take the table's defaults (the queue's sequence, the transaction's txid),
// so the ticker notices the new events. It needs the pgq_admin role.
func EventTable(ctx context.Context, tx pgx.Tx, queue string) (pgx.Identifier, error) {
	table, _, _, err := bulkTarget(ctx, tx, queue)
	if err != nil {
		return nil, who{queue: queue}.wrap("find event table", err)
	}
	return table, nil
}

func bulkInsert(ctx context.Context, tx pgx.Tx, queue string, events []Event, keep bool) (int64, error) {
	w := who{queue: queue}
	if len(events) == 0 {
		return 0, nil
	}
	table, seq, now, err := bulkTarget(ctx, tx, queue)
	if err != nil {
		return 0, w.wrap("bulk insert: find event table", err)
	}
	cols := []string{"ev_time", "ev_type", "ev_data", "ev_extra1", "ev_extra2", "ev_extra3", "ev_extra4"}
	if keep {
		cols = append([]string{"ev_id"}, cols...)
	}
	src := pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
		ev := &events[i]
		if !keep {
			return []any{now, ev.Type, ev.Data, ev.Extra1, ev.Extra2, ev.Extra3, ev.Extra4}, nil
		}
		return []any{ev.ID, ev.Time, ev.Type, ev.Data, ev.Extra1, ev.Extra2, ev.Extra3, ev.Extra4}, nil
	})
	n, err := tx.CopyFrom(ctx, table, cols, src)
	if err != nil {
		return 0, w.wrap("bulk insert: copy into "+table.Sanitize(), err)
	}
	if keep {
		if _, err := tx.Exec(ctx, advanceSeqSQL, seq, n); err != nil {
			return 0, w.wrap("bulk insert: advance event sequence", err)
		}
	}
	return n, nil
}

// bulkTarget returns the event table to COPY into, the queue's event sequence and the
// ev_time for new events.
//
// A rotation switches the queue to its next table (step 1) and later declares the
// switch settled (step 2, a later txid). Batches whose transactions all started after
// step 2 read only the new table, so an event written into the old table by a
// transaction with a txid above step 2 would never be delivered. Two measures keep
// every bulk insert out of that window:
//
//   - The transaction takes its txid before looking up the table, in an earlier
//     statement. Under READ COMMITTED the lookup then sees any switch committed before
//     it; a switch it does not see commits later, so its step 2 gets a higher txid
//     than ours and batches covering us read both tables.
//   - A REPEATABLE READ or SERIALIZABLE transaction looks the table up in a snapshot
//     that may predate a switch. Our PgQ does not settle a switch while such a
//     snapshot exists. The original extension does (reference 2.9), so there the queue
//     row is locked FOR KEY SHARE: that fails with a serialization error if a switch
//     happened since the snapshot, and otherwise holds off the next switch until this
//     transaction ends.
func bulkTarget(ctx context.Context, tx pgx.Tx, queue string) (pgx.Identifier, string, time.Time, error) {
	var txid int64
	if err := tx.QueryRow(ctx, assignTxIDSQL).Scan(&txid); err != nil {
		return nil, "", time.Time{}, err
	}
	var (
		table, seq string
		now        time.Time
		lock       bool
	)
	err := tx.QueryRow(ctx, eventTableSQL, queue).Scan(&table, &seq, &now, &lock)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", time.Time{}, ErrQueueNotFound
	}
	if err != nil {
		return nil, "", time.Time{}, err
	}
	if lock {
		if _, err := tx.Exec(ctx, lockQueueSQL, queue); err != nil {
			return nil, "", time.Time{}, err
		}
	}
	return splitName(table), seq, now, nil
}

// splitName turns "schema.table" (as current_event_table returns it, unquoted) into
// an identifier.
func splitName(name string) pgx.Identifier {
	if s, t, ok := strings.Cut(name, "."); ok {
		return pgx.Identifier{s, t}
	}
	return pgx.Identifier{name}
}
