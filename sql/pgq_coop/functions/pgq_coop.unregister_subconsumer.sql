-- pgq_coop.unregister_subconsumer(i_queue_name, i_consumer_name, i_subconsumer_name,
-- i_batch_handling): remove a subconsumer.
--
-- i_batch_handling: what to do with a batch the subconsumer holds: 0 raises
--   "subconsumer has active batch", 1 drops it (its events are not handed out again).
-- Result: 1 when removed, 0 when there was no such subconsumer.
CREATE OR REPLACE FUNCTION pgq_coop.unregister_subconsumer(
    i_queue_name text,
    i_consumer_name text,
    i_subconsumer_name text,
    i_batch_handling integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    s record;
BEGIN
    SELECT sub.sub_queue, sub.sub_consumer, sub.sub_batch INTO s
      FROM pgq.subscription sub
      JOIN pgq.queue q ON q.queue_id = sub.sub_queue
      JOIN pgq.consumer c ON c.co_id = sub.sub_consumer
     WHERE q.queue_name = i_queue_name AND c.co_name = i_consumer_name || '.' || i_subconsumer_name
       FOR UPDATE OF sub;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    IF s.sub_batch IS NOT NULL AND i_batch_handling IS DISTINCT FROM 1 THEN
        RAISE EXCEPTION 'subconsumer has active batch';
    END IF;
    DELETE FROM pgq.subscription WHERE sub_queue = s.sub_queue AND sub_consumer = s.sub_consumer;
    RETURN 1;
END;
$fn$;
