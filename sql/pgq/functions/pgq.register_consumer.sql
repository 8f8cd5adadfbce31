-- pgq.register_consumer(x_queue_name, x_consumer_id): subscribe a consumer to a queue
-- at the queue's latest tick (register_consumer_at with no position).
--
-- Result: 1 when newly subscribed, 0 when it already was.
CREATE OR REPLACE FUNCTION pgq.register_consumer(
    x_queue_name text,
    x_consumer_id text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
BEGIN
    RETURN pgq.register_consumer_at(x_queue_name, x_consumer_id, NULL);
END;
$fn$;
