-- pgq_coop.register_subconsumer(i_queue_name, i_consumer_name, i_subconsumer_name):
-- register a subconsumer, and its main consumer when needed.
--
-- The subconsumer is the consumer "<main>.<sub>"; its subscription takes the main
-- consumer's sub_id (so it sees the main consumer's retried events) and has no position
-- of its own.
-- Error: "main consumer not found".
-- Result: 1 when newly registered, 0 when it existed.
CREATE OR REPLACE FUNCTION pgq_coop.register_subconsumer(
    i_queue_name text,
    i_consumer_name text,
    i_subconsumer_name text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    main record;
    sub_co int4;
BEGIN
    PERFORM pgq.register_consumer(i_queue_name, i_consumer_name);
    SELECT s.sub_id, s.sub_queue INTO main
      FROM pgq.subscription s
      JOIN pgq.queue q ON q.queue_id = s.sub_queue
      JOIN pgq.consumer c ON c.co_id = s.sub_consumer
     WHERE q.queue_name = i_queue_name AND c.co_name = i_consumer_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'main consumer not found';
    END IF;
    IF pgq.register_consumer(i_queue_name, i_consumer_name || '.' || i_subconsumer_name) = 0 THEN
        RETURN 0;
    END IF;
    SELECT co_id INTO sub_co FROM pgq.consumer WHERE co_name = i_consumer_name || '.' || i_subconsumer_name;
    UPDATE pgq.subscription
       SET sub_id = main.sub_id, sub_last_tick = NULL, sub_next_tick = NULL, sub_batch = NULL
     WHERE sub_queue = main.sub_queue AND sub_consumer = sub_co;
    RETURN 1;
END;
$fn$;
