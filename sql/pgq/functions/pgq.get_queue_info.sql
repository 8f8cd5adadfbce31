-- pgq.get_queue_info(i_queue_name): settings and state of one queue, or of every queue
-- when i_queue_name is NULL, ordered by name.
--
-- Result columns beyond the pgq.queue settings: ticker_lag (now() - last tick time),
--   ev_per_sec (event sequence growth over the last ~20 ticks; NULL without time
--   between them), ev_new (event sequence growth since the last tick: events not yet
--   in a tick), last_tick_id.
CREATE OR REPLACE FUNCTION pgq.get_queue_info(
    in i_queue_name                 text,
    out queue_name                  text,
    out queue_ntables               integer,
    out queue_cur_table             integer,
    out queue_rotation_period       interval,
    out queue_switch_time           timestamptz,
    out queue_external_ticker       boolean,
    out queue_ticker_paused         boolean,
    out queue_ticker_max_count      integer,
    out queue_ticker_max_lag        interval,
    out queue_ticker_idle_period    interval,
    out ticker_lag                  interval,
    out ev_per_sec                  float8,
    out ev_new                      bigint,
    out last_tick_id                bigint)
RETURNS SETOF record
AS $fn$
BEGIN
    RETURN QUERY
    SELECT q.queue_name, q.queue_ntables, q.queue_cur_table, q.queue_rotation_period,
           q.queue_switch_time, q.queue_external_ticker, q.queue_ticker_paused,
           q.queue_ticker_max_count, q.queue_ticker_max_lag, q.queue_ticker_idle_period,
           current_timestamp - top.tick_time,
           CASE WHEN low.tick_time < top.tick_time
                THEN ((top.tick_event_seq - low.tick_event_seq)
                      / extract(epoch FROM top.tick_time - low.tick_time))::float8
           END,
           pgq.seq_getval(q.queue_event_seq) - top.tick_event_seq,
           top.tick_id
      FROM pgq.queue q
      LEFT JOIN LATERAL (
            SELECT t.tick_id, t.tick_time, t.tick_event_seq FROM pgq.tick t
             WHERE t.tick_queue = q.queue_id
             ORDER BY t.tick_queue DESC, t.tick_id DESC LIMIT 1) top ON true
      LEFT JOIN LATERAL (
            SELECT t.tick_time, t.tick_event_seq FROM pgq.tick t
             WHERE t.tick_queue = q.queue_id AND t.tick_id >= top.tick_id - 20
             ORDER BY t.tick_queue, t.tick_id LIMIT 1) low ON true
     WHERE i_queue_name IS NULL OR q.queue_name = i_queue_name
     ORDER BY q.queue_name;
END;
$fn$ LANGUAGE plpgsql;

-- pgq.get_queue_info(): pgq.get_queue_info(NULL), every queue.
CREATE OR REPLACE FUNCTION pgq.get_queue_info(
    out queue_name                  text,
    out queue_ntables               integer,
    out queue_cur_table             integer,
    out queue_rotation_period       interval,
    out queue_switch_time           timestamptz,
    out queue_external_ticker       boolean,
    out queue_ticker_paused         boolean,
    out queue_ticker_max_count      integer,
    out queue_ticker_max_lag        interval,
    out queue_ticker_idle_period    interval,
    out ticker_lag                  interval,
    out ev_per_sec                  float8,
    out ev_new                      bigint,
    out last_tick_id                bigint)
RETURNS SETOF record
AS $fn$
BEGIN
    RETURN QUERY SELECT * FROM pgq.get_queue_info(NULL);
END;
$fn$ LANGUAGE plpgsql;
