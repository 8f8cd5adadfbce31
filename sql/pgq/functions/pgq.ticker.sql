-- pgq.ticker(i_queue_name, i_tick_id, i_orig_timestamp, i_event_seq): insert a tick
-- copied from another node (cascaded branches replay their provider's ticks).
--
-- The tick gets the given id, time and event sequence value and the current snapshot;
-- the queue's tick and event sequences are moved up to the given values.
-- Error: "queue not found or ticker disabled: <queue>" unless the queue has an external
-- ticker and is not paused.
-- Result: i_tick_id.
CREATE OR REPLACE FUNCTION pgq.ticker(i_queue_name text, i_tick_id bigint, i_orig_timestamp timestamptz, i_event_seq bigint)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    q record;
BEGIN
    SELECT queue_id, queue_tick_seq, queue_event_seq INTO q
      FROM pgq.queue
     WHERE queue_name = i_queue_name AND queue_external_ticker AND NOT queue_ticker_paused;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'queue not found or ticker disabled: %', i_queue_name;
    END IF;
    INSERT INTO pgq.tick (tick_queue, tick_id, tick_time, tick_event_seq)
    VALUES (q.queue_id, i_tick_id, i_orig_timestamp, i_event_seq);
    PERFORM pgq.seq_setval(q.queue_tick_seq, i_tick_id);
    PERFORM pgq.seq_setval(q.queue_event_seq, i_event_seq);
    RETURN i_tick_id;
END;
$fn$;

-- pgq.ticker(i_queue_name): tick the queue if a tick is due.
--
-- With new events (by the event sequence) a tick is due once queue_ticker_max_count
-- events accumulated or queue_ticker_max_lag passed since the last tick. An idle queue
-- ticks with backing-off intervals: not before max_lag/2, and not before twice the
-- previous interval unless queue_ticker_idle_period passed.
-- Errors: "no such queue", "This queue has external tick source.", "Ticker has been
-- paused for this queue", "Invalid PgQ state: ..." when the last tick is from the
-- future (restored dump); warnings "Negative new_events? ...", "Dubious PgQ state: ...".
-- Unlike PgQ 3.5, a call that makes no tick does not assign a transaction id.
-- Result: the new tick id, or NULL when no tick was due.
CREATE OR REPLACE FUNCTION pgq.ticker(i_queue_name text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    q record;
    last record;
    prev_time timestamptz;
    new_events bigint;
    lag interval;
    tick bigint;
    cur_txid bigint;
BEGIN
    SELECT queue_id, queue_tick_seq, queue_external_ticker, queue_ticker_paused,
           queue_ticker_max_count, queue_ticker_max_lag, queue_ticker_idle_period,
           queue_event_seq,
           -- NULL while the sequence has not moved since it was created or reset;
           -- see below.
           pg_catalog.pg_sequence_last_value(pgq.quote_fqname(queue_event_seq)::regclass) AS event_seq
      INTO q
      FROM pgq.queue WHERE queue_name = i_queue_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no such queue';
    END IF;
    IF q.queue_external_ticker THEN
        RAISE EXCEPTION 'This queue has external tick source.';
    END IF;
    IF q.queue_ticker_paused THEN
        RAISE EXCEPTION 'Ticker has been paused for this queue';
    END IF;

    SELECT tick_id, tick_time, tick_event_seq,
           txid_snapshot_xmin(tick_snapshot) AS sxmin, txid_snapshot_xmax(tick_snapshot) AS sxmax
      INTO last
      FROM pgq.tick
     WHERE tick_queue = q.queue_id
     ORDER BY tick_queue DESC, tick_id DESC LIMIT 1;
    IF FOUND THEN
        -- The next transaction id to be assigned bounds every tick taken so far;
        -- reading it, unlike txid_current(), gives this transaction no id, so a call
        -- that makes no tick writes nothing (no WAL, no commit flush, no id used up).
        cur_txid := txid_snapshot_xmax(txid_current_snapshot());
        IF last.sxmin > cur_txid THEN
            RAISE EXCEPTION 'Invalid PgQ state: old xmin=%, old xmax=%, cur txid=%',
                last.sxmin, last.sxmax, cur_txid;
        END IF;
        -- An event sequence that has not moved since it was created or reset has given
        -- no event an id: no new events. Its exact value (which only dynamic SQL can
        -- read, at a cost paid on every call for a queue that never had an event) is
        -- read only when a tick is made below.
        new_events := coalesce(q.event_seq - last.tick_event_seq, 0);
        lag := now() - last.tick_time;
        IF new_events < 0 THEN
            RAISE WARNING 'Negative new_events?  old=% cur=%', last.tick_event_seq, q.event_seq;
        END IF;
        IF last.sxmax > cur_txid THEN
            RAISE WARNING 'Dubious PgQ state: old xmax=%, cur txid=%', last.sxmax, cur_txid;
        END IF;

        IF new_events > 0 THEN
            IF new_events < q.queue_ticker_max_count AND lag < q.queue_ticker_max_lag THEN
                RETURN NULL;
            END IF;
        ELSE
            SELECT tick_time INTO prev_time
              FROM pgq.tick
             WHERE tick_queue = q.queue_id AND tick_id < last.tick_id
             ORDER BY tick_queue DESC, tick_id DESC LIMIT 1;
            IF FOUND AND (lag < q.queue_ticker_max_lag / 2
                          OR (lag < (last.tick_time - prev_time) * 2 AND lag < q.queue_ticker_idle_period)) THEN
                RETURN NULL;
            END IF;
        END IF;
    END IF;

    IF q.event_seq IS NULL THEN
        q.event_seq := pgq.seq_getval(q.queue_event_seq);
    END IF;
    INSERT INTO pgq.tick (tick_queue, tick_id, tick_event_seq)
    VALUES (q.queue_id, nextval(q.queue_tick_seq::regclass), q.event_seq)
    RETURNING tick_id INTO tick;
    RETURN tick;
END;
$fn$;

-- pgq.ticker(): tick every queue that has its own ticker and is not paused, in name
-- order, in one transaction (what pgqd calls every second).
--
-- Result: the number of queues that got a tick.
CREATE OR REPLACE FUNCTION pgq.ticker()
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
    name text;
    ticked bigint := 0;
BEGIN
    FOR name IN
        SELECT queue_name FROM pgq.queue
         WHERE NOT queue_external_ticker AND NOT queue_ticker_paused
         ORDER BY queue_name
    LOOP
        IF pgq.ticker(name) IS NOT NULL THEN
            ticked := ticked + 1;
        END IF;
    END LOOP;
    RETURN ticked;
END;
$fn$;
