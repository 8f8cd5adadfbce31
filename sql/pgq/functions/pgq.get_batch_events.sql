-- pgq.get_batch_events(x_batch_id): all events of an open batch, ordered by ev_id.
--
-- Error: "batch not found" when the batch is not open (e.g. already finished).
-- Result: one row per event.
CREATE OR REPLACE FUNCTION pgq.get_batch_events(
    in x_batch_id   bigint,
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
    RETURN QUERY EXECUTE pgq.batch_event_sql(x_batch_id);
END;
$fn$ LANGUAGE plpgsql;
