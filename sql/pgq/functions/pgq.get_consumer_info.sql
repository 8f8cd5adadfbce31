-- pgq.get_consumer_info(i_queue_name, i_consumer_name): state of subscriptions (NULL
-- arguments match all), coop subconsumers included, ordered by queue and consumer.
--
-- Result: lag (now() - time of the consumer's position tick; NULL for an idle coop
--   subconsumer), last_seen (now() - last activity), last_tick, current_batch,
--   next_tick, pending_events (event sequence growth between the consumer's position
--   and the queue's last tick: ticked but unprocessed events, approximately).
CREATE OR REPLACE FUNCTION pgq.get_consumer_info(
    in i_queue_name     text,
    in i_consumer_name  text,
    out queue_name      text,
    out consumer_name   text,
    out lag             interval,
    out last_seen       interval,
    out last_tick       bigint,
    out current_batch   bigint,
    out next_tick       bigint,
    out pending_events  bigint)
RETURNS SETOF record
AS $fn$
BEGIN
    RETURN QUERY
    SELECT q.queue_name, c.co_name,
           current_timestamp - pos.tick_time,
           current_timestamp - s.sub_active,
           s.sub_last_tick, s.sub_batch, s.sub_next_tick,
           top.tick_event_seq - pos.tick_event_seq
      FROM pgq.subscription s
      JOIN pgq.queue q ON q.queue_id = s.sub_queue
      JOIN pgq.consumer c ON c.co_id = s.sub_consumer
      LEFT JOIN pgq.tick pos ON pos.tick_queue = s.sub_queue AND pos.tick_id = s.sub_last_tick
      LEFT JOIN LATERAL (
            SELECT t.tick_event_seq FROM pgq.tick t
             WHERE t.tick_queue = s.sub_queue
             ORDER BY t.tick_queue DESC, t.tick_id DESC LIMIT 1) top ON true
     WHERE (i_queue_name IS NULL OR q.queue_name = i_queue_name)
       AND (i_consumer_name IS NULL OR c.co_name = i_consumer_name)
     ORDER BY 1, 2;
END;
$fn$ LANGUAGE plpgsql SECURITY DEFINER;

-- pgq.get_consumer_info(i_queue_name): every subscription of one queue (all when NULL).
CREATE OR REPLACE FUNCTION pgq.get_consumer_info(
    in i_queue_name     text,
    out queue_name      text,
    out consumer_name   text,
    out lag             interval,
    out last_seen       interval,
    out last_tick       bigint,
    out current_batch   bigint,
    out next_tick       bigint,
    out pending_events  bigint)
RETURNS SETOF record
AS $fn$
BEGIN
    RETURN QUERY SELECT * FROM pgq.get_consumer_info(i_queue_name, NULL);
END;
$fn$ LANGUAGE plpgsql SECURITY DEFINER;

-- pgq.get_consumer_info(): every subscription of every queue.
CREATE OR REPLACE FUNCTION pgq.get_consumer_info(
    out queue_name      text,
    out consumer_name   text,
    out lag             interval,
    out last_seen       interval,
    out last_tick       bigint,
    out current_batch   bigint,
    out next_tick       bigint,
    out pending_events  bigint)
RETURNS SETOF record
AS $fn$
BEGIN
    RETURN QUERY SELECT * FROM pgq.get_consumer_info(NULL, NULL);
END;
$fn$ LANGUAGE plpgsql SECURITY DEFINER;
