package ticker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/skytools-go/skytools/pkg/pgq"
)

// queueRef is what a tick pass needs to know about one queue.
type queueRef struct {
	Name     string
	ID       int64
	DataPfx  string // parent of the queue's event tables, e.g. "pgq.event_5"
	EventSeq string // the queue's event id sequence, e.g. "pgq.event_5_id_seq"
}

// The queues a tick pass serves, and their fingerprint: the ids of the queues that are
// neither externally ticked nor paused. The tick statement compares the fingerprint it
// was built for with the current one and does nothing when they differ, so a queue
// created, dropped, paused or resumed is noticed on the very next pass.
const queuesSQL = `
SELECT queue_name, queue_id::int8, queue_data_pfx, queue_event_seq
  FROM pgq.queue
 WHERE NOT queue_external_ticker AND NOT queue_ticker_paused
 ORDER BY queue_id`

const fingerprintSQL = `(SELECT coalesce(string_agg(queue_id::text, ',' ORDER BY queue_id), '')
   FROM pgq.queue WHERE NOT queue_external_ticker AND NOT queue_ticker_paused)`

func fingerprint(qs []queueRef) string {
	ids := make([]string, len(qs))
	for i, q := range qs {
		ids[i] = strconv.FormatInt(q.ID, 10)
	}
	return strings.Join(ids, ",")
}

// quoteQualified quotes a "schema.name" as an identifier pair.
func quoteQualified(s string) string {
	schema, name, ok := strings.Cut(s, ".")
	if !ok {
		return pgx.Identifier{s}.Sanitize()
	}
	return pgx.Identifier{schema, name}.Sanitize()
}

func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// burstTarget is how long one burst of passes runs inside the database: one round trip
// per second instead of one per pass. At a 10ms ticker_period a client-driven loop
// costs more CPU in the client (waking up, the protocol, the Go scheduler) than the
// ticking itself costs in the server; a burst leaves the client asleep.
const burstTarget = time.Second

// burst is a DO block that runs passes tick passes over one set of queues. Each pass
// is its own transaction: for every queue it calls pgq.ticker, checks for committed
// events the last tick does not cover (see the package documentation), and sends the
// NOTIFY for a new tick in the transaction that made it, so consumers wake exactly
// when the tick becomes visible. Between passes it sleeps what remains of the period.
// A burst ends early, with status "changed", at the first pass that finds the set of
// queues changed. It reports what it did in a final NOTICE (see parseBurstNotice).
type burst struct {
	sql    string
	queues []queueRef
	passes int
}

// noticePrefix starts the NOTICE a burst ends with.
const noticePrefix = "pgqd-burst "

func newBurst(qs []queueRef, period time.Duration, passes int) *burst {
	return &burst{sql: buildBurstSQL(qs, period, passes), queues: qs, passes: passes}
}

