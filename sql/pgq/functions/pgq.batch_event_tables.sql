-- pgq.batch_event_tables(x_batch_id): the event tables that may hold a batch's events.
--
-- With tx_min = xmin of the start tick and tx_max = xmax of the end tick: only the
-- previous table when tx_max < queue_switch_step1 (every transaction of the batch
-- finished before the switch); only the current table when queue_switch_step2 is set
-- and tx_min > step2 (every transaction started writing after the switch was visible
-- to all, see pgq.maint_rotate_tables_step2); otherwise both, previous first.
-- Error: "Cannot find data for batch <id>".
-- Result: table names such as "pgq.event_1_0".
CREATE OR REPLACE FUNCTION pgq.batch_event_tables(x_batch_id bigint)
RETURNS SETOF text
LANGUAGE plpgsql
AS $fn$
DECLARE
    b record;
    prev_table int;
BEGIN
    SELECT txid_snapshot_xmin(prev.tick_snapshot) AS tx_min,
           txid_snapshot_xmax(cur.tick_snapshot) AS tx_max,
           q.queue_data_pfx, q.queue_ntables, q.queue_cur_table,
           q.queue_switch_step1, q.queue_switch_step2
      INTO b
      FROM pgq.subscription s
      JOIN pgq.queue q ON q.queue_id = s.sub_queue
      JOIN pgq.tick prev ON prev.tick_queue = s.sub_queue AND prev.tick_id = s.sub_last_tick
      JOIN pgq.tick cur ON cur.tick_queue = s.sub_queue AND cur.tick_id = s.sub_next_tick
     WHERE s.sub_batch = x_batch_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'Cannot find data for batch %', x_batch_id;
    END IF;

    prev_table := (b.queue_cur_table + b.queue_ntables - 1) % b.queue_ntables;
    IF b.tx_max < b.queue_switch_step1 THEN
        RETURN NEXT b.queue_data_pfx || '_' || prev_table;
    ELSIF b.queue_switch_step2 IS NOT NULL AND b.tx_min > b.queue_switch_step2 THEN
        RETURN NEXT b.queue_data_pfx || '_' || b.queue_cur_table;
    ELSE
        RETURN NEXT b.queue_data_pfx || '_' || prev_table;
        RETURN NEXT b.queue_data_pfx || '_' || b.queue_cur_table;
    END IF;
    RETURN;
END;
$fn$;
