-- pgq.get_batch_info(x_batch_id): describe an open batch.
--
-- Result: queue and consumer name, batch_start/batch_end (start and end tick times),
--   prev_tick_id/tick_id, lag (now() - end tick time), seq_start/seq_end (the ticks'
--   event sequence values); a row of NULLs for an unknown batch.
CREATE OR REPLACE FUNCTION pgq.get_batch_info(
    in x_batch_id       bigint,
    out queue_name      text,
    out consumer_name   text,
    out batch_start     timestamptz,
    out batch_end       timestamptz,
    out prev_tick_id    bigint,
    out tick_id         bigint,
    out lag             interval,
    out seq_start       bigint,
    out seq_end         bigint)
AS $fn$
BEGIN
    SELECT q.queue_name, c.co_name, prev.tick_time, cur.tick_time, s.sub_last_tick, s.sub_next_tick,
           now() - cur.tick_time, prev.tick_event_seq, cur.tick_event_seq
      INTO queue_name, consumer_name, batch_start, batch_end, prev_tick_id, tick_id,
           lag, seq_start, seq_end
      FROM pgq.subscription s
      JOIN pgq.queue q ON q.queue_id = s.sub_queue
      JOIN pgq.consumer c ON c.co_id = s.sub_consumer
      JOIN pgq.tick prev ON prev.tick_queue = s.sub_queue AND prev.tick_id = s.sub_last_tick
      JOIN pgq.tick cur ON cur.tick_queue = s.sub_queue AND cur.tick_id = s.sub_next_tick
     WHERE s.sub_batch = x_batch_id;
    RETURN;
END;
$fn$ LANGUAGE plpgsql SECURITY DEFINER;
