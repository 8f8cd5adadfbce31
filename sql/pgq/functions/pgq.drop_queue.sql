-- pgq.drop_queue(x_queue_name, x_force): drop a queue with its tables, sequences and
-- ticks.
--
-- x_queue_name: the queue; error "No such event queue" if missing.
-- x_force: unregister all consumers first; without it a queue that still has consumers
--          raises "cannot drop queue, consumers still attached".
-- Result: 1.
CREATE OR REPLACE FUNCTION pgq.drop_queue(x_queue_name text, x_force bool)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    q record;
    c record;
    i int;
BEGIN
    SELECT queue_id, queue_data_pfx, queue_ntables, queue_event_seq, queue_tick_seq INTO q
      FROM pgq.queue WHERE queue_name = x_queue_name
       FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'No such event queue';
    END IF;

    IF x_force THEN
        FOR c IN
            SELECT co.co_name
              FROM pgq.subscription s JOIN pgq.consumer co ON co.co_id = s.sub_consumer
             WHERE s.sub_queue = q.queue_id
             ORDER BY 1
        LOOP
            PERFORM pgq.unregister_consumer(x_queue_name, c.co_name);
        END LOOP;
    ELSE
        PERFORM 1 FROM pgq.subscription WHERE sub_queue = q.queue_id;
        IF FOUND THEN
            RAISE EXCEPTION 'cannot drop queue, consumers still attached';
        END IF;
    END IF;

    FOR i IN 0 .. q.queue_ntables - 1 LOOP
        EXECUTE 'DROP TABLE ' || q.queue_data_pfx || '_' || i;
    END LOOP;
    EXECUTE 'DROP TABLE ' || q.queue_data_pfx;
    DELETE FROM pgq.tick WHERE tick_queue = q.queue_id;
    DELETE FROM pgq.retry_queue WHERE ev_queue = q.queue_id;
    EXECUTE 'DROP SEQUENCE ' || q.queue_tick_seq;
    EXECUTE 'DROP SEQUENCE ' || q.queue_event_seq;
    DELETE FROM pgq.queue WHERE queue_id = q.queue_id;
    PERFORM pgq._refresh_insert_event_raw();
    RETURN 1;
END;
$fn$;

-- pgq.drop_queue(x_queue_name): drop a queue that has no consumers
-- (drop_queue(x_queue_name, false)). Result: 1.
CREATE OR REPLACE FUNCTION pgq.drop_queue(x_queue_name text)
RETURNS integer
LANGUAGE plpgsql STRICT
AS $fn$
BEGIN
    RETURN pgq.drop_queue(x_queue_name, false);
END;
$fn$;
