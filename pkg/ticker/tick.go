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
	NTables  int     // number of rotating event tables
}

// The queues a tick pass serves, and their fingerprint: the ids of the queues that are
// neither externally ticked nor paused. The tick statement compares the fingerprint it
// was built for with the current one and does nothing when they differ, so a queue
// created, dropped, paused or resumed is noticed on the very next pass.
const queuesSQL = `
SELECT queue_name, queue_id::int8, queue_data_pfx, queue_event_seq,
       extract(epoch FROM queue_ticker_max_lag)::float8, queue_ntables::int
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

// A burst of passes runs inside the database, so that pgqd makes one round trip per
// burst instead of one per pass. At a 10ms ticker_period a client-driven loop costs
// more CPU in the client (waking up, the protocol, the Go scheduler) than the ticking
// itself costs in the server; a burst leaves the client asleep. A burst lasts 100
// passes, between minBurst and maxBurst: its fixed cost (a round trip, and without the
// temporary procedure a compile and planning of the DO block) then stays small next to
// the passes. Shutdown and
// reload cancel a burst rather than wait for its end.
const (
	minBurst = time.Second
	maxBurst = 10 * time.Second
)

// burstLength is how long a burst runs at the given ticker period.
func burstLength(period time.Duration) time.Duration {
	return min(max(100*period, minBurst), maxBurst)
}

// fingerprintEvery is how often (at most) a burst checks whether the set of queues
// changed. A queue dropped or paused meanwhile fails the pass at once (the burst gives
// way); one created meanwhile is picked up by this check or the next burst.
const fingerprintEvery = 200 * time.Millisecond

// tickLockTimeout bounds how long a tick pass waits for a lock (see burstBody).
const tickLockTimeout = 200 * time.Millisecond

// activeFor is how long after its event sequence last moved a low-latency queue is
// watched between regular ticker calls.
const activeFor = time.Second

// noticePrefix starts the NOTICE a burst ends with.
const noticePrefix = "pgqd-burst "

// burstProcedure is the name of the temporary procedure a session's bursts run in.
const burstProcedure = "pg_temp.pgqd_burst"

// createBurstProcedureSQL installs burstBody as a temporary procedure, private to the
// session and gone when it ends. PL/pgSQL then compiles the body and plans its
// statements once per set of queues, not once per burst (a DO block is compiled anew
// each time, which at a one-second period cost more than the ticking).
func createBurstProcedureSQL(body string) string {
	return "CREATE OR REPLACE PROCEDURE " + burstProcedure +
		"(period interval, burst interval, single boolean) LANGUAGE plpgsql AS $pgqd$\n" + body + "\n$pgqd$"
}

// callBurstSQL runs the session's burst procedure.
func callBurstSQL(period time.Duration, single bool) string {
	return fmt.Sprintf("CALL %s(%s, %s, %t)", burstProcedure, intervalLiteral(period), intervalLiteral(burstLength(period)), single)
}

// doBurstSQL runs burstBody as a DO block: for roles that may not create temporary
// objects.
func doBurstSQL(body string, period time.Duration, single bool) string {
	return fmt.Sprintf("DO $pgqd$\nDECLARE\n  period interval := %s;\n  burst interval := %s;\n  single boolean := %t;\nBEGIN\n%s;\nEND\n$pgqd$",
		intervalLiteral(period), intervalLiteral(burstLength(period)), single, body)
}

// burstBody is the PL/pgSQL block that ticks one set of queues for a burst (or
// makes a single pass); it runs as a temporary procedure (or a DO block). For every queue:
//
//   - every ticker_period, a regular call: pgq.ticker, then, if PgQ left an idle
//     queue alone, a check for committed events the last tick does not cover (an insert
//     that was in flight at the last tick) and, if there are any, a forced tick;
//   - in between, for a low-latency queue (ticker_max_lag <= ticker_period) whose event
//     sequence moved within the last second, a look every watchStep at its current
//     event table for committed events past the last tick, ticked at once, but never
//     sooner than ticker_period after the queue's previous tick. This brings the wait
//     for a tick from half a period on average to about a watch step.
//
// The check for committed events that PgQ took the queue for idle runs with every
// regular call while the queue's events flow, and at most once a second otherwise.
//
// A new tick is announced with NOTIFY in the transaction that made it. Between passes
// the block sleeps until the next regular call, the end of a queue's ticker_period
// after a tick, or a watch step while a low-latency queue is active. A pass that made
// a tick, or probed all of a queue's event tables (whose locks would hold off
// rotation's TRUNCATE during the sleep), commits at its end; any other pass leaves that
// to the next one, which starts with a COMMIT when its transaction is more than a
// millisecond old: PL/pgSQL starts each transaction at the previous COMMIT, and PgQ's
// ticker needs a fresh now() (it computes lags from it and stamps the tick with it).
//
// Locks: pgq.drop_queue locks the queue's row, then drops its tables and sequences,
// while pgq.ticker reads the queue's sequence and then needs the row (the tick's
// foreign key): a pass can wait for drop_queue while holding what drop_queue waits
// for. The tick connection therefore runs with a short lock_timeout (tickLockTimeout,
// well under PostgreSQL's default one-second deadlock_timeout): the pass gives way,
// drop_queue goes on, and the worker starts the next burst with the new set of queues.
// A queue's tables are never looked at in the transaction that ticks it, which keeps
// such waits rare. (Locking the queue row first would avoid them too, but a row lock
// gives every pass a transaction id.) The watch only reads the current event table,
// which rotation never truncates, so holding its lock between passes delays nothing.
//
// A burst ends early, with status "changed", when the set of queues changes, and
// reports what it did in a final NOTICE (see parseBurstNotice).
//
// It reads the parameters period (the ticker period), burst (how long to run) and
// single (make one pass only). Queue names, sequences and tables are embedded as
// quoted literals and identifiers. A low-latency queue is watched every tenth of the
// period (at least a millisecond); the set of queues is compared at most every
// fingerprintEvery.
func burstBody(qs []queueRef) string {
	var b strings.Builder
	n := len(qs)
	zeros, never, nulls, falses := "'{}'::int[]", "'{}'::timestamptz[]", "'{}'::bigint[]", "'{}'::boolean[]"
	if n > 0 {
		zeros = fmt.Sprintf("array_fill(0, ARRAY[%d])", n)
		never = fmt.Sprintf("array_fill('-infinity'::timestamptz, ARRAY[%d])", n)
		nulls = fmt.Sprintf("array_fill(NULL::bigint, ARRAY[%d])", n)
		falses = fmt.Sprintf("array_fill(false, ARRAY[%d])", n)
	}
	fmt.Fprintf(&b, `DECLARE
  t bigint;
  s bigint;
  cur int;
  found_ boolean;
  now_ timestamptz;
  active interval := %[1]s;
  burst_end timestamptz := clock_timestamp() + burst;
  watch_step interval := greatest(period / 10, interval '1 millisecond');
  fp_every interval := greatest(period, %[6]s);
  next_fp timestamptz := '-infinity';
  wake timestamptz;
  watch boolean;
  wrote boolean;
  l_seq bigint;
  l_snap txid_snapshot;
  snap text;
  fast boolean[] := %[5]s;
  last_call timestamptz[] := %[2]s;
  last_tick timestamptz[] := %[2]s;
  active_until timestamptz[] := %[2]s;
  last_probe timestamptz[] := %[2]s;
  last_seq bigint[] := %[4]s;
  ticks int[] := %[3]s;
  late int[] := %[3]s;
  early int[] := %[3]s;
  done int := 0;
