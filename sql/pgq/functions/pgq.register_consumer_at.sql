-- pgq.register_consumer_at(x_queue_name, x_consumer_name, x_tick_pos): subscribe a
-- consumer to a queue, or move an existing subscription.
--
-- x_tick_pos: the tick to start after; NULL means the latest tick for a new
--   subscription and "leave the position alone" for an existing one. Moving drops the
--   consumer's open batch.
-- Errors: "Event queue not created yet", "cannot reposition, tick not found: <pos>",
--   "No ticks for this queue.  Please run ticker on database."
-- Result: 1 when newly subscribed, 0 when the subscription existed.
CREATE OR REPLACE FUNCTION pgq.register_consumer_at(
    x_queue_name text,
    x_consumer_name text,
    x_tick_pos bigint)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    qid int4;
    cid int4;
    pos bigint;
BEGIN
    SELECT queue_id INTO qid FROM pgq.queue WHERE queue_name = x_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Event queue not created yet';
    END IF;

    SELECT co_id INTO cid FROM pgq.consumer WHERE co_name = x_consumer_name FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO pgq.consumer (co_name) VALUES (x_consumer_name) RETURNING co_id INTO cid;
    END IF;

    IF x_tick_pos IS NOT NULL THEN
        PERFORM 1 FROM pgq.tick WHERE tick_queue = qid AND tick_id = x_tick_pos;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'cannot reposition, tick not found: %', x_tick_pos;
        END IF;
    END IF;

    PERFORM 1 FROM pgq.subscription WHERE sub_queue = qid AND sub_consumer = cid;
    IF FOUND THEN
        IF x_tick_pos IS NOT NULL THEN
            UPDATE pgq.subscription
               SET sub_last_tick = x_tick_pos, sub_batch = NULL, sub_next_tick = NULL, sub_active = now()
             WHERE sub_queue = qid AND sub_consumer = cid;
        END IF;
        RETURN 0;
    END IF;

    pos := x_tick_pos;
    IF pos IS NULL THEN
        SELECT tick_id INTO pos FROM pgq.tick
         WHERE tick_queue = qid
         ORDER BY tick_queue DESC, tick_id DESC LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'No ticks for this queue.  Please run ticker on database.';
        END IF;
    END IF;
    INSERT INTO pgq.subscription (sub_queue, sub_consumer, sub_last_tick) VALUES (qid, cid, pos);
    RETURN 1;
END;
$fn$;
