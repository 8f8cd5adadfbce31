-- pgq.batch_event_sql(x_batch_id): the query that returns a batch's events.
--
-- A batch holds the events of transactions that are not visible in its start tick's
-- snapshot and visible in its end tick's snapshot. To keep the ev_txid index range
-- small while a long transaction holds the start snapshot's xmin down, the range starts
-- at the start snapshot's xmax; transactions in progress at the start tick and finished
-- by the end tick are added: those within 100 below the range start extend the range,
-- older ones are listed explicitly. Retried events (ev_owner set) are visible only to
-- the subscription that owns them. Both snapshots are inlined, so the query does not
-- depend on the tick rows any more.
-- Error: "batch not found" when x_batch_id is not an open batch.
-- Result: SQL text returning (ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data,
--   ev_extra1..ev_extra4) ordered by ev_id; it ends in " order by 1" like PgQ's.
CREATE OR REPLACE FUNCTION pgq.batch_event_sql(x_batch_id bigint)
RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
    b record;
    range_start bigint;
    listed text := '';
    x bigint;
    tbl text;
    cols constant text := 'SELECT ev.ev_id, ev.ev_time, ev.ev_txid, ev.ev_retry, ev.ev_type, ev.ev_data,'
                       || ' ev.ev_extra1, ev.ev_extra2, ev.ev_extra3, ev.ev_extra4 FROM ';
    owner_filter text;
    sql text := '';
BEGIN
    SELECT s.sub_id, prev.tick_snapshot AS prev_snap, cur.tick_snapshot AS cur_snap INTO b
      FROM pgq.subscription s
      JOIN pgq.tick prev ON prev.tick_queue = s.sub_queue AND prev.tick_id = s.sub_last_tick
      JOIN pgq.tick cur ON cur.tick_queue = s.sub_queue AND cur.tick_id = s.sub_next_tick
     WHERE s.sub_batch = x_batch_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'batch not found';
    END IF;

    range_start := txid_snapshot_xmax(b.prev_snap);
    FOR x IN
        SELECT txid_snapshot_xip(b.prev_snap)
        EXCEPT
        SELECT txid_snapshot_xip(b.cur_snap)
        ORDER BY 1 DESC
    LOOP
        IF x >= range_start - 100 THEN
            range_start := x;
        ELSE
            listed := listed || CASE WHEN listed = '' THEN '' ELSE ',' END || x;
        END IF;
    END LOOP;

    owner_filter := ' AND (ev.ev_owner IS NULL OR ev.ev_owner = ' || b.sub_id || ')';
    FOR tbl IN SELECT pgq.batch_event_tables(x_batch_id) LOOP
        IF sql <> '' THEN
            sql := sql || ' UNION ALL ';
        END IF;
        sql := sql || cols || tbl || ' ev WHERE ev.ev_txid >= ' || range_start
            || ' AND ev.ev_txid <= ' || txid_snapshot_xmax(b.cur_snap)
            || ' AND txid_visible_in_snapshot(ev.ev_txid, ' || quote_literal(b.cur_snap::text) || '::txid_snapshot)'
            || ' AND NOT txid_visible_in_snapshot(ev.ev_txid, ' || quote_literal(b.prev_snap::text) || '::txid_snapshot)'
            || owner_filter;
        IF listed <> '' THEN
            sql := sql || ' UNION ALL ' || cols || tbl || ' ev WHERE ev.ev_txid IN (' || listed || ')' || owner_filter;
        END IF;
    END LOOP;
    IF sql = '' THEN
        RAISE EXCEPTION 'could not construct sql for batch %', x_batch_id;
    END IF;
    RETURN sql || ' order by 1';
END;
$fn$;