BEGIN
`, intervalLiteral(activeFor), never, zeros, nulls, falses, intervalLiteral(fingerprintEvery))
	for i, q := range qs {
		// A low-latency queue (ticker_max_lag <= ticker_period) is watched between
		// regular calls. One whose last tick carried events (its event sequence moved
		// past the tick before) starts the burst as active, so that watching carries over
		// from one burst to the next; PgQ's idle ticks do not count.
		fmt.Fprintf(&b, `  fast[%[1]d] := NOT single AND %[3]s <= extract(epoch FROM period);
  IF fast[%[1]d] THEN
    SELECT tick_time, tick_event_seq - lag(tick_event_seq) OVER (ORDER BY tick_id) INTO now_, s
      FROM (SELECT tick_id, tick_time, tick_event_seq FROM pgq.tick WHERE tick_queue = %[2]d
             ORDER BY tick_queue DESC, tick_id DESC LIMIT 2) two
     ORDER BY tick_id DESC LIMIT 1;
    last_tick[%[1]d] := coalesce(now_, '-infinity');
    IF s > 0 THEN
      active_until[%[1]d] := last_tick[%[1]d] + active;
    END IF;
  END IF;
`, i+1, q.ID, strconv.FormatFloat(q.MaxLag, 'g', -1, 64))
	}
	fmt.Fprintf(&b, `  LOOP
    IF now() < clock_timestamp() - interval '1 millisecond' THEN
      COMMIT; -- a fresh transaction, so that now() is fresh
    END IF;
    now_ := clock_timestamp();
    IF now_ >= next_fp THEN
      IF %[1]s IS DISTINCT FROM %[2]s THEN
        %[3]s
        RETURN;
      END IF;
      next_fp := now_ + fp_every;
    END IF;
    watch := false;
    wrote := false;
    wake := burst_end;
