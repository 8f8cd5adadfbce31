-- pgq.find_tick_helper(i_queue_id, i_prev_tick_id, i_prev_tick_time, i_prev_tick_seq,
-- i_min_count, i_min_interval): choose the end tick of a batch that should hold at
-- least i_min_count events (by sequence) or span at least i_min_interval.
--
-- Takes the newest tick after i_prev_tick_id if it satisfies a minimum without
-- overshooting it twice; if it overshoots, the first tick that satisfies a minimum.
-- Result: (next_tick_id, next_tick_time, next_tick_seq), NULLs when no tick qualifies.
CREATE OR REPLACE FUNCTION pgq.find_tick_helper(
    in i_queue_id int4,
    in i_prev_tick_id int8,
    in i_prev_tick_time timestamptz,
    in i_prev_tick_seq int8,
    in i_min_count int8,
    in i_min_interval interval,
    out next_tick_id int8,
    out next_tick_time timestamptz,
    out next_tick_seq int8)
AS $fn$
DECLARE
    newest record;
    enough boolean := false;
    overshoot boolean := false;
BEGIN
    SELECT tick_id, tick_time, tick_event_seq INTO newest
      FROM pgq.tick
     WHERE tick_queue = i_queue_id AND tick_id > i_prev_tick_id
     ORDER BY tick_queue DESC, tick_id DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;

    IF i_min_count IS NOT NULL THEN
        enough := newest.tick_event_seq - i_prev_tick_seq >= i_min_count;
        overshoot := newest.tick_event_seq - i_prev_tick_seq > i_min_count * 2;
    END IF;
    IF i_min_interval IS NOT NULL THEN
        enough := enough OR newest.tick_time - i_prev_tick_time >= i_min_interval;
        overshoot := overshoot OR newest.tick_time - i_prev_tick_time > i_min_interval * 2;
    END IF;

    IF overshoot THEN
        SELECT tick_id, tick_time, tick_event_seq INTO next_tick_id, next_tick_time, next_tick_seq
          FROM pgq.tick
         WHERE tick_queue = i_queue_id AND tick_id > i_prev_tick_id
           AND ((i_min_count IS NOT NULL AND tick_event_seq - i_prev_tick_seq >= i_min_count)
             OR (i_min_interval IS NOT NULL AND tick_time - i_prev_tick_time >= i_min_interval))
         ORDER BY tick_queue, tick_id LIMIT 1;
    ELSIF enough THEN
        next_tick_id := newest.tick_id;
        next_tick_time := newest.tick_time;
        next_tick_seq := newest.tick_event_seq;
    END IF;
    RETURN;
END;
$fn$ LANGUAGE plpgsql STABLE;
