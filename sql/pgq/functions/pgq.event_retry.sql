-- pgq.event_retry(x_batch_id, x_event_id, x_retry_time): put one event of an open batch
-- into the retry queue; pgq.maint_retry_events() re-inserts it at x_retry_time and only
-- this subscription sees it again (ev_retry counts the retries). The batch must still
-- be finished.
--
-- Error: "event not found" when the batch is not open or the event is not in it.
-- Result: 1, or 0 when the event is already in the retry queue.
CREATE OR REPLACE FUNCTION pgq.event_retry(
    x_batch_id bigint,
    x_event_id bigint,
    x_retry_time timestamptz)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    s record;
    e record;
    n int;
BEGIN
    SELECT sub_queue, sub_id INTO s FROM pgq.subscription WHERE sub_batch = x_batch_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event not found';
    END IF;
    EXECUTE 'SELECT * FROM (' || pgq.batch_event_sql(x_batch_id) || ') e WHERE e.ev_id = $1 LIMIT 1'
       INTO e USING x_event_id;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RAISE EXCEPTION 'event not found';
    END IF;
    INSERT INTO pgq.retry_queue (ev_retry_after, ev_queue, ev_id, ev_time, ev_txid, ev_owner, ev_retry,
                                 ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
    VALUES (x_retry_time, s.sub_queue, e.ev_id, e.ev_time, NULL, s.sub_id, coalesce(e.ev_retry, 0) + 1,
            e.ev_type, e.ev_data, e.ev_extra1, e.ev_extra2, e.ev_extra3, e.ev_extra4)
    ON CONFLICT (ev_owner, ev_id) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$fn$;

-- pgq.event_retry(x_batch_id, x_event_id, x_retry_seconds): as above, retried
-- x_retry_seconds from now. Result: 1, or 0 when already in the retry queue.
CREATE OR REPLACE FUNCTION pgq.event_retry(
    x_batch_id bigint,
    x_event_id bigint,
    x_retry_seconds integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    RETURN pgq.event_retry(x_batch_id, x_event_id, now() + x_retry_seconds * interval '1 second');
END;
$fn$;