`, fingerprintSQL, quoteLiteral(fingerprint(qs)), raiseSummary("changed"))
	for i, q := range qs {
		writeQueuePass(&b, i+1, q)
	}
	b.WriteString(`    IF wrote THEN
      COMMIT;
    END IF;
    done := done + 1;
    EXIT WHEN single OR clock_timestamp() >= burst_end;
    IF watch THEN
      wake := least(wake, clock_timestamp() + watch_step);
    END IF;
    PERFORM pg_sleep(greatest(0, extract(epoch FROM wake - clock_timestamp())));
  END LOOP;
  `)
	b.WriteString(raiseSummary("done") + "\nEND")
	return b.String()
}

// writeQueuePass writes queue i's part of a pass (see burstBody).
func writeQueuePass(b *strings.Builder, i int, q queueRef) {
	name := quoteLiteral(q.Name)
	fmt.Fprintf(b, `    t := NULL;
    IF now_ >= last_call[%[1]d] + period THEN
      last_call[%[1]d] := now_;
      t := pgq.ticker(%[2]s);
      s := NULL;
      IF fast[%[1]d] THEN -- activity: the event sequence moved
        s := (SELECT last_value FROM %[6]s); -- what pgq.seq_getval reads, without the call
        IF s IS DISTINCT FROM last_seq[%[1]d] THEN
          IF last_seq[%[1]d] IS NOT NULL THEN
            active_until[%[1]d] := now_ + active;
          END IF;
          last_seq[%[1]d] := s;
        END IF;
      END IF;
      -- The check for committed events PgQ took the queue for idle: every call while
      -- events flow, at most once a second otherwise (a long-idle queue can only get
      -- such an event from a long-running producer transaction).
      -- A probe that found nothing stays true while no transaction has started or
      -- ended since (the snapshot is the same): remembered per queue for the session.
      snap := NULL;
      IF t IS NULL AND (now_ < active_until[%[1]d] OR now_ >= last_probe[%[1]d] + interval '1 second') THEN
        snap := txid_current_snapshot()::text;
      END IF;
      IF snap IS NOT NULL AND snap IS DISTINCT FROM current_setting('pgqd.probed_%[3]d', true) THEN
        last_probe[%[1]d] := now_;
        wrote := true; -- commit after probing: the probe's locks would hold off rotation
        s := coalesce(s, (SELECT last_value FROM %[6]s));
        SELECT tick_event_seq, tick_snapshot INTO l_seq, l_snap FROM pgq.tick
         WHERE tick_queue = %[3]d ORDER BY tick_queue DESC, tick_id DESC LIMIT 1;
        IF s <= l_seq AND (
             EXISTS (SELECT 1 FROM %[5]s ev WHERE ev.ev_txid >= txid_snapshot_xmax(l_snap))
          OR EXISTS (SELECT 1 FROM %[5]s ev WHERE ev.ev_txid = ANY (ARRAY(SELECT txid_snapshot_xip(l_snap))))) THEN
          COMMIT; -- release the event tables before ticking (see burstBody)
          PERFORM pgq.force_tick(%[2]s);
          t := pgq.ticker(%[2]s);
          late[%[1]d] := late[%[1]d] + 1;
        ELSE
          PERFORM set_config('pgqd.probed_%[3]d', snap, false);
        END IF;
      END IF;
`, i, name, q.ID, quoteLiteral(q.EventSeq), quoteQualified(q.DataPfx), quoteQualified(q.EventSeq))
	fmt.Fprintf(b, `    ELSIF fast[%[1]d] AND now_ >= last_tick[%[1]d] + period AND now_ < active_until[%[1]d] THEN
      watch := true;
      SELECT tick_snapshot INTO l_snap FROM pgq.tick
       WHERE tick_queue = %[3]d ORDER BY tick_queue DESC, tick_id DESC LIMIT 1;
      SELECT queue_cur_table INTO cur FROM pgq.queue WHERE queue_id = %[3]d;
      found_ := CASE cur
`, i, name, q.ID)
	for tbl := 0; tbl < q.NTables; tbl++ {
		table := quoteQualified(fmt.Sprintf("%s_%d", q.DataPfx, tbl))
		fmt.Fprintf(b, `        WHEN %[1]d THEN EXISTS (SELECT 1 FROM %[2]s ev WHERE ev.ev_txid >= txid_snapshot_xmax(l_snap))
                     OR EXISTS (SELECT 1 FROM %[2]s ev WHERE ev.ev_txid = ANY (ARRAY(SELECT txid_snapshot_xip(l_snap))))
`, tbl, table)
	}
	fmt.Fprintf(b, `        ELSE false END;
      IF found_ THEN
        COMMIT; -- release the event table before ticking (see burstBody)
        last_call[%[1]d] := now_;
        wrote := true;
        t := pgq.ticker(%[2]s);
        IF t IS NULL THEN
          PERFORM pgq.force_tick(%[2]s);
          t := pgq.ticker(%[2]s);
        END IF;
        IF t IS NOT NULL THEN
          early[%[1]d] := early[%[1]d] + 1;
        END IF;
      END IF;
`, i, name)
	fmt.Fprintf(b, `    END IF;
    IF t IS NOT NULL THEN
      wrote := true;
      PERFORM pg_notify(%[2]s, t::text);
      ticks[%[1]d] := ticks[%[1]d] + 1;
      last_tick[%[1]d] := now_;
    END IF;
    wake := least(wake, last_call[%[1]d] + period);
`, i, quoteLiteral(pgq.TickChannel(q.Name)))
	fmt.Fprintf(b, `    IF fast[%[1]d] AND now_ < active_until[%[1]d] THEN
      wake := least(wake, last_tick[%[1]d] + period);
    END IF;
`, i)
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
