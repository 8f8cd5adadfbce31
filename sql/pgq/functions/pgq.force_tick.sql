-- pgq.force_tick(i_queue_name): make the next pgq.ticker() call tick this queue.
--
-- Advances the queue's event sequence by queue_ticker_max_count * 2 + 1000, which the
-- ticker takes for activity. It does not tick itself (concurrent ticker calls are not
-- safe): call it, wait, and repeat until the returned tick id changes. Paused and
-- externally ticked queues are left alone.
-- Result: the queue's current last tick id (NULL for an unknown queue).
CREATE OR REPLACE FUNCTION pgq.force_tick(i_queue_name text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    q record;
    last bigint;
BEGIN
    SELECT queue_id, queue_event_seq, queue_ticker_max_count, queue_external_ticker, queue_ticker_paused
      INTO q FROM pgq.queue WHERE queue_name = i_queue_name;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    SELECT tick_id INTO last FROM pgq.tick
     WHERE tick_queue = q.queue_id
     ORDER BY tick_queue DESC, tick_id DESC LIMIT 1;
    IF NOT q.queue_external_ticker AND NOT q.queue_ticker_paused THEN
        PERFORM setval(q.queue_event_seq::regclass,
                       nextval(q.queue_event_seq::regclass) + q.queue_ticker_max_count * 2 + 1000);
    END IF;
    RETURN last;
END;
$fn$;
