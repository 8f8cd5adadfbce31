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
	DataPfx  string  // parent of the queue's event tables, e.g. "pgq.event_5"
	EventSeq string  // the queue's event id sequence, e.g. "pgq.event_5_id_seq"
	MaxLag   float64 // queue_ticker_max_lag in seconds
}

// The queues a tick pass serves, and their fingerprint: the ids of the queues that are
// neither externally ticked nor paused. The tick statement compares the fingerprint it
// was built for with the current one and does nothing when they differ, so a queue
// created, dropped, paused or resumed is noticed on the very next pass.
const queuesSQL = `
SELECT queue_name, queue_id::int8, queue_data_pfx, queue_event_seq,
       extract(epoch FROM queue_ticker_max_lag)::float8
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

// tickLockTimeout bounds how long a tick pass waits for a lock (see burst).
const tickLockTimeout = 200 * time.Millisecond

// activeFor is how long after its last tick a low-latency queue counts as active and
// is watched every pollStep for events to tick at once.
const (
	activeFor = time.Second
	pollStep  = time.Millisecond
)

// burst is a DO block that ticks one set of queues for about burstTarget (or makes a
// single pass). Each pass is its own transaction. For every queue:
//
//   - every ticker_period, a regular call: pgq.ticker, then, if PgQ left an idle
//     queue alone, a check for committed events the last tick does not cover (an insert
//     that was in flight at the last tick) and, if there are any, a forced tick;
//   - in between, for a low-latency queue (ticker_max_lag <= ticker_period) that
//     ticked within the last second, a check every millisecond for committed events
//     past the last tick, ticked at once, but never sooner than ticker_period after
//     the queue's previous tick. This is what brings the wait for a tick from half a
//     period on average to about a millisecond.
//
// A new tick is announced with NOTIFY in the transaction that made it.
//
// Locks: pgq.drop_queue locks the queue's row, then drops its tables and sequences,
// while pgq.ticker reads the queue's sequence and then needs the row (the tick's
// foreign key): a pass can wait for drop_queue while holding what drop_queue waits
// for. The tick connection therefore runs with a short lock_timeout (tickLockTimeout,
// well under PostgreSQL's default one-second deadlock_timeout): the pass gives way,
// drop_queue goes on, and the worker starts the next burst with the new set of queues.
// A queue's event tables are also never looked at in the transaction that ticks it,
// which keeps such waits rare. (Locking the queue row first would avoid them too, but a
// row lock gives every pass a transaction id.) Between passes
// the block sleeps until the next regular call, the end of a queue's ticker_period
// after a tick, or a millisecond while a low-latency queue is active. A burst ends
// early, with status "changed", when the set of queues changes, and reports what it
// did in a final NOTICE (see parseBurstNotice).
type burst struct {
	sql    string
	queues []queueRef
}

// noticePrefix starts the NOTICE a burst ends with.
const noticePrefix = "pgqd-burst "

func newBurst(qs []queueRef, period time.Duration, single bool) *burst {
	return &burst{sql: buildBurstSQL(qs, period, single), queues: qs}
}

// buildBurstSQL writes the DO block of a burst. Queue names, sequences and tables
// are embedded as quoted literals and identifiers, so PL/pgSQL plans every query once
// per burst. A single burst makes one pass.
func buildBurstSQL(qs []queueRef, period time.Duration, single bool) string {
	var b strings.Builder
	n := len(qs)
	zeros, never := "'{}'::int[]", "'{}'::timestamptz[]"
	if n > 0 {
		zeros = fmt.Sprintf("array_fill(0, ARRAY[%d])", n)
		never = fmt.Sprintf("array_fill('-infinity'::timestamptz, ARRAY[%d])", n)
	}
	fmt.Fprintf(&b, `DO $pgqd$
DECLARE
  t bigint;
  now_ timestamptz;
  period interval := %[1]s;
  active interval := %[2]s;
  burst_end timestamptz := clock_timestamp() + %[3]s;
  next_fp timestamptz := '-infinity';
  wake timestamptz;
  poll boolean;
  l_seq bigint;
  l_snap txid_snapshot;
  last_call timestamptz[] := %[4]s;
  last_tick timestamptz[] := %[4]s;
  ticks int[] := %[5]s;
  late int[] := %[5]s;
  early int[] := %[5]s;
  done int := 0;
BEGIN
`, intervalLiteral(period), intervalLiteral(activeFor), intervalLiteral(burstTarget), never, zeros)
	for i, q := range qs {
		fmt.Fprintf(&b, "  last_tick[%d] := coalesce((SELECT tick_time FROM pgq.tick WHERE tick_queue = %d ORDER BY tick_queue DESC, tick_id DESC LIMIT 1), '-infinity');\n", i+1, q.ID)
	}
	fmt.Fprintf(&b, `  LOOP
    now_ := clock_timestamp();
    IF now_ >= next_fp THEN
      IF %[1]s IS DISTINCT FROM %[2]s THEN
        %[3]s
        RETURN;
      END IF;
      next_fp := now_ + period;
    END IF;
    poll := false;
    wake := burst_end;
