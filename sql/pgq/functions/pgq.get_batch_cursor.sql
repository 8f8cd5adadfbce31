-- pgq.get_batch_cursor(i_batch_id, i_cursor_name, i_quick_limit, i_extra_where): open
-- a NO SCROLL cursor over a batch's events, to stream a big batch.
--
-- i_cursor_name: the cursor's name; FETCH from it until it returns fewer rows than
--   asked, then CLOSE it. The cursor lives until the end of the transaction.
-- i_quick_limit: when > 0, the first this many rows are fetched and returned at once.
-- i_extra_where: optional SQL condition on the event columns (e.g. a table filter).
-- Result: the quick-fetched rows; nothing at all when batch, name or limit is NULL.
CREATE OR REPLACE FUNCTION pgq.get_batch_cursor(
    in i_batch_id       bigint,
    in i_cursor_name    text,
    in i_quick_limit    int4,
    in i_extra_where    text,
    out ev_id       bigint,
    out ev_time     timestamptz,
    out ev_txid     bigint,
    out ev_retry    int4,
    out ev_type     text,
    out ev_data     text,
    out ev_extra1   text,
    out ev_extra2   text,
    out ev_extra3   text,
    out ev_extra4   text)
RETURNS SETOF record
AS $fn$
DECLARE
    sql text;
    cur refcursor;
BEGIN
    IF i_batch_id IS NULL OR i_cursor_name IS NULL OR i_quick_limit IS NULL THEN
        RETURN;
    END IF;
    sql := pgq.batch_event_sql(i_batch_id);
    IF i_extra_where IS NOT NULL THEN
        sql := 'SELECT * FROM (' || left(sql, -length(' order by 1')) || ') _evs WHERE '
            || i_extra_where || ' order by 1';
    END IF;
    cur := i_cursor_name;
    OPEN cur NO SCROLL FOR EXECUTE sql;
    IF i_quick_limit > 0 THEN
        RETURN QUERY EXECUTE 'FETCH ' || i_quick_limit || ' FROM ' || quote_ident(i_cursor_name);
    END IF;
    RETURN;
END;
$fn$ LANGUAGE plpgsql;

-- pgq.get_batch_cursor(i_batch_id, i_cursor_name, i_quick_limit): as the 4-argument
-- form without an extra condition.
CREATE OR REPLACE FUNCTION pgq.get_batch_cursor(
    in i_batch_id       bigint,
    in i_cursor_name    text,
    in i_quick_limit    int4,
    out ev_id       bigint,
    out ev_time     timestamptz,
    out ev_txid     bigint,
    out ev_retry    int4,
    out ev_type     text,
    out ev_data     text,
    out ev_extra1   text,
    out ev_extra2   text,
    out ev_extra3   text,
    out ev_extra4   text)
RETURNS SETOF record
AS $fn$
BEGIN
    RETURN QUERY SELECT * FROM pgq.get_batch_cursor(i_batch_id, i_cursor_name, i_quick_limit, NULL);
END;
$fn$ LANGUAGE plpgsql STRICT;