// buildBurstSQL writes the DO block of a burst. Queue names, sequences and tables
// are embedded as quoted literals and identifiers, so PL/pgSQL plans every query once
// per burst.
func buildBurstSQL(qs []queueRef, period time.Duration, passes int) string {
	var b strings.Builder
	n := len(qs)
	zeros := "'{}'::int[]"
	if n > 0 {
		zeros = fmt.Sprintf("array_fill(0, ARRAY[%d])", n)
	}
	fmt.Fprintf(&b, `DO $pgqd$
DECLARE
  t bigint;
  started timestamptz;
  l_seq bigint;
  l_snap txid_snapshot;
  ticks int[] := %[1]s;
  late int[] := %[1]s;
  done int := 0;
BEGIN
  FOR pass IN 1..%[2]d LOOP
    started := clock_timestamp();
    IF %[3]s IS DISTINCT FROM %[4]s THEN
`, zeros, passes, fingerprintSQL, quoteLiteral(fingerprint(qs)))
	b.WriteString("      " + raiseSummary("changed") + "\n      RETURN;\n    END IF;\n")
	for i, q := range qs {
		name := quoteLiteral(q.Name)
		fmt.Fprintf(&b, `    t := pgq.ticker(%[1]s);
    IF t IS NULL THEN
      SELECT tick_event_seq, tick_snapshot INTO l_seq, l_snap FROM pgq.tick
       WHERE tick_queue = %[2]d ORDER BY tick_queue DESC, tick_id DESC LIMIT 1;
      IF pgq.seq_getval(%[3]s) <= l_seq AND (
           EXISTS (SELECT 1 FROM %[4]s ev WHERE ev.ev_txid >= txid_snapshot_xmax(l_snap))
        OR EXISTS (SELECT 1 FROM %[4]s ev WHERE ev.ev_txid = ANY (ARRAY(SELECT txid_snapshot_xip(l_snap))))) THEN
        PERFORM pgq.force_tick(%[1]s);
        t := pgq.ticker(%[1]s);
        late[%[5]d] := late[%[5]d] + 1;
      END IF;
    END IF;
    IF t IS NOT NULL THEN
      PERFORM pg_notify(%[6]s, t::text);
      ticks[%[5]d] := ticks[%[5]d] + 1;
    END IF;
`, name, q.ID, quoteLiteral(q.EventSeq), quoteQualified(q.DataPfx), i+1, quoteLiteral(pgq.TickChannel(q.Name)))
	}
	b.WriteString("    COMMIT;\n    done := pass;\n")
	if passes > 1 {
		fmt.Fprintf(&b, `    PERFORM pg_sleep(greatest(0, %g - extract(epoch FROM clock_timestamp() - started)));
`, period.Seconds())
	}
	b.WriteString("  END LOOP;\n  " + raiseSummary("done") + "\nEND\n$pgqd$")
	return b.String()
}

// raiseSummary is the statement that reports a burst's outcome.
func raiseSummary(status string) string {
	return "RAISE NOTICE '" + noticePrefix + status + " % % %', done, array_to_string(ticks, ','), array_to_string(late, ',');"
}

// burstResult is what a burst reported.
type burstResult struct {
	changed bool    // the queue set changed; the burst stopped early
	passes  int     // passes completed
	ticks   []int64 // new ticks per queue, in the burst's queue order
	late    []int64 // of those, ticks for committed events past the last tick
}

// parseBurstNotice reads "pgqd-burst STATUS PASSES TICKS LATE" (TICKS and LATE are
// comma-separated counts per queue, possibly empty).
func parseBurstNotice(msg string, nqueues int) (burstResult, error) {
	var r burstResult
	rest, ok := strings.CutPrefix(msg, noticePrefix)
	if !ok {
		return r, fmt.Errorf("not a burst notice: %q", msg)
	}
	f := strings.Split(rest, " ")
	for len(f) < 4 {
		f = append(f, "")
	}
	switch f[0] {
	case "done":
	case "changed":
		r.changed = true
	default:
		return r, fmt.Errorf("burst notice %q: unknown status", msg)
	}
	var err error
	if r.passes, err = strconv.Atoi(f[1]); err != nil {
		return r, fmt.Errorf("burst notice %q: %w", msg, err)
	}
	counts := func(s string) ([]int64, error) {
		out := make([]int64, nqueues)
		if s == "" {
			return out, nil
		}
		parts := strings.Split(s, ",")
		if len(parts) != nqueues {
			return nil, fmt.Errorf("burst notice %q: %d counts for %d queues", msg, len(parts), nqueues)
		}
		for i, p := range parts {
			if out[i], err = strconv.ParseInt(p, 10, 64); err != nil {
				return nil, fmt.Errorf("burst notice %q: %w", msg, err)
			}
		}
		return out, nil
	}
	if r.ticks, err = counts(f[2]); err != nil {
		return r, err
	}
	if r.late, err = counts(f[3]); err != nil {
		return r, err
	}
	return r, nil
}

func loadQueues(ctx context.Context, conn *pgx.Conn) ([]queueRef, error) {
	rows, err := conn.Query(ctx, queuesSQL)
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	qs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[queueRef])
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	return qs, nil
}
