-- pgq.next_batch_info(i_queue_name, i_consumer_name): next_batch_custom() without
-- minimums: open the next batch (one tick interval) or return the open one.
--
-- Result: as pgq.next_batch_custom(); batch_id NULL means no new tick yet.
CREATE OR REPLACE FUNCTION pgq.next_batch_info(
    in i_queue_name text,
    in i_consumer_name text,
    out batch_id int8,
    out cur_tick_id int8,
    out prev_tick_id int8,
    out cur_tick_time timestamptz,
    out prev_tick_time timestamptz,
    out cur_tick_event_seq int8,
    out prev_tick_event_seq int8)
AS $fn$
BEGIN
    SELECT f.batch_id, f.cur_tick_id, f.prev_tick_id, f.cur_tick_time, f.prev_tick_time,
           f.cur_tick_event_seq, f.prev_tick_event_seq
      INTO batch_id, cur_tick_id, prev_tick_id, cur_tick_time, prev_tick_time,
           cur_tick_event_seq, prev_tick_event_seq
      FROM pgq.next_batch_custom(i_queue_name, i_consumer_name, NULL, NULL, NULL) f;
    RETURN;
END;
$fn$ LANGUAGE plpgsql;