`, fingerprintSQL, quoteLiteral(fingerprint(qs)), raiseSummary("changed"))
	for i, q := range qs {
		name := quoteLiteral(q.Name)
		fast := q.MaxLag <= period.Seconds()
		fmt.Fprintf(&b, `    t := NULL;
    IF now_ >= last_call[%[1]d] + period THEN
      last_call[%[1]d] := now_;
      t := pgq.ticker(%[2]s);
      IF t IS NULL THEN
        SELECT tick_event_seq, tick_snapshot INTO l_seq, l_snap FROM pgq.tick
         WHERE tick_queue = %[3]d ORDER BY tick_queue DESC, tick_id DESC LIMIT 1;
        IF pgq.seq_getval(%[4]s) <= l_seq AND (
             EXISTS (SELECT 1 FROM %[5]s ev WHERE ev.ev_txid >= txid_snapshot_xmax(l_snap))
          OR EXISTS (SELECT 1 FROM %[5]s ev WHERE ev.ev_txid = ANY (ARRAY(SELECT txid_snapshot_xip(l_snap))))) THEN
          COMMIT; -- release the event tables before ticking (see the lock note above)
          PERFORM pgq.force_tick(%[2]s);
          t := pgq.ticker(%[2]s);
          late[%[1]d] := late[%[1]d] + 1;
        END IF;
      END IF;
`, i+1, name, q.ID, quoteLiteral(q.EventSeq), quoteQualified(q.DataPfx))
		if fast && !single {
			fmt.Fprintf(&b, `    ELSIF now_ >= last_tick[%[1]d] + period AND now_ < last_tick[%[1]d] + active THEN
      poll := true;
      SELECT tick_snapshot INTO l_snap FROM pgq.tick
       WHERE tick_queue = %[3]d ORDER BY tick_queue DESC, tick_id DESC LIMIT 1;
      IF EXISTS (SELECT 1 FROM %[4]s ev WHERE ev.ev_txid >= txid_snapshot_xmax(l_snap))
         OR EXISTS (SELECT 1 FROM %[4]s ev WHERE ev.ev_txid = ANY (ARRAY(SELECT txid_snapshot_xip(l_snap)))) THEN
        COMMIT; -- release the event tables before ticking (see the lock note above)
        last_call[%[1]d] := now_;
        t := pgq.ticker(%[2]s);
        IF t IS NULL THEN
          PERFORM pgq.force_tick(%[2]s);
          t := pgq.ticker(%[2]s);
        END IF;
        IF t IS NOT NULL THEN
          early[%[1]d] := early[%[1]d] + 1;
        END IF;
      END IF;
`, i+1, name, q.ID, quoteQualified(q.DataPfx))
		}
		fmt.Fprintf(&b, `    END IF;
    IF t IS NOT NULL THEN
      PERFORM pg_notify(%[2]s, t::text);
      ticks[%[1]d] := ticks[%[1]d] + 1;
      last_tick[%[1]d] := now_;
    END IF;
    wake := least(wake, last_call[%[1]d] + period);
`, i+1, quoteLiteral(pgq.TickChannel(q.Name)))
		if fast && !single {
			fmt.Fprintf(&b, `    IF now_ < last_tick[%[1]d] + active THEN
      wake := least(wake, last_tick[%[1]d] + period);
    END IF;
`, i+1)
		}
	}
	b.WriteString("    COMMIT;\n    done := done + 1;\n")
	if single {
		b.WriteString("    EXIT;\n")
	} else {
		// PL/pgSQL starts the next transaction right at COMMIT, so its now() is the
		// commit time; the sleep gets a transaction of its own, ended after it, so that
		// each pass runs with a fresh now() (PgQ's ticker computes lags from it and
		// stamps the tick with it).
		fmt.Fprintf(&b, `    EXIT WHEN clock_timestamp() >= burst_end;
    IF poll THEN
      wake := least(wake, clock_timestamp() + %s);
    END IF;
    PERFORM pg_sleep(greatest(0, extract(epoch FROM wake - clock_timestamp())));
    COMMIT;
`, intervalLiteral(pollStep))
	}
	b.WriteString("  END LOOP;\n  " + raiseSummary("done") + "\nEND\n$pgqd$")
	return b.String()
}

func intervalLiteral(d time.Duration) string {
	return fmt.Sprintf("interval '%d microseconds'", d.Microseconds())
}

// raiseSummary is the statement that reports a burst's outcome.
func raiseSummary(status string) string {
	return "RAISE NOTICE '" + noticePrefix + status + " % % % %', done, array_to_string(ticks, ','), array_to_string(late, ','), array_to_string(early, ',');"
}

// burstResult is what a burst reported.
type burstResult struct {
	changed bool    // the queue set changed; the burst stopped early
	passes  int     // passes completed
	ticks   []int64 // new ticks per queue, in the burst's queue order
	late    []int64 // of those, ticks for events PgQ's rules took for idle
	early   []int64 // of those, ticks made as soon as events committed
}

// parseBurstNotice reads "pgqd-burst STATUS PASSES TICKS LATE EARLY" (TICKS, LATE
// and EARLY are comma-separated counts per queue, possibly empty).
func parseBurstNotice(msg string, nqueues int) (burstResult, error) {
	var r burstResult
	rest, ok := strings.CutPrefix(msg, noticePrefix)
	if !ok {
		return r, fmt.Errorf("not a burst notice: %q", msg)
	}
	f := strings.Split(rest, " ")
	for len(f) < 5 {
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
	if r.early, err = counts(f[4]); err != nil {
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
