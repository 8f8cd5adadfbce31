-- pgq.event_retry_raw(x_queue, x_consumer, x_retry_after, x_ev_id, x_ev_time,
-- x_ev_retry, x_ev_type, x_ev_data, x_ev_extra1..x_ev_extra4): put an arbitrary event
-- into the retry queue for a consumer.
--
-- x_ev_id: NULL takes an id from the queue's event sequence.
-- Error: "consumer not registered".
-- Result: the event id.
CREATE OR REPLACE FUNCTION pgq.event_retry_raw(
    x_queue text,
    x_consumer text,
    x_retry_after timestamptz,
    x_ev_id bigint,
    x_ev_time timestamptz,
    x_ev_retry integer,
    x_ev_type text,
    x_ev_data text,
    x_ev_extra1 text,
    x_ev_extra2 text,
    x_ev_extra3 text,
    x_ev_extra4 text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    s record;
    id bigint;
BEGIN
    SELECT sub.sub_id, q.queue_id, q.queue_event_seq INTO s
      FROM pgq.queue q
      JOIN pgq.subscription sub ON sub.sub_queue = q.queue_id
      JOIN pgq.consumer c ON c.co_id = sub.sub_consumer
     WHERE q.queue_name = x_queue AND c.co_name = x_consumer;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'consumer not registered';
    END IF;
    id := coalesce(x_ev_id, nextval(s.queue_event_seq::regclass));
    INSERT INTO pgq.retry_queue (ev_retry_after, ev_queue, ev_id, ev_time, ev_owner, ev_retry,
                                 ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
    VALUES (x_retry_after, s.queue_id, id, x_ev_time, s.sub_id, x_ev_retry,
            x_ev_type, x_ev_data, x_ev_extra1, x_ev_extra2, x_ev_extra3, x_ev_extra4);
    RETURN id;
END;
$fn$;
