-- pgq.batch_retry(i_batch_id, i_retry_seconds): put every event of an open batch into
-- the retry queue, to come back i_retry_seconds from now (see pgq.event_retry).
--
-- Error: "batch_retry: batch <id> not found".
-- Result: the number of events queued for retry (those already there are skipped).
CREATE OR REPLACE FUNCTION pgq.batch_retry(
    i_batch_id bigint,
    i_retry_seconds integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    s record;
    n int;
BEGIN
    SELECT sub_queue, sub_id INTO s FROM pgq.subscription WHERE sub_batch = i_batch_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'batch_retry: batch % not found', i_batch_id;
    END IF;
    INSERT INTO pgq.retry_queue (ev_retry_after, ev_queue, ev_id, ev_time, ev_txid, ev_owner, ev_retry,
                                 ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
    SELECT now() + i_retry_seconds * interval '1 second', s.sub_queue, e.ev_id, e.ev_time, NULL,
           s.sub_id, coalesce(e.ev_retry, 0) + 1,
           e.ev_type, e.ev_data, e.ev_extra1, e.ev_extra2, e.ev_extra3, e.ev_extra4
      FROM pgq.get_batch_events(i_batch_id) e
    ON CONFLICT (ev_owner, ev_id) DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END;
$fn$;
