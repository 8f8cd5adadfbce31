-- pgq.next_batch_custom(i_queue_name, i_consumer_name, i_min_lag, i_min_count,
-- i_min_interval): open the consumer's next batch, or return the one already open.
--
-- i_min_lag: only hand out a batch whose end tick is at least this old (stay behind).
-- i_min_count, i_min_interval: join several ticks into one batch until it holds about
--   this many events or spans this long (see pgq.find_tick_helper); NULL for one tick.
-- Errors: "Not subscriber to queue: <queue>/<consumer>", "PgQ corruption: Consumer <c>
--   on queue <q> does not see tick <NULL>" when its position tick is gone.
-- Result: batch_id (NULL when there is no new batch: every field is NULL then), the end
--   (cur) and start (prev) tick ids, their times and event sequence values. The
--   sequence values are hints including failed inserts; never use them to decide
--   whether a batch is empty.
CREATE OR REPLACE FUNCTION pgq.next_batch_custom(
    in i_queue_name text,
    in i_consumer_name text,
    in i_min_lag interval,
    in i_min_count int4,
    in i_min_interval interval,
    out batch_id int8,
    out cur_tick_id int8,
    out prev_tick_id int8,
    out cur_tick_time timestamptz,
    out prev_tick_time timestamptz,
    out cur_tick_event_seq int8,
    out prev_tick_event_seq int8)
AS $fn$
DECLARE
    s record;
    t record;
BEGIN
    SELECT sub.sub_queue, sub.sub_consumer, sub.sub_batch, sub.sub_next_tick,
           prev.tick_id AS prev_id, prev.tick_time AS prev_time, prev.tick_event_seq AS prev_seq,
           cur.tick_time AS cur_time, cur.tick_event_seq AS cur_seq
      INTO s
      FROM pgq.queue q
      JOIN pgq.subscription sub ON sub.sub_queue = q.queue_id
      JOIN pgq.consumer c ON c.co_id = sub.sub_consumer
      LEFT JOIN pgq.tick prev ON prev.tick_queue = sub.sub_queue AND prev.tick_id = sub.sub_last_tick
      LEFT JOIN pgq.tick cur ON cur.tick_queue = sub.sub_queue AND cur.tick_id = sub.sub_next_tick
     WHERE q.queue_name = i_queue_name AND c.co_name = i_consumer_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION '%', 'Not subscriber to queue: ' || coalesce(i_queue_name, 'NULL')
                             || '/' || coalesce(i_consumer_name, 'NULL');
    END IF;
    IF s.prev_id IS NULL THEN
        RAISE EXCEPTION 'PgQ corruption: Consumer % on queue % does not see tick %',
            i_consumer_name, i_queue_name, s.prev_id;
    END IF;

    IF s.sub_batch IS NOT NULL THEN
        batch_id := s.sub_batch;
        cur_tick_id := s.sub_next_tick;
        prev_tick_id := s.prev_id;
        cur_tick_time := s.cur_time;
        prev_tick_time := s.prev_time;
        cur_tick_event_seq := s.cur_seq;
        prev_tick_event_seq := s.prev_seq;
        RETURN;
    END IF;

    IF i_min_count IS NULL AND i_min_interval IS NULL THEN
        SELECT tick_id, tick_time, tick_event_seq INTO t
          FROM pgq.tick
         WHERE tick_queue = s.sub_queue AND tick_id > s.prev_id
         ORDER BY tick_queue, tick_id LIMIT 1;
    ELSE
        SELECT h.next_tick_id AS tick_id, h.next_tick_time AS tick_time, h.next_tick_seq AS tick_event_seq
          INTO t
          FROM pgq.find_tick_helper(s.sub_queue, s.prev_id, s.prev_time, s.prev_seq,
                                    i_min_count, i_min_interval) h;
    END IF;
    IF t.tick_id IS NULL THEN
        RETURN;
    END IF;
    IF i_min_lag IS NOT NULL AND now() - t.tick_time < i_min_lag THEN
        RETURN;
    END IF;

    batch_id := nextval('pgq.batch_id_seq');
    UPDATE pgq.subscription
       SET sub_batch = batch_id, sub_next_tick = t.tick_id, sub_active = now()
     WHERE sub_queue = s.sub_queue AND sub_consumer = s.sub_consumer;
    cur_tick_id := t.tick_id;
    prev_tick_id := s.prev_id;
    cur_tick_time := t.tick_time;
    prev_tick_time := s.prev_time;
    cur_tick_event_seq := t.tick_event_seq;
    prev_tick_event_seq := s.prev_seq;
    RETURN;
END;
$fn$ LANGUAGE plpgsql SECURITY DEFINER;
