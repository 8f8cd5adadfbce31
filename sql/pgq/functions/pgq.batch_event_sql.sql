-- pgq.batch_event_sql(x_batch_id): the query that returns a batch's events.
--
-- A batch holds the events of transactions that are not visible in its start tick's
-- snapshot S1 and visible in its end tick's snapshot S2, which is exactly: txids from
-- xmax(S1) up to xmax(S2) that are not in progress in S2, plus the txids in progress
-- in S1 but not in S2. The query says so with constants (a range, a NOT IN list and an
-- IN list) instead of calling txid_visible_in_snapshot() twice per row: the range keeps
-- the ev_txid index scan small even while a long transaction holds S1's xmin down.
-- Retried events (ev_owner set) are visible only to the subscription that owns them.
-- Error: "batch not found" when x_batch_id is not an open batch.
-- Result: SQL text returning (ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data,
--   ev_extra1..ev_extra4) ordered by ev_id; it ends in " order by 1" like PgQ's.
CREATE OR REPLACE FUNCTION pgq.batch_event_sql(x_batch_id bigint)
RETURNS text
LANGUAGE plpgsql
AS $fn$
DECLARE
    b record;
    range_from bigint;
    range_to bigint;
    running text;   -- txids in progress at the end tick, inside the range
    finished text;  -- txids in progress at the start tick, finished by the end tick
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

    range_from := txid_snapshot_xmax(b.prev_snap);
    range_to := txid_snapshot_xmax(b.cur_snap);
    SELECT string_agg(x::text, ',' ORDER BY x) INTO running
      FROM txid_snapshot_xip(b.cur_snap) x
     WHERE x >= range_from;
    SELECT string_agg(x::text, ',' ORDER BY x) INTO finished
      FROM (SELECT txid_snapshot_xip(b.prev_snap) EXCEPT SELECT txid_snapshot_xip(b.cur_snap)) f(x);

    owner_filter := ' AND (ev.ev_owner IS NULL OR ev.ev_owner = ' || b.sub_id || ')';
    FOR tbl IN SELECT pgq.batch_event_tables(x_batch_id) LOOP
        IF sql <> '' THEN
            sql := sql || ' UNION ALL ';
        END IF;
        sql := sql || cols || tbl || ' ev WHERE ev.ev_txid >= ' || range_from
            || ' AND ev.ev_txid < ' || range_to
            || coalesce(' AND ev.ev_txid NOT IN (' || running || ')', '')
            || owner_filter;
        IF finished IS NOT NULL THEN
            sql := sql || ' UNION ALL ' || cols || tbl || ' ev WHERE ev.ev_txid IN (' || finished || ')' || owner_filter;
        END IF;
    END LOOP;
    IF sql = '' THEN
        RAISE EXCEPTION 'could not construct sql for batch %', x_batch_id;
    END IF;
    RETURN sql || ' order by 1';
END;
$fn$;
