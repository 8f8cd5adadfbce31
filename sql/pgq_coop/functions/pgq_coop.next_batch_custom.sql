-- pgq_coop.next_batch_custom(i_queue_name, i_consumer_name, i_subconsumer_name,
-- i_min_lag, i_min_count, i_min_interval): the next batch for a subconsumer, sized
-- like pgq.next_batch_custom. Result: the batch id or NULL.
CREATE OR REPLACE FUNCTION pgq_coop.next_batch_custom(
    i_queue_name text,
    i_consumer_name text,
    i_subconsumer_name text,
    i_min_lag interval,
    i_min_count int4,
    i_min_interval interval)
RETURNS bigint
LANGUAGE plpgsql
AS $fn$
BEGIN
    RETURN pgq_coop.next_batch_custom(i_queue_name, i_consumer_name, i_subconsumer_name,
                                      i_min_lag, i_min_count, i_min_interval, NULL);
END;
$fn$;

-- pgq_coop.next_batch_custom(i_queue_name, i_consumer_name, i_subconsumer_name,
-- i_min_lag, i_min_count, i_min_interval, i_dead_interval): hand the next batch of the
-- main consumer to a subconsumer.
--
-- Subconsumers of one main consumer are serialised by a lock on the main consumer's
-- subscription row; main consumer and subconsumer are registered when missing. A
-- subconsumer that holds a batch gets it again. With i_dead_interval, a batch held by
-- another subconsumer inactive for longer than that is taken over (the dead
-- subconsumer is removed). Otherwise the main consumer's next batch is opened, its
-- position advanced at once, and the batch recorded on the subconsumer's row.
-- Errors: "main consumer has batch open?", "subconsumer not found".
-- Result: the batch id, or NULL when there is nothing to do for now.
CREATE OR REPLACE FUNCTION pgq_coop.next_batch_custom(
    i_queue_name text,
    i_consumer_name text,
    i_subconsumer_name text,
    i_min_lag interval,
    i_min_count int4,
    i_min_interval interval,
    i_dead_interval interval)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    sub_name text := i_consumer_name || '.' || i_subconsumer_name;
    main record;
    me record;
    dead record;
    b record;
BEGIN
    SELECT s.sub_queue, s.sub_consumer, s.sub_id, s.sub_batch INTO main
      FROM pgq.subscription s
      JOIN pgq.queue q ON q.queue_id = s.sub_queue
      JOIN pgq.consumer c ON c.co_id = s.sub_consumer
     WHERE q.queue_name = i_queue_name AND c.co_name = i_consumer_name
       FOR UPDATE OF s;
    IF NOT FOUND THEN
        PERFORM pgq_coop.register_subconsumer(i_queue_name, i_consumer_name, i_subconsumer_name);
        SELECT s.sub_queue, s.sub_consumer, s.sub_id, s.sub_batch INTO main
          FROM pgq.subscription s
          JOIN pgq.queue q ON q.queue_id = s.sub_queue
          JOIN pgq.consumer c ON c.co_id = s.sub_consumer
         WHERE q.queue_name = i_queue_name AND c.co_name = i_consumer_name
           FOR UPDATE OF s;
    END IF;
    IF main.sub_batch IS NOT NULL THEN
        RAISE EXCEPTION 'main consumer has batch open?';
    END IF;

    SELECT s.sub_consumer, s.sub_batch INTO me
      FROM pgq.subscription s JOIN pgq.consumer c ON c.co_id = s.sub_consumer
     WHERE s.sub_queue = main.sub_queue AND c.co_name = sub_name;
    IF NOT FOUND THEN
        PERFORM pgq_coop.register_subconsumer(i_queue_name, i_consumer_name, i_subconsumer_name);
        SELECT s.sub_consumer, s.sub_batch INTO me
          FROM pgq.subscription s JOIN pgq.consumer c ON c.co_id = s.sub_consumer
         WHERE s.sub_queue = main.sub_queue AND c.co_name = sub_name;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'subconsumer not found';
        END IF;
    END IF;

    IF me.sub_batch IS NOT NULL THEN
        UPDATE pgq.subscription SET sub_active = now()
         WHERE sub_queue = main.sub_queue AND sub_consumer = me.sub_consumer;
        RETURN me.sub_batch;
    END IF;

    IF i_dead_interval IS NOT NULL THEN
        SELECT s.sub_consumer, s.sub_batch, s.sub_last_tick, s.sub_next_tick INTO dead
          FROM pgq.subscription s
         WHERE s.sub_queue = main.sub_queue AND s.sub_id = main.sub_id
           AND s.sub_consumer NOT IN (main.sub_consumer, me.sub_consumer)
           AND s.sub_active < now() - i_dead_interval
         ORDER BY s.sub_batch NULLS LAST, s.sub_active
         LIMIT 1
           FOR UPDATE;
        IF FOUND THEN
            DELETE FROM pgq.subscription WHERE sub_queue = main.sub_queue AND sub_consumer = dead.sub_consumer;
            IF dead.sub_batch IS NOT NULL THEN
                UPDATE pgq.subscription
                   SET sub_batch = dead.sub_batch, sub_last_tick = dead.sub_last_tick,
                       sub_next_tick = dead.sub_next_tick, sub_active = now()
                 WHERE sub_queue = main.sub_queue AND sub_consumer = me.sub_consumer;
                RETURN dead.sub_batch;
            END IF;
        END IF;
    END IF;

    SELECT f.batch_id, f.cur_tick_id, f.prev_tick_id INTO b
      FROM pgq.next_batch_custom(i_queue_name, i_consumer_name, i_min_lag, i_min_count, i_min_interval) f;
    IF b.batch_id IS NULL THEN
        RETURN NULL;
    END IF;
    -- The main consumer moves on at once; the batch now belongs to the subconsumer.
    UPDATE pgq.subscription
       SET sub_last_tick = sub_next_tick, sub_next_tick = NULL, sub_batch = NULL
     WHERE sub_queue = main.sub_queue AND sub_consumer = main.sub_consumer;
    UPDATE pgq.subscription
       SET sub_batch = b.batch_id, sub_last_tick = b.prev_tick_id, sub_next_tick = b.cur_tick_id,
           sub_active = now()
     WHERE sub_queue = main.sub_queue AND sub_consumer = me.sub_consumer;
    RETURN b.batch_id;
END;
$fn$;
