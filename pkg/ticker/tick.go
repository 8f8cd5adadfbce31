package ticker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

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

// buildTickSQL builds the statement for one tick pass over qs. Each returned row is
// (fingerprint, queue_name, tick, behind): tick is the id of a new tick or NULL, and
// behind is true when the queue got no tick although committed events exist that its
// last tick does not cover while its event sequence says it is idle (an insert that
// was in flight when the last tick was taken).
func buildTickSQL(qs []queueRef) (string, []any) {
	fp := quoteLiteral(fingerprint(qs))
	var b strings.Builder
	b.WriteString("WITH fp AS (SELECT ")
	b.WriteString(fingerprintSQL)
	b.WriteString(" AS ids)\nSELECT fp.ids, NULL::text, NULL::int8, NULL::bool FROM fp")
	args := make([]any, 0, len(qs))
	for i, q := range qs {
		args = append(args, q.Name)
		p := "$" + strconv.Itoa(i+1)
		fmt.Fprintf(&b, `
UNION ALL
SELECT fp.ids, t.queue_name, t.tick,
       t.tick IS NULL AND EXISTS (
         SELECT 1
           FROM (SELECT tick_snapshot, tick_event_seq FROM pgq.tick
                  WHERE tick_queue = %[2]d ORDER BY tick_queue DESC, tick_id DESC LIMIT 1) l,
                %[3]s ev
          WHERE pgq.seq_getval(%[4]s) <= l.tick_event_seq
            AND (ev.ev_txid >= txid_snapshot_xmax(l.tick_snapshot)
                 OR ev.ev_txid = ANY (ARRAY(SELECT txid_snapshot_xip(l.tick_snapshot))))
            AND NOT txid_visible_in_snapshot(ev.ev_txid, l.tick_snapshot))
  FROM fp, LATERAL (SELECT %[1]s::text AS queue_name, pgq.ticker(%[1]s::text) AS tick WHERE fp.ids = %[5]s) t`,
			p, q.ID, quoteQualified(q.DataPfx), quoteLiteral(q.EventSeq), fp)
	}
	return b.String(), args
}

// tickResult is what one pass did.
type tickResult struct {
	ticks map[string]int64 // queue -> new tick id
}

// errQueuesChanged means the queue set changed since the statement was built.
var errQueuesChanged = errors.New("queue set changed")

// tickPass runs one pass with the statement for qs. It returns errQueuesChanged
// (without ticking anything) when the queue set no longer matches qs.
func tickPass(ctx context.Context, conn *pgx.Conn, qs []queueRef) (tickResult, error) {
	res := tickResult{ticks: map[string]int64{}}
	sql, args := buildTickSQL(qs)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return res, fmt.Errorf("tick pass: %w", err)
	}
	var behind []string
	want := fingerprint(qs)
	changed := false
	for rows.Next() {
		var ids string
		var queue *string
		var tick *int64
		var late *bool
		if err := rows.Scan(&ids, &queue, &tick, &late); err != nil {
			rows.Close()
			return res, fmt.Errorf("tick pass: %w", err)
		}
		if ids != want {
			changed = true
		}
		if queue == nil {
			continue
		}
		if tick != nil {
			res.ticks[*queue] = *tick
		} else if late != nil && *late {
			behind = append(behind, *queue)
		}
	}
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("tick pass: %w", err)
	}
	if changed {
		return res, errQueuesChanged
	}
	for _, q := range behind {
		// Advance the queue's event sequence so PgQ's own rule sees activity, then tick.
		var tick *int64
		err := conn.QueryRow(ctx, "SELECT pgq.force_tick($1), pgq.ticker($1)", q).Scan(nil, &tick)
		if err != nil {
			return res, fmt.Errorf("queue %s: tick for committed events past the last tick: %w", q, err)
		}
		if tick != nil {
			res.ticks[q] = *tick
		}
	}
	return res, nil
}

// notifyTicks announces new ticks on each queue's tick channel (pgq.TickChannel).
func notifyTicks(ctx context.Context, conn *pgx.Conn, ticks map[string]int64) error {
	if len(ticks) == 0 {
		return nil
	}
	chans := make([]string, 0, len(ticks))
	payloads := make([]string, 0, len(ticks))
	for q, t := range ticks {
		chans = append(chans, pgq.TickChannel(q))
		payloads = append(payloads, strconv.FormatInt(t, 10))
	}
	_, err := conn.Exec(ctx, "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)", chans, payloads)
	if err != nil {
		return fmt.Errorf("notify ticks: %w", err)
	}
	return nil
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
