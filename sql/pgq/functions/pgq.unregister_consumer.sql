-- pgq.unregister_consumer(x_queue_name, x_consumer_name): end a subscription.
--
-- For a pgq_coop subconsumer (no position of its own, or one holding a batch) that
-- shares its sub_id with others, only its own row goes. Otherwise the subscription, all
-- subconsumers sharing its sub_id and its events waiting in the retry queue are
-- deleted, and the consumer name too when no other queue uses it.
-- Result: the number of subscription rows deleted; 0 when not subscribed.
CREATE OR REPLACE FUNCTION pgq.unregister_consumer(
    x_queue_name text,
    x_consumer_name text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    s record;
    shared int;
BEGIN
    SELECT sub.sub_id, c.co_id,
           (sub.sub_last_tick IS NULL) = (sub.sub_next_tick IS NULL) AS maybe_sub
      INTO s
      FROM pgq.subscription sub
      JOIN pgq.consumer c ON c.co_id = sub.sub_consumer
      JOIN pgq.queue q ON q.queue_id = sub.sub_queue
     WHERE q.queue_name = x_queue_name AND c.co_name = x_consumer_name
       FOR UPDATE OF sub, c;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;

    SELECT count(*) INTO shared FROM pgq.subscription WHERE sub_id = s.sub_id;
    IF shared > 1 AND s.maybe_sub THEN
        DELETE FROM pgq.subscription WHERE sub_id = s.sub_id AND sub_consumer = s.co_id;
        RETURN 1;
    END IF;

    DELETE FROM pgq.retry_queue WHERE ev_owner = s.sub_id;
    DELETE FROM pgq.subscription WHERE sub_id = s.sub_id;
    PERFORM 1 FROM pgq.subscription WHERE sub_consumer = s.co_id;
    IF NOT FOUND THEN
        DELETE FROM pgq.consumer WHERE co_id = s.co_id;
    END IF;
    RETURN shared;
END;
$fn$;
